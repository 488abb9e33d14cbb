/**
 * Small helpers over @kubernetes/client-node 2.0.1 that the agent's modules share:
 * error classification, explicit patch content types, and a self-restarting
 * watch used only as a trigger (the agent is level-triggered: it re-lists).
 */
import { ApiException, PatchStrategy, Watch, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown; statusCode?: unknown } | null)?.statusCode ?? (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
export const isAlreadyExists = isConflict;

/** A short description of an API error for logs and status messages. */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: string } | string | undefined;
    const msg = typeof body === 'string' ? safeMessage(body) : body?.message;
    return `HTTP ${err.code}${msg ? `: ${msg}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: string };
    return parsed.message ?? body.slice(0, 300);
  } catch {
    return body.slice(0, 300);
  }
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Watch `path` forever and call `onEvent` for every event, restarting the watch
 * whenever it ends (the client closes idle watches after 30 s; errors back off
 * from 0.5 s to 10 s). It starts without a resourceVersion, so every restart
 * replays the current objects as ADDED — fine for a trigger, and no 410 handling.
 */
export function watchAsTrigger(kc: KubeConfig, path: string, onEvent: (type: string, obj: unknown) => void, signal: AbortSignal, log: Logger): Promise<void> {
  const watch = new Watch(kc);
  return (async () => {
    let failures = 0;
    while (!signal.aborted) {
      let abort: AbortController | undefined;
      const ended = new Promise<unknown>((resolve) => {
        watch
          .watch(path, { allowWatchBookmarks: false }, (type, obj) => onEvent(type, obj), (err) => resolve(err ?? null))
          .then((ctrl) => {
            abort = ctrl;
            if (signal.aborted) ctrl.abort();
          })
          .catch(resolve);
      });
      const onAbort = (): void => abort?.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      const err = await ended;
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) break;
      const timeout = err instanceof Error && err.name === 'TimeoutError';
      if (err && !timeout) {
        failures++;
        const delay = Math.min(500 * 2 ** (failures - 1), 10_000);
        log.warn({ path, err: describeError(err), retryInMs: delay }, 'watch ended with an error; restarting');
        await sleep(delay, signal);
      } else {
        failures = 0;
      }
    }
  })();
}
