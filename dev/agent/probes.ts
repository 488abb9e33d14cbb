/**
 * Probes, as the kubelet runs them: httpGet (2xx/3xx = success) and tcpSocket
 * against the pod IP, every periodSeconds after initialDelaySeconds, with
 * success/failure thresholds. exec probes cannot run inside a local process's
 * "container" and are reported as unsupported (treated as success, logged).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { V1ContainerPort, V1Probe } from '@kubernetes/client-node';

export type ProbeKind = 'readiness' | 'liveness' | 'startup';

export interface ProbeResult {
  ok: boolean;
  message?: string;
}

/** Threshold bookkeeping: a pure state machine, one per probe. */
export class ProbeTracker {
  readonly successThreshold: number;
  readonly failureThreshold: number;
  #successes = 0;
  #failures = 0;
  #result: boolean;

  constructor(kind: ProbeKind, probe: V1Probe) {
    this.successThreshold = Math.max(1, probe.successThreshold ?? 1);
    this.failureThreshold = Math.max(1, probe.failureThreshold ?? 3);
    // kubelet: readiness starts as failed, liveness as passed, startup as not yet passed.
    this.#result = kind === 'liveness';
  }

  /** Record one probe outcome; returns the (possibly changed) overall result. */
  record(ok: boolean): boolean {
    if (ok) {
      this.#failures = 0;
      this.#successes++;
      if (this.#successes >= this.successThreshold) this.#result = true;
    } else {
      this.#successes = 0;
      this.#failures++;
      if (this.#failures >= this.failureThreshold) this.#result = false;
    }
    return this.#result;
  }

  get result(): boolean {
    return this.#result;
  }

  /** Consecutive failed attempts so far. */
  get failures(): number {
    return this.#failures;
  }
}

function resolvePort(port: number | string | undefined, ports: readonly V1ContainerPort[]): number | undefined {
  if (typeof port === 'number') return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return ports.find((p) => p.name === port)?.containerPort;
}

/** One probe attempt. */
export async function probeOnce(probe: V1Probe, podIP: string, ports: readonly V1ContainerPort[]): Promise<ProbeResult> {
  const timeoutMs = Math.max(1, probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const g = probe.httpGet;
    const port = resolvePort(g.port as number | string, ports);
    if (port === undefined) return { ok: false, message: `httpGet port ${JSON.stringify(g.port)} not found in container ports` };
    const host = g.host || podIP;
    const scheme = (g.scheme ?? 'HTTP').toUpperCase();
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/eventlog-agent', accept: '*/*' };
    for (const h of g.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
    const path = g.path ?? '/';
    return new Promise<ProbeResult>((resolve) => {
      const req = (scheme === 'HTTPS' ? httpsRequest : httpRequest)(
        { host, port, path, method: 'GET', headers, timeout: timeoutMs, rejectUnauthorized: false, agent: false },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          res.on('end', () => resolve(code >= 200 && code < 400 ? { ok: true } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` }));
          res.on('error', (err) => resolve({ ok: false, message: err.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`Get "${scheme.toLowerCase()}://${host}:${port}${path}": context deadline exceeded (timeout ${timeoutMs} ms)`)));
      req.on('error', (err) => resolve({ ok: false, message: err.message }));
      req.end();
    });
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port as number | string, ports);
    if (port === undefined) return { ok: false, message: `tcpSocket port ${JSON.stringify(probe.tcpSocket.port)} not found in container ports` };
    const host = probe.tcpSocket.host || podIP;
    return new Promise<ProbeResult>((resolve) => {
      const sock = connect({ host, port, timeout: timeoutMs });
      sock.once('connect', () => {
        sock.destroy();
        resolve({ ok: true });
      });
      sock.once('timeout', () => {
        sock.destroy();
        resolve({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` });
      });
      sock.once('error', (err) => resolve({ ok: false, message: err.message }));
    });
  }
  return { ok: true, message: 'unsupported probe handler (exec/grpc) on the local node agent; treated as success' };
}

/**
 * Runs one probe on its schedule until stopped, calling `onChange` whenever
 * the overall result flips and `onFailure` for every failed attempt.
 */
export class ProbeWorker {
  readonly kind: ProbeKind;
  readonly tracker: ProbeTracker;
  readonly #probe: V1Probe;
  readonly #podIP: string;
  readonly #ports: readonly V1ContainerPort[];
  readonly #onChange: (result: boolean, last: ProbeResult) => void;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(kind: ProbeKind, probe: V1Probe, podIP: string, ports: readonly V1ContainerPort[], onChange: (result: boolean, last: ProbeResult) => void) {
    this.kind = kind;
    this.#probe = probe;
    this.#podIP = podIP;
    this.#ports = ports;
    this.#onChange = onChange;
    this.tracker = new ProbeTracker(kind, probe);
  }

  start(): void {
    const delay = Math.max(0, this.#probe.initialDelaySeconds ?? 0) * 1000;
    this.#schedule(delay);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), ms);
  }

  async #tick(): Promise<void> {
    const started = Date.now();
    const result = await probeOnce(this.#probe, this.#podIP, this.#ports).catch((err: unknown) => ({
      ok: false,
      message: err instanceof Error ? err.message : String(err),
    }));
    if (this.#stopped) return;
    const before = this.tracker.result;
    const after = this.tracker.record(result.ok);
    if (after !== before || !result.ok) this.#onChange(after, result);
    const period = Math.max(1, this.#probe.periodSeconds ?? 10) * 1000;
    this.#schedule(Math.max(0, period - (Date.now() - started)));
  }
}
