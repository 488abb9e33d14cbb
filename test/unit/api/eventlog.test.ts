import { describe, expect, it } from 'vitest';
import {
  API_VERSION,
  ConditionReasons,
  ConditionType,
  EventLogStatusSchema,
  FINALIZER,
  APPROVE_REPAIR_ANNOTATION,
  KIND,
  parseEventLog,
  parseEventLogSpec,
  validateSpecUpdate,
  type EventLogSpec,
  type EventLogSpecInput,
} from '../../../src/api/eventlog.ts';

function ok(input: unknown): EventLogSpec {
  const r = parseEventLogSpec(input, 'ns/test');
  if (!r.success) throw new Error(r.error);
  return r.data;
}

function errorOf(input: unknown): string {
  const r = parseEventLogSpec(input, 'ns/test');
  if (r.success) throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
  return r.error;
}

describe('EventLog spec: defaults', () => {
  it('applies the schema defaults to a minimal spec', () => {
    expect(ok({ storage: { size: '1Gi' } })).toEqual({
      storage: { size: '1Gi', retentionPolicy: 'Retain', restartPodForResize: false },
      durability: 'Fsync',
      driftPolicy: 'Correct',
      suspend: false,
    });
  });

  it('keeps explicit values', () => {
    const spec = ok({
      storage: { size: '5Gi', storageClassName: 'fast-ssd', retentionPolicy: 'Delete' },
      durability: 'None',
      driftPolicy: 'Report',
      suspend: true,
      image: 'registry.example.com/eventlog:1.2.3',
    });
    expect(spec.storage).toEqual({ size: '5Gi', storageClassName: 'fast-ssd', retentionPolicy: 'Delete', restartPodForResize: false });
    expect(spec.durability).toBe('None');
    expect(spec.driftPolicy).toBe('Report');
    expect(spec.suspend).toBe(true);
    expect(spec.image).toBe('registry.example.com/eventlog:1.2.3');
  });

  it('normalises integer quantities to strings', () => {
    const spec = ok({ storage: { size: 1073741824 }, resources: { requests: { cpu: 1, memory: '256Mi' } } });
    expect(spec.storage.size).toBe('1073741824');
    expect(spec.resources?.requests).toEqual({ cpu: '1', memory: '256Mi' });
  });

  it('strips unknown fields instead of failing (the API server prunes them anyway)', () => {
    const spec = ok({ storage: { size: '1Gi', extra: 1 }, futureField: true });
    expect(spec).not.toHaveProperty('futureField');
    expect(spec.storage).not.toHaveProperty('extra');
  });

  it('accepts a full pod template and client selector', () => {
    const spec = ok({
      storage: { size: '1Gi' },
      resources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { cpu: '1', memory: '128Mi' } },
      podTemplate: {
        labels: { team: 'payments', 'example.com/tier': 'gold' },
        annotations: { 'example.com/note': 'anything: goes here' },
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'logs', effect: 'NoExecute', tolerationSeconds: 60 }, { operator: 'Exists' }],
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } },
        priorityClassName: 'high-priority',
      },
      clients: { podSelector: { matchLabels: { app: 'api' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }] } },
    });
    expect(spec.podTemplate?.affinity?.nodeAffinity).toEqual({ requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } });
    expect(spec.clients?.podSelector?.matchExpressions?.[0]?.operator).toBe('In');
  });
});

describe('EventLog spec: rejected with readable messages', () => {
  it('names the missing storage', () => {
    const e = errorOf({});
    expect(e).toContain('invalid EventLog ns/test');
    expect(e).toContain('at storage');
  });

  it('requires storage.size', () => {
    expect(errorOf({ storage: {} })).toMatch(/storage\.size/);
  });

  it.each([
    ['10Xi', 'must be a Kubernetes quantity'],
    ['ten gigs', 'must be a Kubernetes quantity'],
    ['-1Gi', 'must be a Kubernetes quantity'],
    ['0', 'storage.size must be greater than zero'],
    ['0Gi', 'storage.size must be greater than zero'],
  ])('rejects storage.size %j', (size, message) => {
    const e = errorOf({ storage: { size } });
    expect(e).toContain(message);
    expect(e).toContain('at storage.size');
  });

  it('rejects unknown enum values and lists the allowed ones', () => {
    const e = errorOf({ storage: { size: '1Gi', retentionPolicy: 'Keep' }, durability: 'Sometimes', driftPolicy: 'Ignore' });
    expect(e).toContain('"Retain"|"Delete"');
    expect(e).toContain('"Fsync"|"Interval"|"None"');
    expect(e).toContain('"Correct"|"Report"');
  });

  it('rejects a storageClassName that is not a DNS subdomain', () => {
    expect(errorOf({ storage: { size: '1Gi', storageClassName: 'Fast_SSD' } })).toContain('lowercase DNS subdomain');
  });

  it('rejects requests above limits', () => {
    const e = errorOf({ storage: { size: '1Gi' }, resources: { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } } });
    expect(e).toContain('resources.requests.memory must not exceed resources.limits.memory');
  });

  it('compares quantities exactly across spellings', () => {
    ok({ storage: { size: '1Gi' }, resources: { requests: { cpu: '1000m', memory: '1024Mi' }, limits: { cpu: '1', memory: '1Gi' } } });
  });

  it('rejects reserved and malformed label keys, naming the key', () => {
    const e = errorOf({ storage: { size: '1Gi' }, podTemplate: { labels: { 'eventlog.dev/name': 'x', 'bad key': 'v' } } });
    expect(e).toContain('"eventlog.dev/name": keys with the prefix "eventlog.dev/" are reserved');
    expect(e).toContain('key "bad key" must be a qualified name');
  });

  it('rejects bad label values', () => {
    expect(errorOf({ storage: { size: '1Gi' }, podTemplate: { labels: { team: 'not ok!' } } })).toContain('must be a label value');
  });

  it('checks tolerations like the Pod API', () => {
    expect(errorOf({ storage: { size: '1Gi' }, podTemplate: { tolerations: [{ operator: 'Exists', value: 'x' }] } })).toContain(
      'value must be empty when operator is Exists',
    );
    expect(errorOf({ storage: { size: '1Gi' }, podTemplate: { tolerations: [{ value: 'x' }] } })).toContain('operator must be Exists when key is empty');
    expect(errorOf({ storage: { size: '1Gi' }, podTemplate: { tolerations: [{ key: 'k', tolerationSeconds: 5 }] } })).toContain(
      'tolerationSeconds is only allowed with effect NoExecute',
    );
  });

  it('checks label selector requirements', () => {
    const base = { storage: { size: '1Gi' } };
    expect(errorOf({ ...base, clients: { podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } } })).toContain(
      'values must be non-empty for operator In or NotIn',
    );
    expect(errorOf({ ...base, clients: { podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } } })).toContain(
      'values must be empty for operator Exists or DoesNotExist',
    );
  });

  it('rejects an image with whitespace', () => {
    expect(errorOf({ storage: { size: '1Gi' }, image: 'my image' })).toContain('image reference without whitespace');
  });
});

describe('EventLog spec: update rules (the CEL transition rules)', () => {
  const base: EventLogSpecInput = { storage: { size: '10Gi', storageClassName: 'standard' } };

  it('allows growing and equal re-spellings of the size', () => {
    expect(validateSpecUpdate(base, { storage: { size: '20Gi', storageClassName: 'standard' } })).toEqual([]);
    expect(validateSpecUpdate(base, { storage: { size: '10240Mi', storageClassName: 'standard' } })).toEqual([]);
  });

  it('refuses shrinking', () => {
    expect(validateSpecUpdate(base, { storage: { size: '9Gi', storageClassName: 'standard' } })).toEqual([
      'storage.size can only grow: a PersistentVolumeClaim cannot be shrunk',
    ]);
  });

  it('refuses changing, removing or adding storageClassName', () => {
    const msg = 'storage.storageClassName is immutable: it cannot be added, changed or removed after creation';
    expect(validateSpecUpdate(base, { storage: { size: '10Gi', storageClassName: 'fast' } })).toEqual([msg]);
    expect(validateSpecUpdate(base, { storage: { size: '10Gi' } })).toEqual([msg]);
    expect(validateSpecUpdate({ storage: { size: '10Gi' } }, { storage: { size: '10Gi', storageClassName: 'fast' } })).toEqual([msg]);
  });
});

describe('EventLog constants and status', () => {
  it('has the agreed identity', () => {
    expect(API_VERSION).toBe('eventlog.dev/v1alpha1');
    expect(KIND).toBe('EventLog');
    expect(FINALIZER).toBe('eventlog.dev/finalizer');
    expect(APPROVE_REPAIR_ANNOTATION).toBe('eventlog.dev/approve-repair');
  });

  it('defines reasons for every condition type, all valid metav1.Condition reasons', () => {
    expect(Object.keys(ConditionReasons).sort()).toEqual(Object.values(ConditionType).sort());
    for (const reasons of Object.values(ConditionReasons)) {
      for (const [k, v] of Object.entries(reasons)) {
        expect(v).toBe(k);
        expect(v).toMatch(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/);
      }
    }
  });

  it('parses a full status', () => {
    const now = '2026-11-22T04:00:00Z';
    const status = {
      observedGeneration: 3,
      conditions: [
        { type: 'Ready', status: 'True', reason: 'LogAvailable', message: 'serving', lastTransitionTime: now, observedGeneration: 3 },
        { type: 'Stalled', status: 'False', reason: 'NotStalled', message: '', lastTransitionTime: now, observedGeneration: 3 },
      ],
      phase: 'Ready',
      endpoint: 'http://orders.default.svc:8080',
      pod: { name: 'orders', uid: 'u1', phase: 'Running', ready: true, restarts: 0, bootId: 'b2', startedAt: now },
      storage: { pvcName: 'orders-data', storageClassName: 'standard', phase: 'Bound', requested: '1Gi', capacity: '1Gi', resizing: false },
      recovery: {
        lastOutcome: 'TornTailTruncated',
        at: now,
        durationMs: 12,
        recordsRecovered: 100,
        bytesTruncated: 17,
        history: [
          { bootId: 'b2', outcome: 'TornTailTruncated', at: now, durationMs: 12, recordsRecovered: 100, bytesTruncated: 17 },
          { bootId: 'b1', outcome: 'Clean', at: now },
        ],
        repair: { corruptionId: 'c1', approvedAt: now, completedAt: now, result: 'Succeeded', bytesDiscarded: 4096, recordsDiscarded: 3 },
      },
      drift: {
        detected: false,
        items: [],
        lastDetectedAt: now,
        lastCorrectedAt: now,
        corrections: 2,
      },
      log: { records: 100, bytes: 4096, lastSequence: 99, updatedAt: now },
    };
    expect(EventLogStatusSchema.parse(status)).toEqual(status);
  });

  it('rejects a condition without a valid status or reason', () => {
    const bad = { conditions: [{ type: 'Ready', status: 'Yes', reason: 'not a reason', message: '', lastTransitionTime: '2026-11-22T04:00:00Z' }] };
    expect(EventLogStatusSchema.safeParse(bad).success).toBe(false);
  });

  it('parses a whole object and names it in errors', () => {
    const obj = { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'orders', namespace: 'shop', generation: 1 }, spec: { storage: { size: '1Gi' } } };
    const r = parseEventLog(obj);
    expect(r.success && r.data.spec.durability).toBe('Fsync');
    const bad = parseEventLog({ ...obj, spec: { storage: { size: 'x' } } });
    expect(bad.success).toBe(false);
    expect(!bad.success && bad.error).toContain('invalid EventLog shop/orders');
  });
});

describe('EventLog spec: storage lifecycle (autoGrow, retention)', () => {
  it('autoGrow defaults usedPercent 80 and increment 50%; maxSize is required', () => {
    expect(ok({ storage: { size: '64Mi', autoGrow: { maxSize: '1Gi' } } }).storage.autoGrow).toEqual({ usedPercent: 80, increment: '50%', maxSize: '1Gi' });
    expect(errorOf({ storage: { size: '64Mi', autoGrow: { usedPercent: 80 } } })).toMatch(/maxSize/);
  });
  it('rejects a maxSize below size, a bad increment and an out-of-range usedPercent, with readable messages', () => {
    expect(errorOf({ storage: { size: '2Gi', autoGrow: { maxSize: '1Gi' } } })).toMatch(/storage.autoGrow.maxSize must be at least storage.size/);
    expect(errorOf({ storage: { size: '1Gi', autoGrow: { maxSize: '2Gi', increment: '0%' } } })).toMatch(/percentage of the current capacity/);
    expect(errorOf({ storage: { size: '1Gi', autoGrow: { maxSize: '2Gi', increment: 'lots' } } })).toMatch(/percentage of the current capacity/);
    expect(errorOf({ storage: { size: '1Gi', autoGrow: { maxSize: '2Gi', usedPercent: 40 } } })).toMatch(/usedPercent|50/);
    expect(ok({ storage: { size: '1Gi', autoGrow: { maxSize: '2Gi', increment: '512Mi' } } }).storage.autoGrow?.increment).toBe('512Mi');
  });
  it('retention takes a duration and a quantity', () => {
    expect(ok({ storage: { size: '1Gi' }, retention: { maxAge: '168h', maxBytes: '500Mi' } }).retention).toEqual({ maxAge: '168h', maxBytes: '500Mi' });
    expect(ok({ storage: { size: '1Gi' }, retention: { maxAge: '7d' } }).retention).toEqual({ maxAge: '7d' });
    expect(errorOf({ storage: { size: '1Gi' }, retention: { maxAge: 'a week' } })).toMatch(/retention.maxAge must be a positive duration/);
    expect(errorOf({ storage: { size: '1Gi' }, retention: { maxAge: '0h' } })).toMatch(/retention.maxAge must be a positive duration/);
    expect(errorOf({ storage: { size: '1Gi' }, retention: { maxAge: '1.5h' } })).toMatch(/retention.maxAge must be a positive duration/);
    expect(errorOf({ storage: { size: '1Gi' }, retention: { maxBytes: '0' } })).toMatch(/retention.maxBytes must be greater than zero/);
  });
});

describe('retention.maxAge: what the API accepts, the log server accepts', () => {
  it('every accepted duration parses with the server flag parser, to the expected seconds', async () => {
    const { parseDurationSeconds } = await import('../../../src/server/units.ts');
    for (const [d, seconds] of [['168h', 604_800], ['7d', 604_800], ['90m', 5_400], ['1h30m', 5_400], ['45s', 45]] as const) {
      expect(ok({ storage: { size: '1Gi' }, retention: { maxAge: d } }).retention?.maxAge).toBe(d);
      expect(parseDurationSeconds(d)).toBe(seconds);
    }
  });
});
