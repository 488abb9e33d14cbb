import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { chooseVia } from '../../../src/plugin/log-access.ts';
import { main } from '../../../src/plugin/main.ts';
import { humanBytes, renderStatus } from '../../../src/plugin/status-view.ts';
import { makeEvl } from '../decisions/fixtures.ts';

function io(env: NodeJS.ProcessEnv = {}) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c) => (stdout += String(c)));
  err.on('data', (c) => (stderr += String(c)));
  return { io: { stdout: out, stderr: err, stdin: new PassThrough(), env }, text: () => ({ stdout, stderr }) };
}

const stalledFull = () => {
  const evl = makeEvl({ storage: { size: '64Mi' } });
  evl.metadata.generation = 2;
  evl.status = {
    observedGeneration: 2,
    phase: 'Stalled',
    conditions: [
      { type: 'Ready', status: 'False', reason: 'StorageFull', message: 'the volume is full', lastTransitionTime: '2026-11-22T05:00:00Z', observedGeneration: 2 },
      { type: 'Stalled', status: 'True', reason: 'StorageFull', message: 'cannot grow automatically: spec.storage.autoGrow is not set', lastTransitionTime: '2026-11-22T05:00:00Z', observedGeneration: 2 },
      { type: 'Drifted', status: 'True', reason: 'DriftDetected', message: 'Service orders spec.ports', lastTransitionTime: '2026-11-22T05:00:00Z', observedGeneration: 1 },
    ],
    storage: { pvcName: 'orders-data', capacity: '64Mi', requested: '64Mi', usedPercent: 97, usedBytes: 62 * 1048576, filesystemBytes: 64 * 1048576, availableBytes: 2 * 1048576, reserveBytes: 1048576, nearlyFull: true },
    log: { records: 5, bytes: 2048, firstSequence: 3, lastSequence: 7 },
    pod: { name: 'orders-0', ip: '10.0.0.7', phase: 'Running', ready: true, restarts: 2, lastTermination: { exitCode: 1, reason: 'Error', message: '{"state":"failed"}\nmore' } },
    recovery: { lastOutcome: 'CorruptionDetected', corruption: { id: 'c-42', segment: 'segments/00000001.log', offset: 120, reason: 'checksum mismatch' }, history: [{ bootId: 'b1', outcome: 'CorruptionDetected', at: '2026-11-22T05:00:00Z' }] },
    drift: { detected: true, items: [{ kind: 'Service', name: 'orders', path: 'spec.ports[name=http].port', expected: '8080', actual: '9090', firstSeen: '2026-11-22T05:00:00Z' }] },
  } as never;
  return evl;
};

describe('kubectl eventlog status (the screen)', () => {
  it('shows conditions, storage use, the log, the pod, recovery with the approve command, drift and the last error; plain when not coloured', () => {
    const text = renderStatus(stalledFull(), { color: false });
    expect(text).not.toMatch(/\u001b\[/);
    expect(text).toMatch(/^EventLog shop\/orders {3}phase Stalled {3}generation 2 \(observed 2\)/);
    expect(text).toMatch(/Ready +False +StorageFull +the volume is full/);
    expect(text).toMatch(/Drifted +True +DriftDetected .*\(stale\)/);
    expect(text).toMatch(/97% used: 62\.0 MiB of 64\.0 MiB, 2\.0 MiB available, reserve 1\.0 MiB {2}NEARLY FULL/);
    expect(text).toMatch(/5 records, 2\.0 KiB, sequences 3\.\.7/);
    expect(text).toMatch(/orders-0 {2}10\.0\.0\.7 {2}Running {2}ready {2}restarts 2/);
    expect(text).toMatch(/last termination: exit 1 \(Error\): \{"state":"failed"\}\n/);
    expect(text).toMatch(/corruption c-42: segments\/00000001\.log at offset 120 \(checksum mismatch\)/);
    expect(text).toMatch(/kubectl eventlog approve-repair orders -n shop/);
    expect(text).toMatch(/Service orders spec\.ports\[name=http\]\.port: expected 8080, found 9090/);
    expect(text).toMatch(/Last error: StorageFull: cannot grow automatically/);
  });
  it('colours when asked; says so when there is no status yet', () => {
    expect(renderStatus(stalledFull(), { color: true })).toMatch(/\u001b\[31m/);
    expect(renderStatus(makeEvl(), { color: false })).toMatch(/no status yet: the operator has not reconciled/);
  });
  it('humanBytes', () => {
    expect(humanBytes(0)).toBe('0 B');
    expect(humanBytes(1536)).toBe('1.5 KiB');
    expect(humanBytes(200 * 1048576)).toBe('200 MiB');
  });
});

describe('kubectl eventlog: transport and usage', () => {
  it('goes direct only for loopback pod addresses (the API server will not proxy there) unless told', () => {
    expect(chooseVia('auto', '127.1.0.3')).toBe('direct');
    expect(chooseVia('auto', '10.244.0.3')).toBe('proxy');
    expect(chooseVia('auto', undefined)).toBe('proxy');
    expect(chooseVia('direct', '10.244.0.3')).toBe('direct');
    expect(chooseVia('proxy', '127.1.0.3')).toBe('proxy');
  });
  it.each([
    [['bogus'], /unknown command "bogus"/],
    [['status'], /an EventLog NAME is required/],
    [['status', 'a', 'b'], /one EventLog NAME expected, got 2/],
    [['status', 'a', '-o', 'yaml'], /-o takes "json"/],
    [['tail', 'a', '--from', '0'], /--from takes an integer >= 1/],
    [['tail', 'a', '--nope'], /Unknown option '--nope'/],
    [['append', 'a'], /exactly one of --data JSON or -f FILE/],
    [['append', 'a', '--data', '[1]'], /--data must be a JSON object/],
    [['status', 'a', '--via', 'carrier-pigeon'], /--via takes auto, proxy or direct/],
    [['status', 'a', '--kubeconfig', '/nonexistent/kubeconfig'], /cannot load the kubeconfig/],
  ])('%j: exit 2 with one line', async (args, message) => {
    const t = io();
    expect(await main(args, t.io)).toBe(2);
    const { stderr } = t.text();
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
  it('help is exit 0; no command is exit 2 with the usage', async () => {
    const h = io();
    expect(await main(['--help'], h.io)).toBe(0);
    expect(h.text().stdout).toMatch(/usage: kubectl eventlog <command>/);
    expect(await main([], io().io)).toBe(2);
  });
});
