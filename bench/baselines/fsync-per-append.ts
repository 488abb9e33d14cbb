/**
 * Baseline for `npm run bench:server`: the minimal event store that our log server
 * replaces — one NDJSON file, an in-memory id -> offset index, and one fdatasync per
 * append (appends are serialized, so the fsync cost is paid once per event). It is
 * deliberately honest (durable before 201), not deliberately slow.
 *
 *   node bench/baselines/fsync-per-append.ts --data-dir DIR --port N
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, openSync, fdatasyncSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

const { values } = parseArgs({
  options: { 'data-dir': { type: 'string' }, port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } },
});
const dataDir = values['data-dir'];
const port = Number(values.port);
if (!dataDir || !Number.isInteger(port)) {
  process.stderr.write('fsync-per-append: --data-dir and --port are required\n');
  process.exit(2);
}
mkdirSync(dataDir, { recursive: true });
const fd = openSync(join(dataDir, 'events.log'), 'a');
let offset = 0;
let sequence = 0;
const index = new Map<string, number>();

// One append at a time: write the line, fdatasync, then answer.
let tail: Promise<void> = Promise.resolve();
function appendDurably(line: Buffer): Promise<number> {
  const done = tail.then(() => {
    const at = offset;
    writeSync(fd, line);
    fdatasyncSync(fd);
    offset += line.length;
    return at;
  });
  tail = done.then(() => undefined);
  return done;
}

const app = Fastify({ logger: false });
app.addContentTypeParser('application/x-ndjson', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.post('/events', async (request, reply) => {
  if (typeof request.body === 'string') {
    const events = request.body.split('\n').filter((l) => l.length > 0).map((l) => ({ ...JSON.parse(l), id: randomUUID(), createdAt: new Date().toISOString(), sequence: ++sequence }));
    await appendDurably(Buffer.from(events.map((e) => JSON.stringify(e) + '\n').join('')));
    return reply.code(201).send(events);
  }
  const event = { ...(request.body as object), id: randomUUID(), createdAt: new Date().toISOString(), sequence: ++sequence };
  const at = await appendDurably(Buffer.from(JSON.stringify(event) + '\n'));
  index.set(event.id, at);
  return reply.code(201).send(event);
});
app.get('/healthz', async () => ({ ok: true }));
await app.listen({ port, host: values.host });
process.on('SIGTERM', () => {
  void app.close().then(() => {
    closeSync(fd);
    process.exit(0);
  });
});
