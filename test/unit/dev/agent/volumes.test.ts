/** Secret volumes on the node agent, as the log pod uses them for its token file (kubelet semantics). */
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod, V1Volume } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mapPath } from '../../../../dev/agent/container-spec.ts';
import { agentPaths } from '../../../../dev/agent/paths.ts';
import { VolumeNotReadyError, preparePodVolumes, type VolumeContext } from '../../../../dev/agent/volumes.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-volumes-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A CoreV1Api stand-in that knows some Secrets of namespace `shop`. */
function ctx(secrets: Record<string, Record<string, string>>, reads: string[] = []): VolumeContext {
  const core = {
    async readNamespacedSecret({ name, namespace }: { name: string; namespace: string }) {
      reads.push(`${namespace}/${name}`);
      const data = namespace === 'shop' ? secrets[name] : undefined;
      if (!data) throw new ApiException(404, 'not found', { message: `secrets "${name}" not found` }, {});
      return { data };
    },
  };
  return { core: core as never, paths: agentPaths(dir), facts: { podIP: '127.1.0.9', hostIP: '127.0.0.1', nodeName: 'n' } };
}

function pod(volumes: V1Volume[]): V1Pod {
  return { metadata: { name: 'orders-0', namespace: 'shop', uid: 'pod-uid-1' }, spec: { containers: [{ name: 'server' }], volumes } };
}

describe('secret volumes', () => {
  it('writes every key as a file with defaultMode; the container path maps to it', async () => {
    const v = await preparePodVolumes(ctx({ 'orders-token': { token: b64('t0ken'), other: b64('x') } }), pod([{ name: 'token', secret: { secretName: 'orders-token', defaultMode: 0o440 } }]));
    const hostDir = v.get('token')!;
    expect((await readdir(hostDir)).sort()).toEqual(['other', 'token']);
    expect(await readFile(join(hostDir, 'token'), 'utf8')).toBe('t0ken');
    expect((await stat(join(hostDir, 'token'))).mode & 0o777).toBe(0o440);
    // What the agent does to `--auth-token-file /etc/eventlog/token/token`.
    expect(mapPath('/etc/eventlog/token/token', [{ containerPath: '/etc/eventlog/token', hostPath: hostDir }])).toBe(join(hostDir, 'token'));
  });

  it('items pick keys to paths, with their own mode', async () => {
    const v = await preparePodVolumes(
      ctx({ creds: { token: b64('abc'), unused: b64('y') } }),
      pod([{ name: 'c', secret: { secretName: 'creds', items: [{ key: 'token', path: 'sub/auth', mode: 0o400 }] } }]),
    );
    const hostDir = v.get('c')!;
    expect(await readdir(hostDir)).toEqual(['sub']);
    expect(await readFile(join(hostDir, 'sub', 'auth'), 'utf8')).toBe('abc');
    expect((await stat(join(hostDir, 'sub', 'auth'))).mode & 0o777).toBe(0o400);
  });

  it('a missing Secret keeps the pod waiting (VolumeNotReadyError) unless optional; each start reads it afresh', async () => {
    const reads: string[] = [];
    const missing = pod([{ name: 'token', secret: { secretName: 'orders-token' } }]);
    await expect(preparePodVolumes(ctx({}, reads), missing)).rejects.toThrow(VolumeNotReadyError);
    await expect(preparePodVolumes(ctx({}, reads), missing)).rejects.toThrow(/secret "orders-token" not found/);
    const optional = await preparePodVolumes(ctx({}, reads), pod([{ name: 'token', secret: { secretName: 'orders-token', optional: true } }]));
    expect(await readdir(optional.get('token')!)).toEqual([]);
    // Created later (a new token): the next preparation writes the new content.
    const v = await preparePodVolumes(ctx({ 'orders-token': { token: b64('new') } }, reads), missing);
    expect(await readFile(join(v.get('token')!, 'token'), 'utf8')).toBe('new');
    expect(reads.every((r) => r === 'shop/orders-token')).toBe(true);
  });

  it('a missing key named in items fails clearly; unsafe item paths are refused', async () => {
    await expect(preparePodVolumes(ctx({ s: { a: b64('1') } }), pod([{ name: 'v', secret: { secretName: 's', items: [{ key: 'token', path: 'token' }] } }]))).rejects.toThrow(
      /couldn't find key token in Secret shop\/s/,
    );
    await expect(preparePodVolumes(ctx({ s: { a: b64('1') } }), pod([{ name: 'v', secret: { secretName: 's', items: [{ key: 'a', path: '../escape' }] } }]))).rejects.toThrow(/must be relative/);
  });
});
