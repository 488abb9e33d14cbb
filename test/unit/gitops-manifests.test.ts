/**
 * The GitOps examples in deploy/gitops/ point at ./deploy and ask for what the docs
 * promise (Flux waits on health; Argo CD syncs server-side), and the kstatus reader the
 * integration tests use on live objects (test/support/kstatus.ts) agrees with the
 * health fixtures where kstatus and Argo CD mean the same thing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { computeKStatus } from '../support/kstatus.ts';

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

describe('kstatus reader (test/support/kstatus.ts) on the health fixtures', () => {
  const dir = join(repo, 'test/unit/gitops/fixtures');
  const fixture = (name: string) => (JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { object: Parameters<typeof computeKStatus>[0] }).object;
  // Argo CD health -> kstatus, where both say the same thing.
  const expected: Record<string, string> = {
    healthy: 'Current',
    'healthy-with-reported-drift': 'Current',
    'stale-observed-generation': 'InProgress',
    reconciling: 'InProgress',
    'ready-unknown': 'InProgress',
    'stalled-corruption': 'Failed',
    'stalled-storage-class': 'Failed',
  };
  it.each(Object.entries(expected))('%s -> %s', (name, status) => {
    expect(computeKStatus(fixture(name)).status).toBe(status);
  });

  it('covers fixtures that exist', () => {
    const names = new Set(readdirSync(dir).map((f) => f.replace(/\.json$/, '')));
    for (const name of Object.keys(expected)) expect(names.has(name), name).toBe(true);
  });

  it('Terminating wins over everything', () => {
    expect(computeKStatus({ metadata: { generation: 1, deletionTimestamp: '2026-01-01T00:00:00Z' }, status: { observedGeneration: 1 } }).status).toBe('Terminating');
  });
});
