import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ContainerConfigError, envReferences, expandCommand, expandVars, fieldRefValue, mapPath, resolveEnv, type RefData } from '../../../../dev/agent/container-spec.ts';

const vars: Record<string, string> = { POD_IP: '127.1.0.9', EMPTY: '' };
const lookup = (n: string): string | undefined => vars[n];
const facts = { podIP: '127.1.0.9', hostIP: '127.0.0.1', nodeName: 'node-a' };
const noRefs: RefData = { secrets: new Map(), configMaps: new Map() };
const pod: V1Pod = {
  metadata: { name: 'log-0', namespace: 'team', uid: 'u-1', labels: { app: 'log' }, annotations: { note: 'x' } },
  spec: { containers: [], serviceAccountName: 'runner' },
};

describe('$(VAR) expansion (kubelet semantics)', () => {
  it.each([
    ['--host=$(POD_IP)', '--host=127.1.0.9'],
    ['$(POD_IP):8080', '127.1.0.9:8080'],
    ['$(UNDEFINED)', '$(UNDEFINED)'],
    ['$$(POD_IP)', '$(POD_IP)'],
    ['$$', '$'],
    ['a$b', 'a$b'],
    ['$(POD_IP', '$(POD_IP'],
    ['$()', '$()'],
    ['x$(EMPTY)y', 'xy'],
    ['trailing$', 'trailing$'],
    ['$(POD_IP)$(POD_IP)', '127.1.0.9127.1.0.9'],
  ])('%s -> %s', (input, want) => {
    expect(expandVars(input, lookup)).toBe(want);
  });
});

describe('env resolution', () => {
  it('resolves literals, fieldRefs and earlier variables in order', () => {
    const c: V1Container = {
      name: 's',
      env: [
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'ADDR', value: 'http://$(POD_IP):8080/$(LATER)' },
        { name: 'LATER', value: 'late' },
        { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
      ],
    };
    const env = resolveEnv(pod, c, facts, noRefs, { PATH: '/bin' });
    expect(env).toEqual({
      PATH: '/bin',
      POD_IP: '127.1.0.9',
      POD_NAME: 'log-0',
      POD_NAMESPACE: 'team',
      ADDR: 'http://127.1.0.9:8080/$(LATER)',
      LATER: 'late',
      APP: 'log',
      NODE: 'node-a',
      SA: 'runner',
    });
  });

  it('reads secret and configMap keys, honours optional, and fails clearly otherwise', () => {
    const refs: RefData = { secrets: new Map([['creds', { token: 's3cret' }]]), configMaps: new Map([['cfg', { mode: 'fsync', other: 'o' }]]) };
    const c: V1Container = {
      name: 's',
      envFrom: [{ configMapRef: { name: 'cfg' }, prefix: 'CFG_' }],
      env: [
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } },
        { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'mode' } } },
        { name: 'MAYBE', valueFrom: { secretKeyRef: { name: 'absent', key: 'k', optional: true } } },
      ],
    };
    expect(resolveEnv(pod, c, facts, refs)).toEqual({ CFG_mode: 'fsync', CFG_other: 'o', TOKEN: 's3cret', MODE: 'fsync' });
    expect(envReferences(c)).toEqual({ secrets: ['creds', 'absent'], configMaps: ['cfg'] });

    const missingSecret: V1Container = { name: 's', env: [{ name: 'T', valueFrom: { secretKeyRef: { name: 'absent', key: 'k' } } }] };
    expect(() => resolveEnv(pod, missingSecret, facts, refs)).toThrow(ContainerConfigError);
    expect(() => resolveEnv(pod, missingSecret, facts, refs)).toThrow('secret "absent" not found');
    const missingKey: V1Container = { name: 's', env: [{ name: 'T', valueFrom: { secretKeyRef: { name: 'creds', key: 'nope' } } }] };
    expect(() => resolveEnv(pod, missingKey, facts, refs)).toThrow("couldn't find key nope in Secret team/creds");
  });

  it('rejects unsupported downward API fields', () => {
    expect(() => fieldRefValue(pod, 'spec.whatever', facts)).toThrow(ContainerConfigError);
    expect(fieldRefValue(pod, "metadata.annotations['missing']", facts)).toBe('');
  });

  it('expands command and args with the container env', () => {
    const c: V1Container = { name: 's', command: ['eventlog-server'], args: ['--host', '$(POD_IP)', '--port', '$(PORT)'] };
    expect(expandCommand(c, { POD_IP: '127.1.0.2' })).toEqual({ command: ['eventlog-server'], args: ['--host', '127.1.0.2', '--port', '$(PORT)'] });
  });
});

describe('path mapping', () => {
  const mounts = [
    { containerPath: '/data', hostPath: '/agent/volumes/pvc-1' },
    { containerPath: '/data/cache/', hostPath: '/agent/pods/u/empty-dir/cache' },
    { containerPath: '/dev/termination-log', hostPath: '/agent/pods/u/containers/s/termination-log' },
  ];
  it.each([
    ['/data', '/agent/volumes/pvc-1'],
    ['/data/', '/agent/volumes/pvc-1/'],
    ['/data/log/seg-1', '/agent/volumes/pvc-1/log/seg-1'],
    ['/data/cache/x', '/agent/pods/u/empty-dir/cache/x'],
    ['/database', '/database'],
    ['/dev/termination-log', '/agent/pods/u/containers/s/termination-log'],
    ['--data-dir=/data/x', '--data-dir=/agent/volumes/pvc-1/x'],
    ['key=/data', 'key=/data'],
    ['relative/data', 'relative/data'],
    ['8080', '8080'],
  ])('%s -> %s', (value, want) => {
    expect(mapPath(value, mounts)).toBe(want);
  });

  it('ignores a mount at / rather than rewriting every path', () => {
    expect(mapPath('/etc/hosts', [{ containerPath: '/', hostPath: '/x' }])).toBe('/etc/hosts');
  });
});
