/**
 * Kubernetes Events (events.k8s.io/v1) about the objects the operator manages — what
 * `kubectl describe eventlog X` and `kubectl events` show an on-call engineer.
 *
 * Guarantees
 * - Deduplicated like client-go's event broadcaster: the same (object, type, reason,
 *   note) within `dedupeWindowMs` updates one Event's `series` (count,
 *   lastObservedTime) instead of creating another.
 * - `eventTime`/`lastObservedTime` are MicroTime with six fractional digits (the
 *   generated client's millisecond format is rejected by the API server).
 * - Best effort: recording never throws into a reconcile. A failure is logged with
 *   the object, reason and the API error, and the next identical call tries again.
 *
 * Caveats
 * - The dedupe memory is per process and bounded (`maxTracked`, oldest dropped): after
 *   a restart or leader change the first repeat creates a new Event.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../common/logger.ts';
import { formatMicroTime } from '../kube/time.ts';
import type { KubeHttp } from './kube-http.ts';
import { Resource, resourcePath } from './resources.ts';

export interface EventObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  resourceVersion?: string;
}

export interface EventSpec {
  type: 'Normal' | 'Warning';
  /** UpperCamelCase, e.g. DriftCorrected. */
  reason: string;
  /** What happened, for humans; at most 1 kB (longer notes are cut). */
  note: string;
  /** What the operator did, UpperCamelCase, e.g. Reconcile, Repair. */
  action: string;
}

interface Tracked {
  name: string;
  namespace: string;
  count: number;
  lastAt: number;
}

export interface EventRecorderOptions {
  http: KubeHttp;
  /** reportingController, e.g. eventlog.dev/eventlog-operator. */
  controller: string;
  /** reportingInstance: this replica (pod name or identity). */
  instance: string;
  log: Logger;
  now?: () => Date;
  dedupeWindowMs?: number;
  maxTracked?: number;
}

const NOTE_MAX = 1024;

export class EventRecorder {
  readonly #o: Required<Omit<EventRecorderOptions, 'now'>> & { now: () => Date };
  readonly #tracked = new Map<string, Tracked>();

  constructor(opts: EventRecorderOptions) {
    this.#o = { dedupeWindowMs: 6 * 60_000, maxTracked: 4096, now: () => new Date(), ...opts };
  }

  async record(target: EventObjectRef, event: EventSpec): Promise<void> {
    const note = event.note.length > NOTE_MAX ? `${event.note.slice(0, NOTE_MAX - 1)}…` : event.note;
    const key = [target.uid, event.type, event.reason, note].join('\u0000');
    const now = this.#o.now();
    const seen = this.#tracked.get(key);
    try {
      if (seen && now.getTime() - seen.lastAt < this.#o.dedupeWindowMs) {
        seen.count += 1;
        seen.lastAt = now.getTime();
        await this.#o.http.json('PATCH', resourcePath(Resource.events, seen.namespace, seen.name), {
          contentType: 'application/merge-patch+json',
          body: { series: { count: seen.count, lastObservedTime: formatMicroTime(now) } },
        });
        this.#touch(key, seen);
        return;
      }
      const name = `${target.name}.${randomBytes(8).toString('hex')}`;
      await this.#o.http.json('POST', resourcePath(Resource.events, target.namespace), {
        body: {
          apiVersion: 'events.k8s.io/v1',
          kind: 'Event',
          metadata: { name, namespace: target.namespace },
          eventTime: formatMicroTime(now),
          reportingController: this.#o.controller,
          reportingInstance: this.#o.instance,
          action: event.action,
          reason: event.reason,
          type: event.type,
          note,
          regarding: {
            apiVersion: target.apiVersion,
            kind: target.kind,
            namespace: target.namespace,
            name: target.name,
            uid: target.uid,
            ...(target.resourceVersion ? { resourceVersion: target.resourceVersion } : {}),
          },
        },
      });
      this.#touch(key, { name, namespace: target.namespace, count: 1, lastAt: now.getTime() });
    } catch (error) {
      // The Event may have been deleted (TTL) under a series: start a new one next time.
      this.#tracked.delete(key);
      this.#o.log.warn(
        { err: error, object: `${target.kind} ${target.namespace}/${target.name}`, reason: event.reason },
        'could not record a Kubernetes Event',
      );
    }
  }

  #touch(key: string, tracked: Tracked): void {
    this.#tracked.delete(key);
    this.#tracked.set(key, tracked);
    while (this.#tracked.size > this.#o.maxTracked) {
      const oldest = this.#tracked.keys().next().value;
      if (oldest === undefined) break;
      this.#tracked.delete(oldest);
    }
  }
}
