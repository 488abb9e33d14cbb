/**
 * `kubectl eventlog status`: the one screen an on-call engineer reads first (like
 * CloudNativePG's `kubectl cnpg status`): conditions, storage use, the log, the pod,
 * recovery history, drift and the last error. Pure: a function of the EventLog object.
 *
 * Colour only when asked (a terminal without NO_COLOR); piped output is plain text.
 */
import type { Condition, EventLog } from '../api/eventlog.ts';

export interface ViewOptions {
  color: boolean;
}

const ABNORMAL_TRUE = new Set(['Reconciling', 'Stalled', 'Drifted']);

type Paint = (s: string) => string;
function palette(color: boolean): { red: Paint; green: Paint; yellow: Paint; bold: Paint; dim: Paint } {
  const wrap = (code: string): Paint => (s) => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  return { red: wrap('31'), green: wrap('32'), yellow: wrap('33'), bold: wrap('1'), dim: wrap('2') };
}

/** Bytes for humans: 1536 -> "1.5 KiB". */
export function humanBytes(n: number | undefined): string {
  if (n === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** Whether a condition is in its good state (Ready=True; the others False). */
function healthy(c: Condition): boolean {
  return ABNORMAL_TRUE.has(c.type) ? c.status === 'False' : c.type === 'Recovered' ? c.status !== 'False' : c.status === 'True';
}

export function renderStatus(evl: EventLog, opts: ViewOptions): string {
  const p = palette(opts.color);
  const st = evl.status;
  const out: string[] = [];
  const ns = evl.metadata.namespace ?? 'default';
  const phase = st?.phase ?? 'Unknown';
  const phaseColor = phase === 'Ready' ? p.green : phase === 'Stalled' || phase === 'Degraded' ? p.red : p.yellow;
  out.push(`${p.bold(`EventLog ${ns}/${evl.metadata.name}`)}   phase ${phaseColor(phase)}   generation ${evl.metadata.generation ?? '?'} (observed ${st?.observedGeneration ?? 'never'})`);
  if (!st) {
    out.push('', p.yellow('no status yet: the operator has not reconciled this EventLog (is it running?)'));
    return `${out.join('\n')}\n`;
  }
  out.push('');
  const width = Math.max(...(st.conditions ?? []).map((c) => c.type.length), 9);
  for (const c of st.conditions ?? []) {
    const paint = healthy(c) ? p.green : c.type === 'Reconciling' && c.status === 'True' ? p.yellow : p.red;
    const stale = c.observedGeneration !== undefined && evl.metadata.generation !== undefined && c.observedGeneration < evl.metadata.generation ? p.dim(' (stale)') : '';
    out.push(`  ${c.type.padEnd(width)}  ${paint(c.status.padEnd(7))} ${c.reason.padEnd(24)} ${c.message}${stale}`);
  }

  const s = st.storage;
  if (s) {
    out.push('', p.bold('Storage'));
    out.push(`  ${s.pvcName ?? '?'}  class ${s.storageClassName ?? 'default'}  ${s.phase ?? '?'}  requested ${s.requested ?? '?'}  capacity ${s.capacity ?? '?'}${s.resizing ? p.yellow(`  resizing${s.resizeStatus ? ` (${s.resizeStatus})` : ''}`) : ''}`);
    if (s.usedPercent !== undefined) {
      const pct = `${s.usedPercent}% used`;
      const paint = s.nearlyFull ? p.red : s.usedPercent >= 70 ? p.yellow : p.green;
      out.push(`  ${paint(pct)}: ${humanBytes(s.usedBytes)} of ${humanBytes(s.filesystemBytes)}, ${humanBytes(s.availableBytes)} available, reserve ${humanBytes(s.reserveBytes)}${s.nearlyFull ? p.red('  NEARLY FULL') : ''}`);
    }
    if (s.projectedFullAt) out.push(`  projected full at ${s.projectedFullAt} (at the recent growth rate)`);
    for (const g of (s.growth ?? []).slice(0, 3)) out.push(`  grown ${g.from} -> ${g.to} at ${g.at}: ${g.reason}`);
  }

  const l = st.log;
  if (l) {
    out.push('', p.bold('Log'));
    const removed = l.removedBytes ? `, retention removed ${humanBytes(l.removedBytes)}` : '';
    out.push(`  ${l.records ?? 0} records, ${humanBytes(l.bytes)}, sequences ${l.firstSequence ?? 1}..${l.lastSequence ?? 0}${removed}${l.updatedAt ? p.dim(`  (as of ${l.updatedAt})`) : ''}`);
  }

  const pod = st.pod;
  if (pod) {
    out.push('', p.bold('Pod'));
    out.push(`  ${pod.name ?? '?'}  ${pod.ip ?? 'no IP'}  ${pod.phase ?? '?'}  ${pod.ready ? p.green('ready') : p.red('not ready')}  restarts ${pod.restarts ?? 0}${pod.bootId ? `  boot ${pod.bootId}` : ''}`);
    const t = pod.lastTermination;
    if (t) out.push(`  last termination: exit ${t.exitCode ?? '?'}${t.reason ? ` (${t.reason})` : ''}${t.finishedAt ? ` at ${t.finishedAt}` : ''}${t.message ? `: ${firstLine(t.message)}` : ''}`);
  }

  const r = st.recovery;
  if (r) {
    out.push('', p.bold('Recovery'));
    const outcome = r.lastOutcome === 'Clean' ? p.green(r.lastOutcome) : r.lastOutcome === 'CorruptionDetected' ? p.red(r.lastOutcome) : p.yellow(r.lastOutcome ?? '?');
    out.push(`  last: ${outcome}${r.at ? ` at ${r.at}` : ''}, ${r.recordsRecovered ?? 0} records in ${r.durationMs ?? 0} ms${r.bytesTruncated ? `, ${r.bytesTruncated} bytes truncated` : ''}`);
    for (const h of (r.history ?? []).slice(0, 5)) out.push(p.dim(`  ${h.at ?? '?'}  ${(h.outcome ?? '?').padEnd(18)} ${h.recordsRecovered ?? 0} records  boot ${h.bootId}`));
    if (r.corruption) {
      out.push(p.red(`  corruption ${r.corruption.id}: ${r.corruption.segment} at offset ${r.corruption.offset} (${r.corruption.reason})`));
      out.push(`  to truncate the log there (cut bytes are kept aside): kubectl eventlog approve-repair ${evl.metadata.name} -n ${ns}`);
    }
    if (r.repair) out.push(`  repair ${r.repair.corruptionId}: ${r.repair.result}${r.repair.message ? ` (${r.repair.message})` : ''}`);
  }

  const d = st.drift;
  out.push('', p.bold('Drift'));
  if (!d?.items?.length) out.push(`  none now${d?.corrections ? `; ${d.corrections} correction(s) made, the last at ${d.lastCorrectedAt ?? '?'}` : ''}`);
  for (const i of d?.items ?? []) out.push(p.yellow(`  ${i.kind} ${i.name} ${i.path}: expected ${i.expected ?? '(absent)'}, found ${i.actual ?? '(absent)'}${i.firstSeen ? ` since ${i.firstSeen}` : ''}`));

  if (st.endpoint) out.push('', `${p.bold('Endpoint')}  ${st.endpoint}${st.tokenSecret ? `  token: Secret ${st.tokenSecret.name}, key ${st.tokenSecret.key}` : ''}`);

  const problem = lastError(st.conditions ?? []);
  if (problem) out.push('', p.red(`Last error: ${problem}`));
  return `${out.join('\n')}\n`;
}

/** What an on-call engineer should read first: Stalled, else a Ready that is not True. */
function lastError(conditions: readonly Condition[]): string | undefined {
  const stalled = conditions.find((c) => c.type === 'Stalled' && c.status === 'True');
  if (stalled) return `${stalled.reason}: ${stalled.message}`;
  const ready = conditions.find((c) => c.type === 'Ready');
  if (ready && ready.status !== 'True') return `${ready.reason}: ${ready.message}`;
  return undefined;
}

function firstLine(s: string): string {
  return (s.trim().split('\n')[0] ?? '').slice(0, 300);
}
