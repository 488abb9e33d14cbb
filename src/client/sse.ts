/**
 * A Server-Sent Events parser (the WHATWG "event stream interpretation"): fields `id`,
 * `event`, `data` (lines joined with "\n"), `retry`; comments (`:`) ignored; CRLF, CR or
 * LF line ends, also split across chunks. Pure: feed decoded text, get events.
 */

export interface SseEvent {
  /** `message` unless the event named another type. */
  event: string;
  data: string;
  /** The `id` field of this event (undefined when it had none). */
  id: string | undefined;
}

export class SseParser {
  #buf = '';
  #data: string[] = [];
  #event = '';
  #id: string | undefined;
  /** The last `retry:` value seen (ms). */
  retryMs: number | undefined;
  /** Set by any bytes at all (heartbeats included). */
  sawBytes = false;

  /** Parses `text`; returns the events completed by it. */
  push(text: string): SseEvent[] {
    if (text.length > 0) this.sawBytes = true;
    this.#buf += text;
    const out: SseEvent[] = [];
    let start = 0;
    const b = this.#buf;
    for (;;) {
      let i = start;
      while (i < b.length && b.charCodeAt(i) !== 10 && b.charCodeAt(i) !== 13) i++;
      if (i >= b.length) break;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (b.charCodeAt(i) === 13 && i + 1 >= b.length) break;
      this.#line(b.slice(start, i), out);
      start = b.charCodeAt(i) === 13 && b.charCodeAt(i + 1) === 10 ? i + 2 : i + 1;
    }
    this.#buf = b.slice(start);
    return out;
  }

  /** The stream ended: a pending CR ends its line; an event without its blank line is dropped (per spec). */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.#buf.endsWith('\r')) this.#line(this.#buf.slice(0, -1), out);
    this.#buf = '';
    this.#data = [];
    this.#event = '';
    return out;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.#data.length > 0) out.push({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.#id });
      this.#data = [];
      this.#event = '';
      this.#id = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment (heartbeat)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.#data.push(value);
        break;
      case 'event':
        this.#event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.#id = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
  }
}
