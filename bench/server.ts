/**
 * `npm run bench:server`: durable-append throughput and latency, batch ingest and
 * recovery speed of the log server, side by side with two baselines measured in the
 * same run on the same machine:
 *   - fsync-per-append: the minimal NDJSON store with one fdatasync per append
 *     (bench/baselines/fsync-per-append.ts), same HTTP framework and load generator;
 *   - Redis Streams: XADD on Debian's redis-server with appendonly yes and
 *     appendfsync always, driven by redis-benchmark (a C client: cheaper than our
 *     in-process HTTP load generator, so this comparison favours Redis).
 * Also the client library's batching producer (src/client, `producer()`) with 64
 * concurrent appenders in this process. Each figure with a target (issue 15) is printed
 * with the target and the ratio reached; the load average is printed before and after
 * (other work on the machine makes every figure pessimistic).
 *
 * Environment: BENCH_SECONDS (per measurement, default 8), BENCH_WARMUP_SECONDS (load
 * before each HTTP measurement, not counted, default 2), BENCH_RECOVERY_MB (log size for
 * the recovery test, default 1024), BENCH_DIR (scratch dir, default a temp dir that is
 * removed afterwards). Prints a Markdown table; progress goes to stderr.
 * Loopback only; every process it starts is stopped by pid.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync, openSync, closeSync, readSync, mkdirSync } from 'node:fs';
import { tmpdir, cpus, totalmem, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { freePort } from '../dev/cluster/ports.ts';
import { EventLogClient } from '../src/client/index.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const recoveryMB = Number(process.env.BENCH_RECOVERY_MB ?? 1024);
const scratch = process.env.BENCH_DIR ?? mkdtempSync(join(tmpdir(), 'eventlog-bench-'));
const children = new Set<ChildProcess>();

const progress = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

/** A JSON event body of exactly `size` bytes. */
function eventBody(size: number): string {
  const skeleton = JSON.stringify({ type: 'order.created', data: '' });
  return JSON.stringify({ type: 'order.created', data: 'x'.repeat(size - skeleton.length) });
}
const body256 = eventBody(256);


function start(cmd: string, args: string[], name: string): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-2000);
  });
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (code !== 0 && signal === null && code !== null) progress(`${name} exited ${code}: ${tail.trim().split('\n').pop()}`);
  });
  children.add(child);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function waitHttp(url: string, timeoutMs = 600_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return performance.now() - t0;
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${url}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Row = { appendsPerSec: number; p50: number; p99: number };

/** Seconds of load before each measured point (JIT warm-up, connections open), not counted. */
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);

async function loadHttp(url: string, connections: number, body: string, contentType: string, beforeMeasuring?: () => Promise<void>): Promise<autocannon.Result> {
  if (warmupSeconds > 0) {
    await autocannon({ url, method: 'POST', connections, pipelining: 1, duration: warmupSeconds, headers: { 'content-type': contentType }, body });
  }
  await beforeMeasuring?.();
  const result = await autocannon({
    url,
    method: 'POST',
    connections,
    pipelining: 1,
    duration: seconds,
    headers: { 'content-type': contentType },
    body,
  });
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${url}: ${result.non2xx} non-2xx responses and ${result.errors} errors under load`);
  }
  return result;
}

/** eventlog-server only: group commits so far (each is one write + one fdatasync in fsync mode). */
async function commitsTotal(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^eventlog_commits_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

async function appendsHttp(base: string, withCommits = false): Promise<Record<number, Row>> {
  const rows: Record<number, Row> = {};
  for (const c of [1, 16, 64]) {
    let before = 0;
    const r = await loadHttp(`${base}/events`, c, body256, 'application/json', async () => {
      if (withCommits) before = await commitsTotal(base);
    });
    rows[c] = { appendsPerSec: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
    let commits = '';
    if (withCommits) {
      const n = (await commitsTotal(base)) - before;
      commits = `, ${Math.round(n / seconds)} fdatasyncs/s (${(r.requests.total / n).toFixed(1)} appends each)`;
    }
    progress(`  ${c} clients: ${Math.round(r.requests.average)} appends/s p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms${commits}`);
  }
  return rows;
}

async function batchHttp(base: string): Promise<number> {
  const batch = Array.from({ length: 1000 }, () => body256).join('\n') + '\n';
  const r = await loadHttp(`${base}/events`, 4, batch, 'application/x-ndjson');
  const mbps = (r.requests.average * Buffer.byteLength(batch)) / 1e6;
  progress(`  batch ingest: ${mbps.toFixed(1)} MB/s of event payload`);
  return mbps;
}

type Figures = { appends: Record<number, Row>; batchMBps: number; recoveryMBps: number; recoveryNote: string; producer?: Record<string, number> };

/** The client library's batching producer: 64 concurrent appenders in this process, for `seconds`. */
async function producerHttp(base: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const event = JSON.parse(body256) as Record<string, unknown>;
  const client = new EventLogClient({ url: base });
  for (const opts of [{ lingerMs: 0 }, { lingerMs: 0, maxInFlight: 4 }]) {
    const name = `producer(${JSON.stringify(opts).replace(/"/g, '').replace(/:/g, ': ').replace(/,/g, ', ')})`;
    const p = client.producer(opts);
    let n = 0;
    let stop = false;
    if (warmupSeconds > 0) {
      const until = performance.now() + warmupSeconds * 1000;
      await Promise.all(Array.from({ length: 64 }, async () => { while (performance.now() < until) await p.append(event); }));
    }
    const t0 = performance.now();
    const timer = setTimeout(() => (stop = true), seconds * 1000);
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (!stop) {
          await p.append(event);
          n++;
        }
      }),
    );
    clearTimeout(timer);
    await p.close();
    out[name] = n / ((performance.now() - t0) / 1000);
    progress(`  ${name}, 64 appenders: ${Math.round(out[name])} appends/s (${(p.stats.events / p.stats.batches).toFixed(1)} events per request)`);
  }
  return out;
}

async function benchOurs(): Promise<Figures> {
  progress('eventlog-server (group commit, --durability fsync)');
  const dir = join(scratch, 'ours');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serverArgs = [join(repo, 'src/bin/eventlog-server.ts'), '--data-dir', dir, '--port', String(port), '--host', '127.0.0.1'];
  let server = start(process.execPath, [...serverArgs, '--durability', 'fsync'], 'eventlog-server');
  await waitHttp(`${base}/readyz`);
  const appends = await appendsHttp(base, true);
  const batchMBps = await batchHttp(base);
  const producer = await producerHttp(base);
  await stop(server);

  // Grow the log to the recovery size quickly (durability none), then time a restart.
  progress(`  building a ${recoveryMB} MB log for the recovery measurement`);
  server = start(process.execPath, [...serverArgs, '--durability', 'none'], 'eventlog-server');
  await waitHttp(`${base}/readyz`);
  const batch = Array.from({ length: 2000 }, () => body256).join('\n') + '\n';
  const clients = 4;
  let stats = { bytes: 0 };
  while (stats.bytes < recoveryMB * 1024 * 1024) {
    await Promise.all(
      Array.from({ length: clients }, async () => {
        const res = await fetch(`${base}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: batch });
        if (res.status !== 201) throw new Error(`batch append failed: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      }),
    );
    stats = (await (await fetch(`${base}/stats`)).json()) as { bytes: number };
  }
  await stop(server);
  execFileSync('sync');
  server = start(process.execPath, [...serverArgs, '--durability', 'fsync'], 'eventlog-server');
  const wallMs = await waitHttp(`${base}/readyz`);
  const status = (await (await fetch(`${base}/status`)).json()) as { recovery: { durationMs: number; bytesScanned: number; recordsRecovered: number } };
  await stop(server);
  const { durationMs, bytesScanned, recordsRecovered } = status.recovery;
  const recoveryMBps = bytesScanned / 1e6 / (durationMs / 1000);
  const recoveryNote = `${(bytesScanned / 1e6).toFixed(0)} MB, ${recordsRecovered} records in ${(durationMs / 1000).toFixed(2)} s (process start to ready ${(wallMs / 1000).toFixed(2)} s)`;
  progress(`  recovery: ${recoveryMBps.toFixed(0)} MB/s — ${recoveryNote}`);
  rmSync(dir, { recursive: true, force: true });
  return { appends, batchMBps, recoveryMBps, recoveryNote, producer };
}

/** Node's HTTP stack with nothing behind it (bench/baselines/http-ceiling.ts), 64 clients: what an append server in Node can at most answer here. */
async function benchHttpCeiling(): Promise<Record<string, Row>> {
  progress('reference: HTTP ceiling (no storage), 64 clients');
  const out: Record<string, Row> = {};
  for (const kind of ['fastify', 'http']) {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const server = start(process.execPath, [join(repo, 'bench/baselines/http-ceiling.ts'), '--kind', kind, '--port', String(port)], `http-ceiling ${kind}`);
    await waitHttp(`${base}/healthz`);
    const r = await loadHttp(`${base}/events`, 64, body256, 'application/json');
    out[kind] = { appendsPerSec: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
    progress(`  ${kind}: ${Math.round(r.requests.average)} answers/s p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms`);
    await stop(server);
  }
  return out;
}

async function benchFsyncPerAppend(): Promise<Figures> {
  progress('baseline: fsync-per-append NDJSON store');
  const dir = join(scratch, 'naive');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = start(process.execPath, [join(repo, 'bench/baselines/fsync-per-append.ts'), '--data-dir', dir, '--port', String(port)], 'fsync-per-append');
  await waitHttp(`${base}/healthz`);
  const appends = await appendsHttp(base);
  const batchMBps = await batchHttp(base);
  await stop(server);

  // Its recovery is a replay of the NDJSON file: parse every line, rebuild the id index.
  progress(`  writing a ${recoveryMB} MB NDJSON log for its replay`);
  const file = join(dir, 'replay.log');
  await writeNdjson(file, recoveryMB * 1024 * 1024);
  execFileSync('sync');
  const t0 = performance.now();
  const index = replayNdjson(file);
  const ms = performance.now() - t0;
  const bytes = statSync(file).size;
  const recoveryMBps = bytes / 1e6 / (ms / 1000);
  const recoveryNote = `${(bytes / 1e6).toFixed(0)} MB, ${index} records in ${(ms / 1000).toFixed(2)} s (JSON.parse per line)`;
  progress(`  replay: ${recoveryMBps.toFixed(0)} MB/s — ${recoveryNote}`);
  rmSync(dir, { recursive: true, force: true });
  return { appends, batchMBps, recoveryMBps, recoveryNote };
}

async function writeNdjson(file: string, size: number): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  const out = createWriteStream(file);
  let written = 0;
  let seq = 0;
  while (written < size) {
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++) {
      seq++;
      lines.push(JSON.stringify({ ...JSON.parse(body256), id: crypto.randomUUID(), createdAt: new Date().toISOString(), sequence: seq }));
    }
    const chunk = lines.join('\n') + '\n';
    written += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

function replayNdjson(file: string): number {
  const fd = openSync(file, 'r');
  const index = new Map<string, number>();
  const buf = Buffer.alloc(8 * 1024 * 1024);
  let carry = Buffer.alloc(0);
  let offset = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    let data = Buffer.concat([carry, buf.subarray(0, n)]);
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      const event = JSON.parse(data.toString('utf8', start, nl)) as { id: string };
      index.set(event.id, offset + start);
      start = nl + 1;
    }
    offset += start;
    carry = Buffer.from(data.subarray(start));
    data = carry;
  }
  closeSync(fd);
  return index.size;
}

async function benchRedis(): Promise<Figures> {
  progress('baseline: Redis Streams XADD, appendonly yes, appendfsync always');
  const dir = join(scratch, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const redisArgs = (fsync: string) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', fsync, '--save', '', '--auto-aof-rewrite-percentage', '0', '--daemonize', 'no', '--protected-mode', 'yes'];
  const cli = (...args: string[]) => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' }).trim();
  const waitRedis = async () => {
    const t0 = performance.now();
    for (;;) {
      try {
        if (cli('ping') === 'PONG') return performance.now() - t0;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const payload = 'x'.repeat(256 - 20);
  const bench = (clients: number, requests: number, pipeline: number) => {
    const csv = execFileSync(
      'redis-benchmark',
      ['-h', '127.0.0.1', '-p', String(port), '-c', String(clients), '-n', String(requests), '-P', String(pipeline), '--csv', 'XADD', 'events', '*', 'type', 'order.created', 'data', payload],
      { encoding: 'utf8' },
    );
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    const row = csv.trim().split('\n').pop()!.split(',').map((s) => s.replace(/"/g, ''));
    return { rps: Number(row[1]), p50: Number(row[4]), p99: Number(row[6]) };
  };

  let server = start('redis-server', redisArgs('always'), 'redis-server');
  await waitRedis();
  const appends: Record<number, Row> = {};
  for (const c of [1, 16, 64]) {
    // Size the run to about BENCH_SECONDS from a short probe.
    const probe = bench(c, 200 * c, 1);
    const r = bench(c, Math.max(1000, Math.round(probe.rps * seconds)), 1);
    appends[c] = { appendsPerSec: r.rps, p50: r.p50, p99: r.p99 };
    progress(`  ${c} clients: ${Math.round(r.rps)} XADD/s p50 ${r.p50} ms p99 ${r.p99} ms`);
  }
  const batch = bench(4, 400_000, 1000);
  const batchMBps = (batch.rps * 256) / 1e6;
  progress(`  pipelined ingest (-P 1000): ${batchMBps.toFixed(1)} MB/s of event payload`);
  await stop(server);

  progress(`  building a ~${recoveryMB} MB AOF (appendfsync no) for the recovery measurement`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  server = start('redis-server', redisArgs('no'), 'redis-server');
  await waitRedis();
  const perEntry = 330; // about the AOF bytes one XADD of this payload takes; the real size is measured below
  bench(8, Math.ceil((recoveryMB * 1024 * 1024) / perEntry), 1000);
  await stop(server);
  execFileSync('sync');
  const aofBytes = Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
  server = start('redis-server', redisArgs('always'), 'redis-server');
  // redis answers PING with -LOADING while it replays; redis-cli then exits non-zero.
  const ms = await waitRedis();
  const entries = Number(cli('xlen', 'events'));
  await stop(server);
  rmSync(dir, { recursive: true, force: true });
  const recoveryMBps = aofBytes / 1e6 / (ms / 1000);
  const recoveryNote = `${(aofBytes / 1e6).toFixed(0)} MB AOF, ${entries} entries in ${(ms / 1000).toFixed(2)} s (process start to PONG)`;
  progress(`  recovery: ${recoveryMBps.toFixed(0)} MB/s — ${recoveryNote}`);
  return { appends, batchMBps, recoveryMBps, recoveryNote };
}

/** The issue-15 table: figure, target, eventlog-server, baselines, Redis, reached ratio. */
function table(ours: Figures, naive: Figures, redis: Figures): string {
  const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
  const lat = (f: Figures, c: number) => `${f.appends[c]!.p50} / ${f.appends[c]!.p99}`;
  const reached = (ratio: number, goal: number, unit: string) => `${ratio.toFixed(2)}${unit} ${ratio >= goal ? '(reached)' : '(missed)'}`;
  const rows: string[][] = [];
  const a = (f: Figures, c: number) => f.appends[c]!.appendsPerSec;
  rows.push(['durable appends/s, 1 client', '>= fsync-per-append', fmt(a(ours, 1)), fmt(a(naive, 1)), fmt(a(redis, 1)), reached(a(ours, 1) / a(naive, 1), 1, 'x fsync-per-append')]);
  rows.push(['p50 / p99 latency ms, 1 client', '', lat(ours, 1), lat(naive, 1), lat(redis, 1), '']);
  rows.push(['durable appends/s, 16 clients', '', fmt(a(ours, 16)), fmt(a(naive, 16)), fmt(a(redis, 16)), `${(a(ours, 16) / a(redis, 16)).toFixed(2)}x Redis`]);
  rows.push(['p50 / p99 latency ms, 16 clients', '', lat(ours, 16), lat(naive, 16), lat(redis, 16), '']);
  rows.push(['durable appends/s, 64 clients', '>= 0.8x Redis', fmt(a(ours, 64)), fmt(a(naive, 64)), fmt(a(redis, 64)), reached(a(ours, 64) / a(redis, 64), 0.8, 'x Redis')]);
  const p99 = ours.appends[64]!.p99;
  rows.push(['p50 / p99 latency ms, 64 clients', 'p99 <= 5 ms', lat(ours, 64), lat(naive, 64), lat(redis, 64), `p99 ${p99} ms ${p99 <= 5 ? '(reached)' : '(missed)'}`]);
  for (const [name, rate] of Object.entries(ours.producer ?? {})) {
    rows.push([`${name}, 64 appenders in one process, appends/s`, '>= 2x Redis at 64 clients', fmt(rate), '', fmt(a(redis, 64)), reached(rate / a(redis, 64), 2, 'x Redis')]);
  }
  rows.push(['batch ingest MB/s (NDJSON, 1000 x 256 B)', '>= 150', fmt(ours.batchMBps), fmt(naive.batchMBps), fmt(redis.batchMBps), reached(ours.batchMBps / 150, 1, 'x target')]);
  rows.push(['recovery MB/s (>= 1 GB log)', '>= 500', fmt(ours.recoveryMBps), fmt(naive.recoveryMBps), fmt(redis.recoveryMBps), reached(ours.recoveryMBps / 500, 1, 'x target')]);
  return [
    '| figure | target | eventlog-server | fsync-per-append | Redis XADD (AOF always) | reached |',
    '|---|---|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

async function main(): Promise<void> {
  const load0 = loadavg().map((l) => l.toFixed(2)).join(' ');
  progress(`scratch dir ${scratch}; ${seconds}s per measurement; recovery log ${recoveryMB} MB; ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; load average ${load0}`);
  const ours = await benchOurs();
  const ceiling = await benchHttpCeiling();
  const naive = await benchFsyncPerAppend();
  const redis = await benchRedis();
  const out = [
    `Benchmark: eventlog-server vs baselines, ${new Date().toISOString()}, ${cpus().length} cores, node ${process.version}, 256-byte events, ${seconds}s per point; load average (1/5/15 min) at start ${load0}, at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    '',
    table(ours, naive, redis),
    '',
    `HTTP ceiling at 64 clients, same load generator, no storage behind it (bench/baselines/http-ceiling.ts): fastify ${Math.round(ceiling.fastify!.appendsPerSec).toLocaleString('en-US')} answers/s (p99 ${ceiling.fastify!.p99} ms), node:http ${Math.round(ceiling.http!.appendsPerSec).toLocaleString('en-US')} answers/s (p99 ${ceiling.http!.p99} ms); eventlog-server reached ${(ours.appends[64]!.appendsPerSec / ceiling.fastify!.appendsPerSec).toFixed(2)}x the fastify ceiling.`,
    '',
    'Recovery runs:',
    ...Object.entries({ 'eventlog-server': ours, 'fsync-per-append': naive, 'Redis XADD (AOF always)': redis }).map(([name, f]) => `- ${name}: ${f.recoveryNote}`),
  ];
  process.stdout.write(out.join('\n') + '\n');
}

const cleanup = async () => {
  await Promise.all([...children].map(stop));
  if (!process.env.BENCH_DIR) rmSync(scratch, { recursive: true, force: true });
};
main().then(cleanup, async (error: unknown) => {
  await cleanup();
  process.stderr.write(`bench:server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
