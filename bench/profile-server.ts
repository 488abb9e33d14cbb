/**
 * `node bench/profile-server.ts [single1|single64|batch] [seconds]`: runs eventlog-server
 * (`--durability fsync`) under `node --cpu-prof`, drives one load with autocannon (256-byte
 * events: 1 or 64 connections of single appends, or 4 connections of NDJSON batches of
 * 1000), stops the server and prints the top entries of the profile by self time
 * (function, file:line, % of the server's samples). The .cpuprofile stays in the printed
 * directory (open it in Chrome DevTools / speedscope).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { freePort } from '../dev/cluster/ports.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const scenario = process.argv[2] ?? 'single64';
const seconds = Number(process.argv[3] ?? 8);
const top = Number(process.env.PROFILE_TOP ?? 25);
const skeleton = JSON.stringify({ type: 'order.created', data: '' });
const body256 = JSON.stringify({ type: 'order.created', data: 'x'.repeat(256 - skeleton.length) });

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name + file:line), largest first, as [label, share]. */
export function selfTimes(profile: Profile): [string, number][] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const ticks = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const n = byId.get(profile.samples[i]!)!;
    const dt = profile.timeDeltas[i] ?? 0;
    const f = n.callFrame;
    const file = f.url.replace(/^file:\/\//, '').replace(repo + '/', '').replace(/^.*node_modules\//, '');
    let label = `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
    // A nameless native frame (a V8 builtin such as utf8Write's string encoder): name its caller.
    if (label === '(anonymous)') label = `(native) in ${parent.get(n.id)?.callFrame.functionName || '?'}`;
    ticks.set(label, (ticks.get(label) ?? 0) + dt);
    total += dt;
  }
  return [...ticks.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / total]);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'eventlog-profile-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', join(dir, 'prof'), join(repo, 'src/bin/eventlog-server.ts'), '--data-dir', join(dir, 'data'), '--port', String(port), '--host', '127.0.0.1', '--durability', 'fsync'], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (;;) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const batch = scenario === 'batch';
  const body = batch ? Array.from({ length: 1000 }, () => body256).join('\n') + '\n' : body256;
  const connections = scenario === 'single1' ? 1 : batch ? 4 : 64;
  const r = await autocannon({ url: `${base}/events`, method: 'POST', connections, duration: seconds, headers: { 'content-type': batch ? 'application/x-ndjson' : 'application/json' }, body });
  const rate = batch ? `${((r.requests.average * Buffer.byteLength(body)) / 1e6).toFixed(1)} MB/s` : `${Math.round(r.requests.average)} appends/s`;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  const file = readdirSync(join(dir, 'prof')).find((f) => f.endsWith('.cpuprofile'))!;
  const profile = JSON.parse(readFileSync(join(dir, 'prof', file), 'utf8')) as Profile;
  process.stdout.write(`${scenario}: ${rate} (p99 ${r.latency.p99} ms, ${r.non2xx} non-2xx); profile ${join(dir, 'prof', file)}\n\n| self % | function |\n|---:|---|\n`);
  for (const [label, share] of selfTimes(profile).slice(0, top)) process.stdout.write(`| ${(share * 100).toFixed(1)} | \`${label}\` |\n`);
}

await main();
