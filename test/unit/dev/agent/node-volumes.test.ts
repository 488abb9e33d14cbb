/**
 * NodeVolumes (dev/agent/node-volumes.ts) on real loop devices, without a cluster:
 * provision, stage/release by pods, stop, start again on the same data dir (re-attach),
 * a crashed run's devices reclaimed by the next start, removal. Needs root; never skips.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { silentLogger } from '../../../../src/common/logger.ts';
import { NodeVolumes } from '../../../../dev/agent/node-volumes.ts';
import { agentPaths } from '../../../../dev/agent/paths.ts';
import { which } from '../../../../dev/volumes/exec.ts';

let base: string;
let registryDir: string;

const attachedUnder = (dir: string): string[] => {
  const out = execFileSync(which('losetup') ?? 'losetup', ['-J', '-l'], { encoding: 'utf8' });
  if (!out.trim()) return [];
  return (JSON.parse(out) as { loopdevices: Array<{ name: string; 'back-file': string }> }).loopdevices.filter((d) => d['back-file'].startsWith(dir)).map((d) => d.name);
};
const mountsUnder = async (dir: string): Promise<string[]> =>
  (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));

const loopPv = (name: string, path: string): V1PersistentVolume => ({ metadata: { name, annotations: { 'eventlog.dev/volume-mode': 'loop-ext4' } }, spec: { local: { path } } });

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('NodeVolumes loop-ext4 tests need root; they never skip');
  base = await mkdtemp(join(tmpdir(), 'node-volumes-test-'));
  registryDir = join(base, 'registry');
});

afterAll(async () => {
  if (!base) return;
  const mounts = await mountsUnder(base);
  const devices = attachedUnder(base);
  for (const m of mounts.sort((a, b) => b.length - a.length)) execFileSync(which('umount') ?? 'umount', ['-l', m]);
  for (const d of devices) execFileSync(which('losetup') ?? 'losetup', ['-d', d]);
  await rm(base, { recursive: true, force: true });
  expect({ mounts, devices }).toEqual({ mounts: [], devices: [] });
});

describe('NodeVolumes (loop-ext4)', () => {
  it('provisions, counts pod users, stops cleanly, re-attaches on the next start, and removes', async () => {
    const dataDir = join(base, 'agent-a');
    const paths = agentPaths(dataDir);
    let released = 0;
    const nv = await NodeVolumes.start({ paths, log: silentLogger, mode: 'loop-ext4', registryDir, onRelease: () => released++ });
    expect(nv.mode).toBe('loop-ext4');
    const made = await nv.provision('pvc-a', 16n << 20n);
    expect(made).toEqual({ path: join(paths.volumes, 'pvc-a'), bytes: 16n << 20n, mode: 'loop-ext4' });
    const pv = loopPv('pvc-a', made.path);
    await writeFile(join(made.path, 'data'), 'kept across agent restarts\n');

    let ran = 0;
    expect(await nv.stage(pv, 'pod-1', async () => void ran++)).toBe(made.path);
    expect(await nv.stage(pv, 'pod-2', async () => void ran++)).toBe(made.path); // another pod already uses it: no pending work runs
    expect(ran).toBe(1);
    expect(nv.inUse('pvc-a')).toBe(true);
    nv.release('pod-1');
    nv.release('pod-2');
    expect(nv.inUse('pvc-a')).toBe(false);
    expect(released).toBe(2);
    await expect(nv.remove(loopPv('pvc-other', join(base, 'elsewhere')))).rejects.toThrow(/not this agent's mount point/);

    await nv.stop();
    expect(attachedUnder(paths.volumes)).toEqual([]);
    expect(await mountsUnder(paths.volumes)).toEqual([]);

    const again = await NodeVolumes.start({ paths, log: silentLogger, mode: 'loop-ext4', registryDir });
    expect(await again.ensureReady(pv)).toBe(made.path);
    expect(await readFile(join(made.path, 'data'), 'utf8')).toBe('kept across agent restarts\n');
    expect(attachedUnder(paths.volumes)).toHaveLength(1);
    await again.stage(pv, 'pod-3');
    await expect(again.remove(pv)).rejects.toThrow(/still used by a pod/);
    again.release('pod-3');
    await again.remove(pv);
    expect(attachedUnder(paths.volumes)).toEqual([]);
    await expect(stat(join(paths.volumes, 'pvc-a.img'))).rejects.toThrow(/ENOENT/);
    await again.stop();
  });

  it('a start after a crash (no stop) reclaims the earlier run\'s devices and mounts, then re-attaches on demand', async () => {
    const paths = agentPaths(join(base, 'agent-b'));
    const crashed = await NodeVolumes.start({ paths, log: silentLogger, mode: 'loop-ext4', registryDir });
    const made = await crashed.provision('pvc-b', 8n << 20n);
    await writeFile(join(made.path, 'x'), 'x');
    expect(attachedUnder(paths.volumes)).toHaveLength(1);
    // No stop(): the next start on the same data dir finds the leftovers.
    const next = await NodeVolumes.start({ paths, log: silentLogger, mode: 'loop-ext4', registryDir });
    expect(attachedUnder(paths.volumes)).toEqual([]);
    expect(await mountsUnder(paths.volumes)).toEqual([]);
    await next.ensureReady(loopPv('pvc-b', made.path));
    expect(await readFile(join(made.path, 'x'), 'utf8')).toBe('x');
    await next.stop();
    expect(attachedUnder(paths.volumes)).toEqual([]);
  });

  it('without root, auto mode is plain directories, and says so in the log (a child process running as nobody)', async () => {
    // Its own temp dir: `base` is 0700, which nobody cannot enter.
    const dir = await mkdtemp(join(tmpdir(), 'node-volumes-nobody-'));
    await chmod(dir, 0o777);
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const repo = fileURLToPath(new URL('../../../../', import.meta.url));
    const script = [
      `import { NodeVolumes } from ${JSON.stringify(join(repo, 'dev/agent/node-volumes.ts'))};`,
      `import { agentPaths } from ${JSON.stringify(join(repo, 'dev/agent/paths.ts'))};`,
      `import { createLogger } from ${JSON.stringify(join(repo, 'src/common/logger.ts'))};`,
      `const nv = await NodeVolumes.start({ paths: agentPaths(${JSON.stringify(join(dir, 'agent'))}), log: createLogger('t') });`,
      `const made = await nv.provision('pvc-n', 1n << 30n);`,
      `console.log(JSON.stringify({ mode: nv.mode, made: made.mode, path: made.path }));`,
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ mode: 'directory', made: 'directory', path: join(dir, 'agent', 'volumes', 'pvc-n') });
    expect(r.stderr).toContain('"volumeMode":"directory","reason":"not running as root"');
    expect(await mountsUnder(dir)).toEqual([]);
  });

  it('directory mode makes plain directories and grows nothing', async () => {
    const paths = agentPaths(join(base, 'agent-c'));
    const nv = await NodeVolumes.start({ paths, log: silentLogger, mode: 'directory', registryDir });
    const made = await nv.provision('pvc-c', 1n << 30n);
    expect(made).toEqual({ path: join(paths.volumes, 'pvc-c'), bytes: 1n << 30n, mode: 'directory' });
    expect((await stat(made.path)).isDirectory()).toBe(true);
    const pv: V1PersistentVolume = { metadata: { name: 'pvc-c', annotations: { 'eventlog.dev/volume-mode': 'directory' } }, spec: { local: { path: made.path } } };
    expect(await nv.growDevice(pv, 2n << 30n)).toBe(2n << 30n);
    await nv.growFilesystem(pv, true);
    expect(await mountsUnder(paths.volumes)).toEqual([]);
    await nv.remove(pv);
    await expect(stat(made.path)).rejects.toThrow(/ENOENT/);
    await nv.stop();
  });
});
