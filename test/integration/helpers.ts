/**
 * Helpers for integration tests against the shared control plane started by
 * global-setup.ts.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { installEventLogCrd } from '../../dev/kube/eventlog-crd.ts';

/** The admin KubeConfig of the shared control plane. Also sets KUBECONFIG for child processes. */
export function kubeConfigFromInject(): KubeConfig {
  const path = inject('kubeconfigPath');
  if (!path) throw new Error('kubeconfigPath was not provided: is test/integration/global-setup.ts the globalSetup?');
  process.env.KUBECONFIG = path;
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export interface FreshNamespace {
  name: string;
  /** Deletes the namespace (the namespace controller then deletes its content). */
  cleanup(): Promise<void>;
}

/**
 * Creates a namespace with a unique name starting with `prefix`, labelled
 * `eventlog.dev/test=true`. Call `cleanup()` in afterEach/afterAll.
 */
export async function freshNamespace(prefix: string, kc: KubeConfig = kubeConfigFromInject()): Promise<FreshNamespace> {
  const core = kc.makeApiClient(CoreV1Api);
  const base = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 50) || 'test';
  const name = `${base}-${randomBytes(4).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'eventlog.dev/test': 'true' } } } });
  return {
    name,
    cleanup: async () => {
      try {
        await core.deleteNamespace({ name });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
    },
  };
}

export interface WaitForOptions {
  /** What is awaited, for the timeout error: "child ConfigMap to be garbage-collected". */
  message: string;
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Polls `predicate` until it returns a truthy value, and returns that value.
 * A throwing predicate counts as "not yet"; on timeout the error names what was
 * awaited and the last value or error seen.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  { message, timeoutMs = 30_000, intervalMs = 200 }: WaitForOptions,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: string = 'never evaluated';
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      last = `returned ${JSON.stringify(value)}`;
    } catch (err) {
      last = `threw ${(err as Error).message}`;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message} (last attempt ${last})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The HTTP status of a @kubernetes/client-node ApiException (or undefined). */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Applies the committed EventLog CRD (crds/) and waits until the API server serves it. */
export async function ensureEventLogCrd(kc: KubeConfig = kubeConfigFromInject()): Promise<void> {
  await installEventLogCrd(kc, 'integration-tests');
}
