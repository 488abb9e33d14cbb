/**
 * Where the control-plane binaries (etcd, kube-apiserver, kube-controller-manager)
 * live. The same rules as test/envtest/install.sh, which builds them:
 *
 * 1. `KUBEBUILDER_ASSETS` (the envtest convention), per binary: a binary found
 *    there wins. setup-envtest assets hold etcd and kube-apiserver but no
 *    kube-controller-manager, which then comes from the cache (2.).
 * 2. The versioned cache directory install.sh builds into:
 *    `${EVENTLOG_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventlog-envtest}/k8s-<v>-etcd-<v>`,
 *    the versions read from test/envtest/go.mod (the single place they are pinned).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BINARY_NAMES = ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const;
export type BinaryName = (typeof BINARY_NAMES)[number];

export type BinaryPaths = Record<BinaryName, string>;

/** The Go module that pins the versions (repo-relative: test/envtest/go.mod). */
export const ENVTEST_GO_MOD = fileURLToPath(new URL('../../test/envtest/go.mod', import.meta.url));
const INSTALL_HINT = 'run test/envtest/install.sh (builds them with Go into the cache; seconds when warm), '
  + 'or set KUBEBUILDER_ASSETS to a directory that holds them';

export interface PinnedVersions {
  kubernetes: string;
  etcd: string;
}

/** Reads the pinned Kubernetes and etcd versions from the envtest go.mod. */
export function pinnedVersions(goModPath: string = ENVTEST_GO_MOD): PinnedVersions {
  let text: string;
  try {
    text = readFileSync(goModPath, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the pinned control-plane versions from ${goModPath}: ${(err as Error).message}`, { cause: err });
  }
  const kubernetes = /^\s*k8s\.io\/kubernetes\s+(v\d[^\s]*)/m.exec(text)?.[1];
  const etcd = /go\.etcd\.io\/etcd\/server\/v3\s+(v\d[^\s]*)/.exec(text)?.[1];
  if (!kubernetes || !etcd) {
    throw new Error(`cannot find the k8s.io/kubernetes and go.etcd.io/etcd/server/v3 versions in ${goModPath}`);
  }
  return { kubernetes, etcd };
}

/** The cache directory install.sh builds into (it may not exist yet). */
export function envtestCacheDir(env: NodeJS.ProcessEnv = process.env, versions: PinnedVersions = pinnedVersions()): string {
  const root = env.EVENTLOG_ENVTEST_CACHE
    || join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'eventlog-envtest');
  return join(root, `k8s-${versions.kubernetes}-etcd-${versions.etcd}`);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves the path of each needed binary, or throws one error naming every
 * missing binary, every place looked and how to fix it.
 */
export function resolveBinaries(
  needed: readonly BinaryName[] = BINARY_NAMES,
  env: NodeJS.ProcessEnv = process.env,
): BinaryPaths {
  const assets = env.KUBEBUILDER_ASSETS || undefined;
  let cacheDir: string | undefined;
  let cacheError: string | undefined;
  try {
    cacheDir = envtestCacheDir(env);
  } catch (err) {
    cacheError = (err as Error).message;
  }
  const dirs = [assets, cacheDir].filter((d): d is string => d !== undefined);
  const found: Partial<BinaryPaths> = {};
  const missing: BinaryName[] = [];
  for (const name of needed) {
    const hit = dirs.map((d) => join(d, name)).find(isExecutable);
    if (hit) found[name] = hit;
    else missing.push(name);
  }
  if (missing.length > 0) {
    const looked = [
      assets ? `KUBEBUILDER_ASSETS=${assets}` : 'KUBEBUILDER_ASSETS (unset)',
      cacheDir ? `the cache ${cacheDir}` : `the cache (${cacheError})`,
    ].join(' and ');
    throw new Error(`control-plane binaries not found: ${missing.join(', ')} (looked in ${looked}); ${INSTALL_HINT}`);
  }
  // Binaries not needed (e.g. no controller manager) still get a best-effort path.
  for (const name of BINARY_NAMES) found[name] ??= join(dirs[0] ?? '.', name);
  return found as BinaryPaths;
}
