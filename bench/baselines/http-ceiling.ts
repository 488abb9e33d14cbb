/**
 * Reference for `npm run bench:server`: what Node's HTTP stack answers on this machine
 * with nothing behind it, under the same load generator. `--kind fastify` is a fastify
 * server configured like the log server (buffer body parser, a 201 with a ~330-byte JSON
 * body, no storage); `--kind http` is bare node:http doing the same. An append server in
 * Node cannot answer faster than these; they say how much of a gap to Redis is HTTP.
 *
 *   node bench/baselines/http-ceiling.ts --kind fastify|http --port N
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

const { values } = parseArgs({ options: { kind: { type: 'string', default: 'fastify' }, port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
const answer = Buffer.from(JSON.stringify({ id: '00000000-0000-4000-8000-000000000000', createdAt: new Date().toISOString(), sequence: 1, type: 'order.created', data: 'x'.repeat(220) }));

if (values.kind === 'http') {
  const server = createServer((req, res) => {
    if (req.url === '/healthz') return res.end('{"ok":true}');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json; charset=utf-8', 'content-length': answer.length });
      res.end(answer);
    });
  });
  server.listen(port, values.host);
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else {
  const app = Fastify({ logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'application/x-ndjson'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.get('/healthz', async () => ({ ok: true }));
  app.post('/events', async (_req, reply) => reply.code(201).type('application/json; charset=utf-8').send(answer));
  await app.listen({ port, host: values.host });
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}
