import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envtestCacheDir, pinnedVersions, resolveBinaries } from '../../../../dev/cluster/binaries.ts';

const root = mkdtempSync(join(tmpdir(), 'binaries-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fakeBinaries(dir: string, names: string[]): string {
  mkdirSync(dir, { recursive: true });
  for (const n of names) {
    writeFileSync(join(dir, n), '#!/bin/sh\n');
    chmodSync(join(dir, n), 0o755);
  }
  return dir;
}

describe('control-plane binaries', () => {
  const v = pinnedVersions();

  it('reads the pinned versions from test/envtest/go.mod', () => {
    expect(v.kubernetes).toMatch(/^v1\.\d+\.\d+$/);
    expect(v.etcd).toMatch(/^v3\.\d+\.\d+$/);
  });

  it('uses the same versioned cache dir as install.sh', () => {
    const leaf = `k8s-${v.kubernetes}-etcd-${v.etcd}`;
    expect(envtestCacheDir({ EVENTLOG_ENVTEST_CACHE: '/c' })).toBe(`/c/${leaf}`);
    expect(envtestCacheDir({ XDG_CACHE_HOME: '/x' })).toBe(`/x/eventlog-envtest/${leaf}`);
    expect(envtestCacheDir({ HOME: '/h' })).toBe(`/h/.cache/eventlog-envtest/${leaf}`);
  });

  it('prefers KUBEBUILDER_ASSETS per binary and falls back to the cache', () => {
    const assets = fakeBinaries(join(root, 'assets'), ['etcd', 'kube-apiserver']);
    const cacheRoot = join(root, 'cache');
    const cache = fakeBinaries(envtestCacheDir({ EVENTLOG_ENVTEST_CACHE: cacheRoot }), ['etcd', 'kube-apiserver', 'kube-controller-manager']);
    const paths = resolveBinaries(undefined, { KUBEBUILDER_ASSETS: assets, EVENTLOG_ENVTEST_CACHE: cacheRoot });
    expect(paths).toEqual({
      etcd: join(assets, 'etcd'),
      'kube-apiserver': join(assets, 'kube-apiserver'),
      'kube-controller-manager': join(cache, 'kube-controller-manager'),
    });
  });

  it('says what is missing, where it looked and how to install', () => {
    const assets = fakeBinaries(join(root, 'only-etcd'), ['etcd']);
    const cacheRoot = join(root, 'empty-cache');
    expect(() => resolveBinaries(undefined, { KUBEBUILDER_ASSETS: assets, EVENTLOG_ENVTEST_CACHE: cacheRoot }))
      .toThrow(/not found: kube-apiserver, kube-controller-manager .*KUBEBUILDER_ASSETS=.*only-etcd.*empty-cache.*test\/envtest\/install\.sh/s);
  });
});
