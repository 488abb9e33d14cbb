/**
 * The GitOps examples in deploy/gitops/ point at ./deploy and ask for what the docs
 * promise (Flux waits on health; Argo CD syncs server-side), and what the real kstatus
 * library (sigs.k8s.io/cli-utils, via test/tools/cmd/kstatus: the rules of Flux's
 * `wait: true`) makes of every Argo CD health testdata object, next to Argo CD's view.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CUSTOMIZATION_DIR, ensureArgoLua, runHealthChecks } from '../support/argocd-lua.ts';
import { TOOL_BUILD_TIMEOUT_MS } from '../support/go-tools.ts';
import { ensureKStatus, kstatusOfAll, type KStatusResult } from '../support/kstatus.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const load = (path: string) => parse(readFileSync(join(repo, path), 'utf8')) as Record<string, any>;

describe('deploy/gitops examples', () => {
  it('Flux: a GitRepository and a Kustomization of ./deploy that waits for health', () => {
    const source = load('deploy/gitops/flux/gitrepository.yaml');
    const ks = load('deploy/gitops/flux/eventlog-operator.yaml');
    expect(source.kind).toBe('GitRepository');
    expect(ks).toMatchObject({ apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', spec: { path: './deploy', wait: true, prune: true } });
    expect(ks.spec.sourceRef).toEqual({ kind: 'GitRepository', name: source.metadata.name });
    expect(ks.metadata.namespace).toBe(source.metadata.namespace);
  });

  it('Argo CD: an Application of deploy/ with server-side apply', () => {
    const app = load('deploy/gitops/argocd/application.yaml');
    expect(app).toMatchObject({ kind: 'Application', spec: { source: { path: 'deploy' }, destination: { namespace: 'eventlog-system' } } });
    expect(app.spec.syncPolicy.syncOptions).toContain('ServerSideApply=true');
  });

  it('the sample EventLog can sync in the same run as the CRD', () => {
    const sample = load('deploy/samples/eventlog.yaml');
    expect(sample.kind).toBe('EventLog');
    expect(sample.metadata.annotations['argocd.argoproj.io/sync-options']).toContain('SkipDryRunOnMissingResource=true');
  });
});

describe('kstatus (the real library) on the Argo CD health testdata', () => {
  const dir = join(CUSTOMIZATION_DIR, 'testdata');
  const names = readdirSync(dir).map((f) => f.replace(/\.yaml$/, '')).sort();
  const objects = names.map((n) => parse(readFileSync(join(dir, `${n}.yaml`), 'utf8')) as Record<string, any>);
  // kstatus verdict and message, and Argo CD's health for the same object. Where they
  // differ, the comment says why; the operator never writes those states (every
  // condition carries the status's observedGeneration, and Ready is never False without
  // Reconciling=True or Stalled=True unless suspended: test/unit/gitops-kstatus.test.ts).
  const expected: Record<string, { kstatus: string; message: string; argo: string }> = {
    deleting: { kstatus: 'Terminating', message: 'Resource scheduled for deletion', argo: 'Progressing' },
    healthy: { kstatus: 'Current', message: 'Resource is Ready', argo: 'Healthy' },
    'healthy-with-reported-drift': { kstatus: 'Current', message: 'Resource is Ready', argo: 'Healthy' },
    // The race this CRD closes: the API server defaults status to {observedGeneration: 0}.
    'just-created': { kstatus: 'InProgress', message: 'EventLog generation is 1, but latest observed generation is 0', argo: 'Progressing' },
    // ...and what a CRD without that default gives: Current before the operator saw it.
    'no-status-yet': { kstatus: 'Current', message: 'Resource is current', argo: 'Progressing' },
    // kstatus finds no Ready, Reconciling or Stalled: nothing to wait for.
    'observed-without-conditions': { kstatus: 'Current', message: 'Resource is current', argo: 'Progressing' },
    'ready-unknown': { kstatus: 'InProgress', message: 'GET /status: connect ECONNREFUSED', argo: 'Progressing' },
    reconciling: { kstatus: 'InProgress', message: 'pod orders-0 is starting', argo: 'Progressing' },
    'stale-observed-generation': { kstatus: 'InProgress', message: 'EventLog generation is 3, but latest observed generation is 2', argo: 'Progressing' },
    // kstatus reads conditions without their observedGeneration; the Lua check does not.
    'stale-ready-condition': { kstatus: 'Current', message: 'Resource is Ready', argo: 'Progressing' },
    'stale-stalled-condition-is-ignored': { kstatus: 'Failed', message: 'old problem', argo: 'Healthy' },
    'stalled-corruption': { kstatus: 'Failed', message: 'interior corruption c-1f2e in 00000000.seg at offset 4096: crc mismatch', argo: 'Degraded' },
    'stalled-storage-class': { kstatus: 'Failed', message: 'StorageClass fast does not exist; PersistentVolumeClaim orders-data cannot be provisioned', argo: 'Degraded' },
    'suspended-before-observed': { kstatus: 'InProgress', message: 'EventLog generation is 5, but latest observed generation is 4', argo: 'Suspended' },
    suspended: { kstatus: 'Current', message: 'Resource is Ready', argo: 'Suspended' },
    'utf8-message': { kstatus: 'InProgress', message: 'café ✓ 日志', argo: 'Progressing' },
  };
  let verdicts: KStatusResult[];
  let health: { status: string }[];
  beforeAll(async () => {
    ensureKStatus();
    ensureArgoLua();
    [verdicts, health] = await Promise.all([kstatusOfAll(objects), runHealthChecks(objects)]);
  }, TOOL_BUILD_TIMEOUT_MS);

  it('every testdata object has an expectation', () => {
    expect(names).toEqual(Object.keys(expected).sort());
  });

  it.each(Object.entries(expected))('%s -> %o', (name, want) => {
    const i = names.indexOf(name);
    expect({ kstatus: verdicts[i]!.status, message: verdicts[i]!.message, argo: health[i]!.status }).toEqual(want);
    expect(verdicts[i]).toMatchObject({ kind: 'EventLog', namespace: 'shop', name: 'orders' });
  });

  it('InProgress and Failed carry the kstatus condition the library derived', () => {
    const byName = (n: string) => verdicts[names.indexOf(n)]!;
    expect(byName('just-created').conditions).toEqual([{ type: 'Reconciling', status: 'True', reason: 'LatestGenerationNotObserved', message: 'EventLog generation is 1, but latest observed generation is 0' }]);
    expect(byName('stalled-corruption').conditions).toEqual([{ type: 'Stalled', status: 'True', reason: 'CorruptionDetected', message: 'interior corruption c-1f2e in 00000000.seg at offset 4096: crc mismatch' }]);
    expect(byName('healthy').conditions).toEqual([]);
  });
});
