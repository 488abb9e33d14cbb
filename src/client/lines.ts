/** Serializing client events (shared by the client and the producer). */
import type { EventData } from './client.ts';

export function isPlainObject(v: unknown): v is EventData {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One compact JSON line for an event; throws a TypeError for anything that is not an object. */
export function eventLine(event: unknown): string {
  if (!isPlainObject(event)) throw new TypeError(`an event must be a JSON object, got ${Array.isArray(event) ? 'an array' : event === null ? 'null' : typeof event}`);
  const line = JSON.stringify(event);
  if (typeof line !== 'string' || line[0] !== '{') throw new TypeError('an event must serialize to a JSON object');
  return line;
}

