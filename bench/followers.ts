/**
 * `npm run bench:followers`: what following the log costs, next to Redis Streams measured
 * in the same run on the same machine.
 *
 *   1. Append-to-follower latency, p50/p99, with 1, 100 and 1000 followers: one producer
 *      appends paced events (each after the previous one was acknowledged); every follower
 *      notes when it receives each one. eventlog-server: `GET /events/stream` (SSE),
 *      `--durability fsync`. Redis: `XREAD BLOCK 0 STREAMS s <last id>` per follower, XADD
 *      with `appendonly yes`, `appendfsync always` (both acknowledge after fsync and serve
 *      followers after it). Followers are raw sockets with minimal parsing, the same for
 *      both, in this one process (on 2 cores they share the CPU with the servers: the
 *      1000-follower figures include that).
 *   2. Server CPU and RSS with 1000 idle followers (no appends) over one heartbeat
 *      period, for both.
 *   3. Appends/s with 64 concurrent appenders in one process: the batching producer
 *      (`client.producer()`) next to the plain per-request client (`client.append`).
 *
 * Environment: BENCH_EVENTS (events per latency point, default 100), BENCH_RATE (events/s,
 * default 25), BENCH_SECONDS (per throughput point, default 5), BENCH_IDLE_SECONDS
 * (default 15; measured without and with 1000 followers). Prints a Markdown table; progress goes to stderr. Loopback only; every
 * process it starts is stopped by pid. Asserts nothing.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../dev/cluster/ports.ts';
import { EventLogClient } from '../src/client/index.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const EVENTS = Number(process.env.BENCH_EVENTS ?? 100);
const RATE = Number(process.env.BENCH_RATE ?? 25);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 15);
const FOLLOWERS = [1, 100, 1000];
const scratch = mkdtempSync(join(tmpdir(), 'eventlog-bench-followers-'));
const children = new Set<ChildProcess>();
const progress = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PAD = 'x'.repeat(200);

function start(cmd: string, args: string[], name: string): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-2000)));
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (code !== 0 && code !== null && signal === null) progress(`${name} exited ${code}: ${tail.trim().split('\n').pop()}`);
  });
  children.add(child);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** utime + stime of a process in seconds, and its RSS in bytes (/proc). */
function procUsage(pid: number): { cpuSeconds: number; rss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // fields 14 and 15 of proc(5)
  const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  return { cpuSeconds: ticks / 100, rss };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Latency samples (ms) of one run: `expected` deliveries per event. */
class Samples {
  private readonly sent = new Map<number, number>();
  private readonly values: number[] = [];
  delivered = 0;
  sentAt(k: number): void {
    this.sent.set(k, performance.now());
  }
  got(k: number): void {
    const t0 = this.sent.get(k);
    if (t0 === undefined) return;
    this.values.push(performance.now() - t0);
    this.delivered++;
  }
  summary(): { p50: number; p99: number; n: number } {
    const a = Float64Array.from(this.values).sort();
    return { p50: percentile(a, 50), p99: percentile(a, 99), n: a.length };
  }
}

// ---------------------------------------------------------------- eventlog-server

/** A raw SSE follower: counts `id: N` lines (sequence numbers) as they arrive. */
function sseFollower(port: number, after: number, onSeq: (seq: number) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let tail = '';
    let last = after;
    let open = false;
    sock.setNoDelay(true);
    sock.on('error', (err) => (open ? undefined : reject(err)));
    sock.on('data', (d: Buffer) => {
      const s = tail + d.toString('latin1');
      if (!open && s.includes('\r\n\r\n')) {
        open = true;
        resolve(sock);
      }
      for (const m of s.matchAll(/\nid: (\d+)\n/g)) {
        const seq = Number(m[1]);
        if (seq > last) {
          last = seq;
          onSeq(seq);
        }
      }
      tail = s.slice(-40);
    });
    sock.write(`GET /events/stream?after=${after} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
  });
}

function postEvent(agent: Agent, port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/events', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => (res.statusCode === 201 ? resolve((JSON.parse(text) as { sequence: number }).sequence) : reject(new Error(`POST /events: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function lastSequence(base: string): Promise<number> {
  return ((await (await fetch(`${base}/stats`)).json()) as { lastSequence: number }).lastSequence;
}

type Row = { p50: number; p99: number; n: number };
type Idle = { cpuPercent: number; cpuNone: number; rssIdle: number; rssFollowers: number };

/** CPU % of `pid` over `seconds` of doing nothing. */
async function idleCpu(pid: number, seconds: number): Promise<number> {
  const a = procUsage(pid);
  await sleep(seconds * 1000);
  return ((procUsage(pid).cpuSeconds - a.cpuSeconds) / seconds) * 100;
}

async function oursLatency(port: number, pid: number): Promise<{ rows: Record<number, Row>; idle: Idle }> {
  const base = `http://127.0.0.1:${port}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const rows: Record<number, Row> = {};
  let idle: Idle | undefined;
  await postEvent(agent, port, JSON.stringify({ warm: true }));
  const rssIdle = procUsage(pid).rss;
  const cpuNone = await idleCpu(pid, IDLE_SECONDS);
  for (const n of FOLLOWERS) {
    const after = await lastSequence(base);
    const samples = new Samples();
    const sockets: Socket[] = [];
    for (let i = 0; i < n; i++) sockets.push(await sseFollower(port, after, (seq) => samples.got(seq)));
    await sleep(300);
    const t0 = performance.now();
    for (let k = 1; k <= EVENTS; k++) {
      const slot = t0 + (k * 1000) / RATE;
      samples.sentAt(after + k); // one producer, one event at a time: its sequence is known
      const seq = await postEvent(agent, port, JSON.stringify({ type: 'order.created', k, data: PAD }));
      if (seq !== after + k) throw new Error(`unexpected sequence ${seq}, wanted ${after + k}`);
      const wait = slot - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const deadline = performance.now() + 10_000;
    while (samples.delivered < n * EVENTS && performance.now() < deadline) await sleep(20);
    rows[n] = samples.summary();
    progress(`  eventlog-server, ${n} followers: p50 ${rows[n].p50.toFixed(2)} ms p99 ${rows[n].p99.toFixed(2)} ms (${rows[n].n}/${n * EVENTS} deliveries)`);
    if (n === 1000) {
      await sleep(1000);
      const cpuPercent = await idleCpu(pid, IDLE_SECONDS);
      idle = { cpuPercent, cpuNone, rssIdle, rssFollowers: procUsage(pid).rss };
      const b = { rss: idle.rssFollowers };
      progress(`  eventlog-server, 1000 idle followers over ${IDLE_SECONDS}s: CPU ${idle.cpuPercent.toFixed(2)}%, RSS ${(b.rss / 2 ** 20).toFixed(1)} MiB (${(rssIdle / 2 ** 20).toFixed(1)} MiB without followers)`);
    }
    for (const s of sockets) s.destroy();
    await sleep(300);
  }
  agent.destroy();
  return { rows, idle: idle! };
}

async function producerThroughput(base: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const body = { type: 'order.created', data: PAD };
  const run = async (name: string, append: () => Promise<unknown>) => {
    let n = 0;
    let stop = false;
    const t0 = performance.now();
    const timer = setTimeout(() => (stop = true), SECONDS * 1000);
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (!stop) {
          await append();
          n++;
        }
      }),
    );
    clearTimeout(timer);
    out[name] = n / ((performance.now() - t0) / 1000);
    progress(`  ${name}: ${Math.round(out[name])} appends/s`);
  };
  const client = new EventLogClient({ url: base });
  await run('plain client (one request per append)', () => client.append(body));
  for (const lingerMs of [0, 5]) {
    const p = client.producer({ lingerMs });
    const before = await requests(base);
    await run(`producer({ lingerMs: ${lingerMs} })`, () => p.append(body));
    await p.close();
    const reqs = (await requests(base)) - before;
    progress(`    ${reqs} batch requests, ${(p.stats.events / reqs).toFixed(1)} events each`);
  }
  return out;
}

async function requests(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^eventlog_http_requests_total\{route="\/events",method="POST",status="20\d"\} (\d+)$/gm)) n += Number(m[1]);
  return n;
}

// ---------------------------------------------------------------- Redis

/** A minimal incremental RESP2 reader. */
class Resp {
  private buf: Buffer = Buffer.alloc(0);
  push(d: Buffer): unknown[] {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const out: unknown[] = [];
    for (;;) {
      const r = this.parse(0);
      if (r === undefined) break;
      out.push(r.value);
      this.buf = this.buf.subarray(r.end);
    }
    return out;
  }
  private parse(at: number): { value: unknown; end: number } | undefined {
    const nl = this.buf.indexOf('\r\n', at);
    if (nl === -1) return undefined;
    const type = String.fromCharCode(this.buf[at]!);
    const line = this.buf.toString('latin1', at + 1, nl);
    switch (type) {
      case '+':
        return { value: line, end: nl + 2 };
      case '-':
        return { value: new Error(line), end: nl + 2 };
      case ':':
        return { value: Number(line), end: nl + 2 };
      case '$': {
        const len = Number(line);
        if (len < 0) return { value: null, end: nl + 2 };
        if (this.buf.length < nl + 2 + len + 2) return undefined;
        return { value: this.buf.toString('utf8', nl + 2, nl + 2 + len), end: nl + 2 + len + 2 };
      }
      case '*': {
        const n = Number(line);
        if (n < 0) return { value: null, end: nl + 2 };
        const arr: unknown[] = [];
        let end = nl + 2;
        for (let i = 0; i < n; i++) {
          const r = this.parse(end);
          if (r === undefined) return undefined;
          arr.push(r.value);
          end = r.end;
        }
        return { value: arr, end };
      }
      default:
        throw new Error(`RESP: unexpected ${JSON.stringify(type)}`);
    }
  }
}

function resp(...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
}

function redisConn(port: number, onReply: (v: unknown) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port }, () => resolve(sock));
    sock.setNoDelay(true);
    const r = new Resp();
    sock.on('data', (d: Buffer) => {
      for (const v of r.push(d)) onReply(v);
    });
    sock.on('error', reject);
  });
}

/** A follower: XREAD BLOCK 0 from its last id, again after every reply. */
async function redisFollower(port: number, onK: (k: number) => void): Promise<Socket> {
  let last = '$';
  let sock!: Socket;
  sock = await redisConn(port, (v) => {
    if (v instanceof Error) throw v;
    // [[stream, [[id, [field, value, ...]], ...]]]
    for (const [, entries] of v as [string, [string, string[]][]][]) {
      for (const [id, fields] of entries) {
        last = id;
        onK(Number(fields[fields.indexOf('k') + 1]));
      }
    }
    sock.write(resp('XREAD', 'BLOCK', '0', 'STREAMS', 's', last));
  });
  sock.write(resp('XREAD', 'BLOCK', '0', 'STREAMS', 's', last));
  return sock;
}

async function redisLatency(port: number, pid: number): Promise<{ rows: Record<number, Row>; idle: Idle }> {
  const rows: Record<number, Row> = {};
  let idle: Idle | undefined;
  let pending: ((v: unknown) => void) | undefined;
  const producer = await redisConn(port, (v) => pending?.(v));
  const call = (...args: string[]) =>
    new Promise<unknown>((resolve) => {
      pending = resolve;
      producer.write(resp(...args));
    });
  await call('XADD', 's', '*', 'warm', '1');
  const rssIdle = procUsage(pid).rss;
  const cpuNone = await idleCpu(pid, IDLE_SECONDS);
  let kBase = 0;
  for (const n of FOLLOWERS) {
    const samples = new Samples();
    const sockets: Socket[] = [];
    for (let i = 0; i < n; i++) sockets.push(await redisFollower(port, (k) => samples.got(k)));
    await sleep(300);
    const t0 = performance.now();
    for (let i = 1; i <= EVENTS; i++) {
      const k = kBase + i;
      const slot = t0 + (i * 1000) / RATE;
      samples.sentAt(k);
      const r = await call('XADD', 's', '*', 'type', 'order.created', 'k', String(k), 'data', PAD);
      if (r instanceof Error) throw r;
      const wait = slot - performance.now();
      if (wait > 0) await sleep(wait);
    }
    kBase += EVENTS;
    const deadline = performance.now() + 10_000;
    while (samples.delivered < n * EVENTS && performance.now() < deadline) await sleep(20);
    rows[n] = samples.summary();
    progress(`  Redis, ${n} followers: p50 ${rows[n].p50.toFixed(2)} ms p99 ${rows[n].p99.toFixed(2)} ms (${rows[n].n}/${n * EVENTS} deliveries)`);
    if (n === 1000) {
      await sleep(1000);
      const cpuPercent = await idleCpu(pid, IDLE_SECONDS);
      idle = { cpuPercent, cpuNone, rssIdle, rssFollowers: procUsage(pid).rss };
      const b = { rss: idle.rssFollowers };
      progress(`  Redis, 1000 idle followers over ${IDLE_SECONDS}s: CPU ${idle.cpuPercent.toFixed(2)}%, RSS ${(b.rss / 2 ** 20).toFixed(1)} MiB (${(rssIdle / 2 ** 20).toFixed(1)} MiB without followers)`);
    }
    for (const s of sockets) s.destroy();
    await sleep(300);
  }
  producer.destroy();
  return { rows, idle: idle! };
}

function haveRedis(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    // Debian: install it the way CI would (root only).
    if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
      progress('redis-server missing: apt-get install -y redis-server redis-tools');
      try {
        execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server', 'redis-tools'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
        return true;
      } catch {
        return false;
      }
    }
    return false;
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  progress(`scratch ${scratch}; ${EVENTS} events per point at ${RATE}/s; ${cpus().length} cores; node ${process.version}`);
  const port = await freePort();
  const server = start(process.execPath, [join(repo, 'src/bin/eventlog-server.ts'), '--data-dir', join(scratch, 'ours'), '--host', '127.0.0.1', '--port', String(port), '--durability', 'fsync', '--termination-message-path', join(scratch, 'term')], 'eventlog-server');
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 500) throw new Error('eventlog-server did not become ready');
    await sleep(20);
  }
  progress('eventlog-server (--durability fsync), SSE followers');
  const ours = await oursLatency(port, server.pid!);
  progress('producer throughput, 64 concurrent appenders');
  const thr = await producerThroughput(base);
  await stop(server);

  let redis: { rows: Record<number, Row>; idle: Idle } | undefined;
  if (haveRedis()) {
    progress('Redis Streams (appendonly yes, appendfsync always), XREAD BLOCK followers');
    const rport = await freePort();
    const dir = join(scratch, 'redis');
    execFileSync('mkdir', ['-p', dir]);
    const r = start('redis-server', ['--port', String(rport), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--maxclients', '5000'], 'redis-server');
    for (let i = 0; ; i++) {
      try {
        if (execFileSync('redis-cli', ['-p', String(rport), 'ping'], { encoding: 'utf8' }).trim() === 'PONG') break;
      } catch {
        // starting
      }
      if (i > 500) throw new Error('redis-server did not start');
      await sleep(20);
    }
    redis = await redisLatency(rport, r.pid!);
    await stop(r);
  } else progress('redis-server not available: its column stays empty');

  const ms = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(2));
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  const lines = [
    `Benchmark: followers, ${new Date().toISOString()}, ${cpus().length} cores, node ${process.version}; ${EVENTS} events per point at ${RATE}/s, ~230-byte events, fsync durability on both`,
    '',
    '| figure | eventlog-server (SSE) | Redis XREAD BLOCK (AOF always) |',
    '|---|---:|---:|',
    ...FOLLOWERS.map((n) => `| append → follower p50 / p99 ms, ${n} follower${n > 1 ? 's' : ''} | ${ms(ours.rows[n]?.p50)} / ${ms(ours.rows[n]?.p99)} | ${ms(redis?.rows[n]?.p50)} / ${ms(redis?.rows[n]?.p99)} |`),
    `| server CPU %, no followers → 1000 idle followers (${IDLE_SECONDS} s each) | ${ours.idle.cpuNone.toFixed(2)} → ${ours.idle.cpuPercent.toFixed(2)} | ${redis ? `${redis.idle.cpuNone.toFixed(2)} → ${redis.idle.cpuPercent.toFixed(2)}` : '—'} |`,
    `| server RSS MiB, none → 1000 idle followers | ${mib(ours.idle.rssIdle)} → ${mib(ours.idle.rssFollowers)} | ${redis ? `${mib(redis.idle.rssIdle)} → ${mib(redis.idle.rssFollowers)}` : '—'} |`,
    '',
    '| 64 concurrent appenders, one process | appends/s |',
    '|---|---:|',
    ...Object.entries(thr).map(([k, v]) => `| ${k} | ${Math.round(v).toLocaleString('en-US')} |`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

const cleanup = async () => {
  await Promise.all([...children].map(stop));
  rmSync(scratch, { recursive: true, force: true });
};
main().then(cleanup, async (err: unknown) => {
  await cleanup();
  process.stderr.write(`bench:followers: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
