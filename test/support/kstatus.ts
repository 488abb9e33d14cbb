/**
 * A small kstatus reader (the rules of sigs.k8s.io/cli-utils pkg/kstatus/status that
 * Flux's `wait: true` and `kubectl`-style tooling apply to any object), independent of
 * the operator's own code, for checking live EventLogs from the outside:
 *
 * 1. metadata.deletionTimestamp set                        -> Terminating
 * 2. status.observedGeneration present and != generation   -> InProgress
 * 3. the first of Reconciling=True / Stalled=True in the
 *    conditions list                                        -> InProgress / Failed
 * 4. a Ready condition that is not True                    -> InProgress (the kstatus
 *    convention for resources that publish Ready: abnormal-true conditions above,
 *    Ready as the normal-true summary)
 * 5. otherwise                                              -> Current
 */
export type KStatus = 'Current' | 'InProgress' | 'Failed' | 'Terminating';

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

interface Obj {
  metadata?: { generation?: number; deletionTimestamp?: string };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

export function computeKStatus(obj: Obj): { status: KStatus; message: string } {
  if (obj.metadata?.deletionTimestamp) return { status: 'Terminating', message: 'resource scheduled for deletion' };
  const generation = obj.metadata?.generation;
  const observed = obj.status?.observedGeneration;
  if (observed !== undefined && generation !== undefined && observed !== generation) {
    return { status: 'InProgress', message: `generation is ${generation}, but latest observed generation is ${observed}` };
  }
  const conditions = obj.status?.conditions ?? [];
  for (const c of conditions) {
    if (c.type === 'Reconciling' && c.status === 'True') return { status: 'InProgress', message: `${c.reason}: ${c.message}` };
    if (c.type === 'Stalled' && c.status === 'True') return { status: 'Failed', message: `${c.reason}: ${c.message}` };
  }
  const ready = conditions.find((c) => c.type === 'Ready');
  if (ready && ready.status !== 'True') return { status: 'InProgress', message: `${ready.reason}: ${ready.message}` };
  return { status: 'Current', message: ready?.message ?? 'resource is current' };
}
