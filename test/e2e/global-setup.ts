/**
 * vitest globalSetup for the `e2e` project: builds what the tier needs (the
 * control-plane binaries, the real node's binaries, the project image — each
 * idempotent and cached), then starts the control plane and a real node (kubelet +
 * containerd, dev/node/) under one fixed data dir, reclaiming a crashed run's
 * leftovers first. The tests then do what the README tells a user, with kubectl.
 *
 * Linux and root only. Anything missing throws and the run fails loudly: no skip.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startControlPlane, type ControlPlane } from '../../dev/cluster/controlplane.ts';
import { controlPlaneOptions, leftovers, prepareNetwork, reclaimRealNode, startRealNode, type RealNode } from '../../dev/node/realnode.ts';
import { createLogger } from '../../src/common/logger.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    e2eKubeconfig: string;
    e2eDataDir: string;
    e2eBinDir: string;
    e2eImage: string;
  }
}

const ROOT = resolve(import.meta.dirname, '../..');
export const E2E_DIR = process.env.EVENTLOG_E2E_DIR ?? '/var/tmp/eventlog-e2e';
const IMAGE = 'eventlog:dev'; // the README's tag (deploy/ uses it)

/** Runs a script; its progress (stderr) goes to ours; resolves with its last stdout line. */
function runScript(script: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn('bash', [resolve(ROOT, script)], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
    child.once('error', rej);
    child.once('exit', (code, signal) => (code === 0 ? res(out.trim().split('\n').at(-1) ?? '') : rej(new Error(`${script} exited with ${code ?? signal} (see its output above)`))));
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = createLogger('e2e-setup', process.env.LOG_LEVEL ?? 'info');
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    throw new Error('the e2e tier needs Linux and root (it runs kubelet and containerd); it does not skip');
  }
  const t0 = Date.now();
  const binDir = await runScript('test/realnode/install.sh');
  await runScript('test/envtest/install.sh');
  log.info({ binDir, s: Math.round((Date.now() - t0) / 1000) }, 'e2e: binaries ready');
  // README step 1, verbatim: bash scripts/build-image.sh
  await runScript('scripts/build-image.sh', { EVENTLOG_IMAGE: IMAGE });
  log.info({ s: Math.round((Date.now() - t0) / 1000) }, 'e2e: image ready');

  // A crashed run's node leftovers, then a fresh data dir (fresh etcd).
  await reclaimRealNode(E2E_DIR, binDir, log);
  await rm(E2E_DIR, { recursive: true, force: true });

  let cp: ControlPlane | undefined;
  let node: RealNode | undefined;
  const stopAll = async () => {
    await node?.stop().catch((e: unknown) => log.error({ err: e }, 'e2e: node stop failed'));
    await cp?.stop().catch((e: unknown) => log.error({ err: e }, 'e2e: control plane stop failed'));
    // A clean stop leaves nothing behind: fail loudly otherwise.
    const left = node ? leftovers(E2E_DIR) : [];
    if (left.length) throw new Error(`e2e: the real node left behind: ${left.join('; ')}`);
  };
  try {
    await prepareNetwork();
    const extra = await controlPlaneOptions(E2E_DIR);
    cp = await startControlPlane({ dataDir: E2E_DIR, log, etcdUnsafeNoFsync: true, ...extra });
    node = await startRealNode({
      dataDir: E2E_DIR, binDir, server: cp.server, caCertPath: cp.caCertPath, adminKubeConfig: cp.kubeConfig, images: [IMAGE], log,
    });
  } catch (err) {
    await stopAll().catch((e: unknown) => log.error({ err: e }, 'e2e: cleanup after a failed start'));
    throw new Error(`e2e: the control plane or the real node did not start: ${(err as Error).message}`, { cause: err });
  }
  log.info({ s: Math.round((Date.now() - t0) / 1000), kubeconfig: cp.kubeconfigPath }, 'e2e: cluster with a real node up');
  project.provide('e2eKubeconfig', cp.kubeconfigPath);
  project.provide('e2eDataDir', E2E_DIR);
  project.provide('e2eBinDir', binDir);
  project.provide('e2eImage', IMAGE);
  return stopAll;
}
