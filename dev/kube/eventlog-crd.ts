/**
 * Installs the generated EventLog CRD (`crds/eventlog.dev_eventlogs.yaml`) with
 * server-side apply and waits until the API server serves the new kind: a just-created
 * CRD takes a moment before `eventlogs` answers. Used by `npm run dev`, the integration
 * tests and `npm run bench:operator`; on a real cluster `kubectl apply -k deploy/` does it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { CRD_FILE } from '../../src/api/crd.ts';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { ManifestApplier } from '../../src/kube/apply.ts';

const REPO = join(import.meta.dirname, '..', '..');

export async function installEventLogCrd(kc: KubeConfig, fieldManager: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const crd = parse(readFileSync(join(REPO, CRD_FILE), 'utf8')) as KubernetesObject;
  await ManifestApplier.forConfig(kc).apply(crd, fieldManager, { force: true });
  const http = new KubeHttp(kc);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await http.json('GET', '/apis/eventlog.dev/v1alpha1/eventlogs', { query: { limit: 1 }, timeoutMs: 5_000 });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the EventLog CRD is not served after ${timeoutMs / 1000} s: ${(error as Error).message}`, { cause: error });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
