/**
 * Storage lifecycle decisions: how full the log's volume is, when it will be full,
 * whether to grow the PVC (spec.storage.autoGrow) and by how much, what an expansion
 * in progress is waiting for, and when to warn. Pure; the edges are
 * src/operator/reconcile/storage-growth.ts (PVC patch, pod restart for an offline
 * resize) and src/decisions/status.ts (conditions, status.storage).
 *
 * Guarantees
 * - The PVC is never shrunk: its desired request is max(spec.storage.size, the live
 *   request), so a PVC grown by auto-grow or by a person is not drift.
 * - Growth never exceeds autoGrow.maxSize, is rounded up to a whole MiB, and is asked
 *   for only while no expansion is in progress (request == capacity) and the
 *   StorageClass allows expansion.
 * - The projection is none unless usage grew over the observed window; it never
 *   predicts a time in the past.
 * - The usage warning has hysteresis: on at `warnPercent`, off only below
 *   `warnPercent - WARNING_HYSTERESIS_PERCENT`, so a log hovering at the threshold
 *   does not flap.
 *
 * Caveats
 * - Usage comes from the server's statfs of its data directory (filesystemBytes,
 *   usedBytes, availableBytes): what the file system reports, which for ext4 includes
 *   its own metadata.
 */
import type { EventLog, EventLogStatus } from '../api/eventlog.ts';
import { INCREMENT_PERCENT } from '../api/eventlog.ts';
import { bytesToQuantity, compareQuantities, isQuantity, quantityToUnits } from '../kube/quantity.ts';
import type { ServerStatus } from './server-status.ts';

const MiB = 1024n * 1024n;

/** The warning turns off only this many points below the threshold. */
export const WARNING_HYSTERESIS_PERCENT = 5;
/** Default used-percent at which a Warning Event and the gauge say "nearly full". */
export const DEFAULT_WARN_PERCENT = 85;

/** The PVC request to apply: the spec's size, or the live request when that is larger. */
export function desiredRequest(specSize: string, liveRequest: string | undefined): string {
  if (liveRequest === undefined || !isQuantity(liveRequest) || !isQuantity(specSize)) return specSize;
  return compareQuantities(liveRequest, specSize) > 0 ? liveRequest : specSize;
}

export interface StorageUsage {
  filesystemBytes: number;
  usedBytes: number;
  availableBytes: number;
  usedPercent: number;
  reserveBytes?: number;
}

/** Usage figures from the server's /status (undefined for a server that does not report them). */
export function storageUsage(server: ServerStatus | undefined): StorageUsage | undefined {
  const st = server?.storage;
  if (!st || st.filesystemBytes <= 0) return undefined;
  const usedPercent = Math.min(100, Math.max(0, Math.round((st.usedBytes / st.filesystemBytes) * 100)));
  return { filesystemBytes: st.filesystemBytes, usedBytes: st.usedBytes, availableBytes: st.freeBytes, usedPercent, reserveBytes: st.reserveBytes };
}

export interface UsageSample {
  atMs: number;
  usedBytes: number;
}

/** The window the growth rate is measured over, and the minimum gap between samples. */
export const USAGE_WINDOW_MS = 15 * 60_000;
export const USAGE_SAMPLE_MIN_GAP_MS = 5_000;

/**
 * The sample list after a new poll: at most one sample per USAGE_SAMPLE_MIN_GAP_MS,
 * only the last USAGE_WINDOW_MS kept; a drop in usage (retention, a repair) starts
 * afresh, since the old rate no longer predicts anything.
 */
export function addUsageSample(list: readonly UsageSample[], s: UsageSample): UsageSample[] {
  const last = list[list.length - 1];
  let out = last && s.usedBytes < last.usedBytes ? [] : [...list];
  const prev = out[out.length - 1];
  if (!prev || s.atMs - prev.atMs >= USAGE_SAMPLE_MIN_GAP_MS) out.push(s);
  while (out.length > 2 && s.atMs - out[0]!.atMs > USAGE_WINDOW_MS) out = out.slice(1);
  return out;
}

/** Only growth over at least this window counts for a projection. */
export const MIN_PROJECTION_WINDOW_MS = 20_000;

/**
 * When the volume will be full (available space down to the reserve) at the growth
 * rate between the oldest and newest sample; undefined when usage does not grow or the
 * window is too short to say.
 */
export function projectFullAt(samples: readonly UsageSample[], usage: StorageUsage | undefined): Date | undefined {
  if (!usage || samples.length < 2) return undefined;
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const dt = last.atMs - first.atMs;
  if (dt < MIN_PROJECTION_WINDOW_MS) return undefined;
  const rate = (last.usedBytes - first.usedBytes) / dt; // bytes per ms
  if (!(rate > 0)) return undefined;
  const left = Math.max(0, usage.availableBytes - (usage.reserveBytes ?? 0));
  // Whole seconds: the status carries metav1.Time.
  return new Date(Math.ceil((last.atMs + left / rate) / 1000) * 1000);
}

/** Where a PVC expansion stands (the PVC asks for more than it has, or a condition says so). */
export type ResizeState = 'Resizing' | 'FileSystemResizePending';

export interface PvcView {
  spec?: { resources?: { requests?: { storage?: string } } };
  status?: { phase?: string; capacity?: { storage?: string }; conditions?: Array<{ type?: string; status?: string }> };
}

export function resizeState(pvc: PvcView | undefined): ResizeState | undefined {
  if (!pvc) return undefined;
  const cond = (t: string) => pvc.status?.conditions?.some((c) => c.type === t && c.status !== 'False') ?? false;
  if (cond('FileSystemResizePending')) return 'FileSystemResizePending';
  const req = pvc.spec?.resources?.requests?.storage;
  const cap = pvc.status?.capacity?.storage;
  if (cond('Resizing')) return 'Resizing';
  if (pvc.status?.phase === 'Bound' && req !== undefined && cap !== undefined && isQuantity(req) && isQuantity(cap) && compareQuantities(req, cap) > 0) return 'Resizing';
  return undefined;
}

/**
 * Whether to delete the pod so an offline file-system resize can finish: allowed by the
 * spec, the PVC waits for it, a pod runs on the volume (a new pod waits for the resize
 * by itself), and not already done for this request (once per resize).
 */
export function restartForResize(q: { resize: ResizeState | undefined; allowed: boolean; podRunning: boolean; request: string | undefined; restartedFor: string | undefined }): boolean {
  return q.allowed && q.resize === 'FileSystemResizePending' && q.podRunning && q.request !== undefined && q.request !== q.restartedFor;
}

/** Why a full log cannot be fixed automatically. */
export type GrowthBlock = 'NotConfigured' | 'MaxSizeReached' | 'ExpansionNotAllowed';

export type GrowthPlan =
  | { kind: 'none' }
  /** An expansion is already under way: wait for it. */
  | { kind: 'inProgress'; state: ResizeState }
  | { kind: 'grow'; from: string; to: string; reason: string }
  | { kind: 'blocked'; block: GrowthBlock; message: string };

export interface GrowthQuestion {
  evl: Pick<EventLog, 'spec'>;
  pvc: PvcView | undefined;
  usage: StorageUsage | undefined;
  /** The server refuses appends for space. */
  full: boolean;
  /** StorageClass.allowVolumeExpansion (undefined: class unknown). */
  allowVolumeExpansion: boolean | undefined;
}

/** The next size after `current`: + increment (percentage of current, or a quantity), capped at maxSize, whole MiB. */
export function nextSize(current: string, increment: string, maxSize: string): string {
  const cur = quantityToUnits(current);
  const max = quantityToUnits(maxSize);
  const step = INCREMENT_PERCENT.test(increment) ? (cur * BigInt(increment.slice(0, -1)) + 99n) / 100n : quantityToUnits(increment);
  let next = cur + (step > 0n ? step : MiB);
  next = ((next + MiB - 1n) / MiB) * MiB;
  if (next > max) next = max;
  return next === max ? String(maxSize) : bytesToQuantity(next);
}

/** Whether (and how) to grow the PVC now. */
export function planGrowth(q: GrowthQuestion): GrowthPlan {
  const auto = q.evl.spec.storage.autoGrow;
  const inProgress = resizeState(q.pvc);
  if (inProgress) return { kind: 'inProgress', state: inProgress };
  const trigger = q.full || (auto !== undefined && q.usage !== undefined && q.usage.usedPercent >= auto.usedPercent);
  if (!trigger) return { kind: 'none' };
  const cap = q.pvc?.status?.capacity?.storage ?? q.pvc?.spec?.resources?.requests?.storage;
  if (!auto) return { kind: 'blocked', block: 'NotConfigured', message: 'spec.storage.autoGrow is not set' };
  if (q.pvc?.status?.phase !== 'Bound' || cap === undefined || !isQuantity(cap)) return { kind: 'none' };
  if (compareQuantities(cap, auto.maxSize) >= 0) return { kind: 'blocked', block: 'MaxSizeReached', message: `the volume (${cap}) has reached storage.autoGrow.maxSize ${auto.maxSize}` };
  if (q.allowVolumeExpansion === false) return { kind: 'blocked', block: 'ExpansionNotAllowed', message: 'its StorageClass does not allow volume expansion (allowVolumeExpansion)' };
  const to = nextSize(cap, auto.increment, auto.maxSize);
  const why = q.usage ? `${q.usage.usedPercent}% used (${q.usage.usedBytes} of ${q.usage.filesystemBytes} bytes)` : 'the log is full';
  return { kind: 'grow', from: cap, to, reason: q.full ? `full: ${why}` : `${why}, at or above autoGrow.usedPercent ${auto.usedPercent}%` };
}

/** Whether the "nearly full" warning is on, with hysteresis against the last written status. */
export function nearlyFull(old: EventLogStatus['storage'] | undefined, usage: StorageUsage | undefined, warnPercent: number): boolean {
  if (!usage) return old?.nearlyFull ?? false;
  if (usage.usedPercent >= warnPercent) return true;
  return (old?.nearlyFull ?? false) && usage.usedPercent >= warnPercent - WARNING_HYSTERESIS_PERCENT;
}
