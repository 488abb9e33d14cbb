/**
 * Import of a legacy NDJSON event log (one JSON object per line with string `id` and
 * `createdAt`; the last line may be torn by a crash). Ids and createdAt are kept; each
 * event gets the next sequence. The file is validated completely before anything is
 * written; events whose id is already in the log are skipped, so an interrupted import
 * can simply be run again.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { EventDraft, EventStore } from './store.ts';

export interface ImportReport {
  from: string;
  linesRead: number;
  imported: number;
  skippedExisting: number;
  skippedDuplicateInFile: number;
  blankLines: number;
  /** The last line was not valid JSON and was ignored (a torn write in the legacy log). */
  tornLastLine: boolean;
  firstSequence: number | null;
  lastSequence: number | null;
}

export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportError';
  }
}

interface LineCheck {
  id: string;
  draft: EventDraft;
}

function checkLine(raw: string, lineNo: number, from: string): LineCheck | 'invalid-json' {
  const text = raw.trim();
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return 'invalid-json';
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new ImportError(`${from}:${lineNo}: expected a JSON object`);
  }
  const rec = obj as Record<string, unknown>;
  if (typeof rec.id !== 'string' || rec.id.length === 0) throw new ImportError(`${from}:${lineNo}: missing string "id"`);
  if (Buffer.byteLength(rec.id) > 255) throw new ImportError(`${from}:${lineNo}: "id" is longer than 255 bytes`);
  if (typeof rec.createdAt !== 'string') throw new ImportError(`${from}:${lineNo}: missing string "createdAt"`);
  let post: string;
  if ('sequence' in rec) {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rec)) {
      if (k !== 'sequence') Object.defineProperty(copy, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    post = ',' + JSON.stringify(copy).slice(1);
  } else {
    // Keep the legacy bytes; only the sequence is added in front.
    post = ',' + text.slice(1);
  }
  return { id: rec.id, draft: { id: rec.id, pre: '{"sequence":', post } };
}

async function* lines(path: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of rl) yield line;
}

export async function importNdjson(store: EventStore, from: string, opts: { batchEvents?: number } = {}): Promise<ImportReport> {
  const report: ImportReport = {
    from,
    linesRead: 0,
    imported: 0,
    skippedExisting: 0,
    skippedDuplicateInFile: 0,
    blankLines: 0,
    tornLastLine: false,
    firstSequence: null,
    lastSequence: null,
  };
  // Pass 1: validate everything (nothing is written if an interior line is bad).
  let pendingInvalid: number | null = null;
  let lineNo = 0;
  for await (const line of lines(from)) {
    lineNo++;
    if (line.trim() === '') {
      report.blankLines++;
      continue;
    }
    if (pendingInvalid !== null) throw new ImportError(`${from}:${pendingInvalid}: invalid JSON (only the last line may be torn)`);
    if (checkLine(line, lineNo, from) === 'invalid-json') pendingInvalid = lineNo;
  }
  report.tornLastLine = pendingInvalid !== null;
  // Pass 2: append in chunks.
  const batchEvents = opts.batchEvents ?? 1000;
  const seen = new Set<string>();
  let chunk: EventDraft[] = [];
  const flush = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const res = await store.append({ events: chunk, batch: true });
    report.imported += chunk.length;
    report.firstSequence ??= res.firstSequence;
    report.lastSequence = res.firstSequence + chunk.length - 1;
    chunk = [];
  };
  lineNo = 0;
  for await (const line of lines(from)) {
    lineNo++;
    if (line.trim() === '') continue;
    if (lineNo === pendingInvalid) break;
    report.linesRead++;
    const c = checkLine(line, lineNo, from);
    if (c === 'invalid-json') throw new ImportError(`${from}:${lineNo}: changed while importing`);
    if (seen.has(c.id)) {
      report.skippedDuplicateInFile++;
      continue;
    }
    seen.add(c.id);
    if (await store.hasId(c.id)) {
      report.skippedExisting++;
      continue;
    }
    chunk.push(c.draft);
    if (chunk.length >= batchEvents) await flush();
  }
  await flush();
  return report;
}
