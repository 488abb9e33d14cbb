import { describe, expect, it } from 'vitest';
import { SseParser } from '../../../src/client/sse.ts';

describe('SseParser', () => {
  it('parses id/data events, ignores comments, joins multi-line data', () => {
    const p = new SseParser();
    const evs = p.push('retry: 1000\n: a comment\n\nid: 1\ndata: {"a":1}\n\nid: 2\ndata: line1\ndata: line2\n\n');
    expect(evs).toEqual([
      { event: 'message', id: '1', data: '{"a":1}' },
      { event: 'message', id: '2', data: 'line1\nline2' },
    ]);
    expect(p.retryMs).toBe(1000);
  });

  it('handles CRLF and CR line ends, also when split across chunks (a CR at a chunk end)', () => {
    const text = 'id: 7\r\ndata: x\r\n\r\nevent: gone\rdata: {"firstSequence":9}\r\r';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const evs = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut)), ...p.end()];
      expect(evs, `cut at ${cut}`).toEqual([
        { event: 'message', id: '7', data: 'x' },
        { event: 'gone', id: undefined, data: '{"firstSequence":9}' },
      ]);
    }
  });

  it('byte-at-a-time feeding gives the same events; an event without its blank line is dropped at the end', () => {
    const text = 'id: 1\ndata: {"s":"Chidé 🎉"}\n\n: heartbeat\n\nid: 2\ndata: half';
    const p = new SseParser();
    const evs = [];
    for (const ch of text) evs.push(...p.push(ch));
    evs.push(...p.end());
    expect(evs).toEqual([{ event: 'message', id: '1', data: '{"s":"Chidé 🎉"}' }]);
    expect(p.sawBytes).toBe(true);
  });

  it('field without a space, unknown fields, a field without a colon, event names', () => {
    const p = new SseParser();
    expect(p.push('id:3\nfoo: bar\ndata\n\nevent: shutdown\ndata: {}\n\n')).toEqual([
      { event: 'message', id: '3', data: '' },
      { event: 'shutdown', id: undefined, data: '{}' },
    ]);
  });
});
