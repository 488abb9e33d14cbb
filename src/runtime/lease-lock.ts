/**
 * The Lease lock leader election runs on: read, create and update one
 * `coordination.k8s.io/v1` Lease with optimistic concurrency (every update carries the
 * resourceVersion that was read), keeping fields other writers set.
 */
import type { KubeAccess } from './kubeconfig.ts';
import { KubeHttp, statusCodeOf } from './kube-http.ts';
import { Resource, resourcePath } from './resources.ts';

/** The leader-election fields of a Lease spec. Times are MicroTime strings. */
export interface LeaseRecord {
  /** '' when released. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions: number;
}

/** A Lease as read: its record and the resourceVersion to update against. */
export interface LeaseSnapshot {
  record: LeaseRecord;
  resourceVersion: string;
}

/**
 * Storage of the record. `KubeLeaseLock` is the real one; unit tests use an in-memory
 * fake. Errors carry `statusCode` (409 for create-exists / update-conflict).
 */
export interface LeaseLock {
  /** "namespace/name", for logs. */
  readonly description: string;
  /** The current Lease, or undefined if it does not exist. */
  get(signal: AbortSignal): Promise<LeaseSnapshot | undefined>;
  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot>;
  /** Replace the record if the Lease is still at `prev.resourceVersion` (else 409). */
  update(prev: LeaseSnapshot, record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot>;
}


interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number | null;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number | null;
    [k: string]: unknown;
  };
}

function toSnapshot(obj: LeaseObject): LeaseSnapshot {
  const s = obj.spec ?? {};
  const record: LeaseRecord = {
    holderIdentity: s.holderIdentity ?? '',
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    leaseTransitions: s.leaseTransitions ?? 0,
  };
  if (s.acquireTime) record.acquireTime = s.acquireTime;
  if (s.renewTime) record.renewTime = s.renewTime;
  return { record, resourceVersion: obj.metadata?.resourceVersion ?? '' };
}

/** A Lease in the cluster, through raw JSON requests (so MicroTime keeps its format). */
export class KubeLeaseLock implements LeaseLock {
  readonly description: string;
  readonly #http: KubeHttp;
  readonly #namespace: string;
  readonly #name: string;
  /** The last object read or written, so an update keeps labels/annotations/other spec fields. */
  #last: LeaseObject | undefined;

  constructor(kc: KubeAccess | KubeHttp, namespace: string, name: string) {
    this.#http = kc instanceof KubeHttp ? kc : new KubeHttp(kc, { requestTimeoutMs: 30_000 });
    this.#namespace = namespace;
    this.#name = name;
    this.description = `${namespace}/${name}`;
  }

  #path(withName: boolean): string {
    return resourcePath(Resource.leases, this.#namespace, withName ? this.#name : undefined);
  }

  async get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    try {
      const obj = await this.#http.json<LeaseObject>('GET', this.#path(true), { signal });
      this.#last = obj;
      return toSnapshot(obj);
    } catch (err) {
      if (statusCodeOf(err) === 404) {
        this.#last = undefined;
        return undefined;
      }
      throw err;
    }
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    const body: LeaseObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.#name, namespace: this.#namespace },
      spec: { ...record },
    };
    const obj = await this.#http.json<LeaseObject>('POST', this.#path(false), { body, signal });
    this.#last = obj;
    return toSnapshot(obj);
  }

  async update(prev: LeaseSnapshot, record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    const base = this.#last && this.#last.metadata?.resourceVersion === prev.resourceVersion ? this.#last : undefined;
    const body: LeaseObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      ...base,
      metadata: { ...base?.metadata, name: this.#name, namespace: this.#namespace, resourceVersion: prev.resourceVersion },
      spec: {
        ...base?.spec,
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        acquireTime: record.acquireTime ?? null,
        renewTime: record.renewTime ?? null,
        leaseTransitions: record.leaseTransitions,
      },
    };
    const obj = await this.#http.json<LeaseObject>('PUT', this.#path(true), { body, signal });
    this.#last = obj;
    return toSnapshot(obj);
  }
}

