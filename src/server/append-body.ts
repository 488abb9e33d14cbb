/**
 * Parsing of a `POST /events` request into event drafts: the Idempotency-Key header and
 * the body (one JSON object, or an NDJSON batch of objects).
 *
 * Guarantees:
 * - Every rejection is an HttpError 400 with a code a client can act on (`bad_request`,
 *   `invalid_utf8`, `invalid_json`, `not_an_object`) and a message naming the line of a
 *   batch; nothing is handed to the store unless the whole body parsed.
 * - Reserved fields (`id`, `createdAt`, `sequence`) of the client are dropped
 *   (eventBodyJson); all events of one request share one `createdAt`.
 */
import { isUtf8 } from 'node:buffer';
import { eventBodyJson, eventDraft, eventDraftBytes, type EventDraft } from '../storage/store.ts';
import { canonicalObject } from './canonical-json.ts';
import { HttpError } from './errors.ts';

const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,255}$/;

/** The Idempotency-Key header, validated; undefined when absent. */
export function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !IDEMPOTENCY_KEY_RE.test(header)) {
    throw new HttpError(400, 'bad_request', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
  }
  return header;
}

/** The body's media type, lower case, without parameters. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The raw body, checked first: present and valid UTF-8. */
export function utf8Body(body: unknown): Buffer {
  if (!Buffer.isBuffer(body)) throw new HttpError(400, 'bad_request', 'a request body is required');
  if (!isUtf8(body)) throw new HttpError(400, 'invalid_utf8', 'the body is not valid UTF-8');
  return body;
}

/** The drafts of a UTF-8 body (utf8Body): one event, or every non-blank line of an NDJSON batch. */
export function parseAppendBody(body: Buffer, batch: boolean, createdAt: string): EventDraft[] {
  if (!batch) {
    if (canonicalObject(body, 0, body.length)) return [eventDraftBytes(body, createdAt)];
    return [eventDraft(eventBodyJson(parseObject(body.toString('utf8'), 'the body')), createdAt)];
  }
  const events: EventDraft[] = [];
  let start = 0;
  for (let line = 1; start <= body.length; line++) {
    let end = body.indexOf(0x0a, start);
    if (end === -1) end = body.length;
    if (end > start) {
      if (canonicalObject(body, start, end)) events.push(eventDraftBytes(body.subarray(start, end), createdAt));
      else {
        const text = body.toString('utf8', start, end).trim();
        if (text !== '') events.push(eventDraft(eventBodyJson(parseObject(text, `line ${line}`)), createdAt));
      }
    }
    start = end + 1;
  }
  if (events.length === 0) throw new HttpError(400, 'bad_request', 'the NDJSON batch has no events');
  return events;
}

/** The general path, as the append path always did it (kept for equivalence tests). */
export function parseAppendBodySlow(body: Buffer, batch: boolean, createdAt: string): EventDraft[] {
  const text = body.toString('utf8');
  if (!batch) return [eventDraft(eventBodyJson(parseObject(text, 'the body')), createdAt)];
  const events: EventDraft[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    events.push(eventDraft(eventBodyJson(parseObject(line, `line ${i + 1}`)), createdAt));
  }
  if (events.length === 0) throw new HttpError(400, 'bad_request', 'the NDJSON batch has no events');
  return events;
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `${what} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'not_an_object', `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}
