/**
 * `kubectl eventlog <command>` (the `kubectl-eventlog` program): what an on-call
 * engineer and a developer do with an EventLog from a laptop, through the Kubernetes API
 * of their kubeconfig (log-access.ts): no port-forward to set up, no token to copy.
 *
 *   status NAME [-o json]                  the one screen to read first
 *   tail NAME [--from SEQ] [--lines N] [-f] print events (NDJSON), follow new ones
 *   append NAME --data JSON | -f FILE      append one event, or NDJSON lines (- = stdin)
 *   approve-repair NAME [--yes]            approve the repair of the corruption status reports
 *
 * Exit codes: 0 success; 1 a failure (one line on stderr: which EventLog, what failed);
 * 2 a usage error (one line).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { APPROVE_REPAIR_ANNOTATION } from '../api/eventlog.ts';
import { KubeHttp } from '../runtime/kube-http.ts';
import { Resources } from '../runtime/resources.ts';
import { EVENTLOG_RESOURCE } from '../operator/reconcile/resource.ts';
import { describeFailure, openLog, PluginError, readEventLog, type LogAccess, type Via } from './log-access.ts';
import { renderStatus } from './status-view.ts';

export interface PluginIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Resolves when the user interrupts (Ctrl-C): `tail -f` ends cleanly. */
  interrupted?: Promise<void>;
}

class UsageError extends Error {}

const USAGE = `usage: kubectl eventlog <command> NAME [flags]

commands:
  status NAME [-o json]                 conditions, storage, log, pod, recovery, drift, last error
  tail NAME [--from SEQ] [--lines N] [-f]  print events as NDJSON (default: the last 10); -f follows
  append NAME --data JSON | -f FILE     append one JSON event, or NDJSON lines from FILE (- = stdin)
  approve-repair NAME [--yes]           approve truncating the log at the corruption status reports

flags: -n/--namespace NS (default: the kubeconfig context's), --kubeconfig FILE, --context NAME,
       --via auto|proxy|direct (how to reach the log server: the API server's pod proxy, or the
       pod address directly; auto: direct only for loopback pod addresses, as in the local cluster)
`;

/** Long-poll wait per request while following (well below the API server's proxy timeouts). */
const FOLLOW_WAIT = '25s';

export async function main(argv: string[], io: PluginIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  try {
    switch (command) {
      case 'status':
        return await status(rest, io);
      case 'tail':
        return await tail(rest, io);
      case 'append':
        return await append(rest, io);
      case 'approve-repair':
        return await approveRepair(rest, io);
      default:
        throw new UsageError(`unknown command "${command}" (known: status, tail, append, approve-repair)`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`kubectl eventlog: ${error.message}\n`);
      return 2;
    }
    io.stderr.write(`kubectl eventlog: ${(error as Error).message}\n`);
    return 1;
  }
}

interface Common {
  name: string;
  namespace: string;
  http: KubeHttp;
  via: Via;
}

const COMMON_OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  via: { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
} as const;

function parse<O extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0] ?? 'bad arguments');
  }
}

async function common(values: { namespace?: string | boolean; kubeconfig?: string | boolean; context?: string | boolean; via?: string | boolean }, positionals: string[], env: NodeJS.ProcessEnv): Promise<Common> {
  const via = values.via ?? 'auto';
  if (via !== 'auto' && via !== 'proxy' && via !== 'direct') throw new UsageError(`--via takes auto, proxy or direct, got "${String(via)}"`);
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'an EventLog NAME is required' : `one EventLog NAME expected, got ${positionals.length}`);
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    const file = typeof values.kubeconfig === 'string' ? values.kubeconfig : undefined;
    if (file) kc.loadFromFile(file);
    else if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG.split(':')[0]!);
    else kc.loadFromDefault();
    if (typeof values.context === 'string') kc.setCurrentContext(values.context);
  } catch (error) {
    throw new UsageError(`cannot load the kubeconfig: ${(error as Error).message}`);
  }
  if (!kc.getCurrentCluster()) throw new UsageError('the kubeconfig has no current cluster (use --kubeconfig or --context)');
  const ctxNs = kc.getContextObject(kc.getCurrentContext())?.namespace;
  const namespace = typeof values.namespace === 'string' ? values.namespace : (ctxNs ?? 'default');
  return { name: positionals[0]!, namespace, http: new KubeHttp(kc, { requestTimeoutMs: 30_000 }), via };
}

async function status(args: string[], io: PluginIo): Promise<number> {
  const { values, positionals } = parse(args, { output: { type: 'string', short: 'o' } });
  if (values.output !== undefined && values.output !== 'json') throw new UsageError(`-o takes "json", got "${values.output}"`);
  const c = await common(values, positionals, io.env);
  const evl = await readEventLog(c.http, c.namespace, c.name);
  if (values.output === 'json') {
    io.stdout.write(`${JSON.stringify({ namespace: c.namespace, name: c.name, generation: evl.metadata.generation, spec: evl.spec, status: evl.status ?? null }, null, 2)}\n`);
    return 0;
  }
  const color = io.stdout.isTTY === true && !io.env.NO_COLOR;
  io.stdout.write(renderStatus(evl, { color }));
  return 0;
}

const positiveInt = (v: string | undefined, flag: string, min: number): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${flag} takes an integer >= ${min}, got "${v}"`);
  return Number(v);
};

/** One page of events after `after`; 410 (retention) becomes a one-line failure naming the first kept sequence. */
async function page(log: LogAccess, what: string, after: number, limit: number, wait?: string): Promise<{ lines: string[]; last: number }> {
  const res = await log.request('GET', '/events', { query: { after, limit, ...(wait ? { wait } : {}) }, timeoutMs: 60_000 });
  if (res.statusCode === 410) {
    const first = (JSON.parse(res.body.toString('utf8')) as { firstSequence?: number }).firstSequence;
    throw new PluginError(`${what}: events after ${after} were removed by retention; the first kept sequence is ${first} (use --from ${first})`);
  }
  if (res.statusCode !== 200) throw new PluginError(describeFailure(res, `${what}: reading events after ${after}`));
  const lines = res.body.toString('utf8').split('\n').filter((l) => l.length > 0);
  const lastLine = lines[lines.length - 1];
  return { lines, last: lastLine ? (JSON.parse(lastLine) as { sequence: number }).sequence : after };
}

async function tail(args: string[], io: PluginIo): Promise<number> {
  const { values, positionals } = parse(args, { from: { type: 'string' }, lines: { type: 'string' }, follow: { type: 'boolean', short: 'f' } });
  const from = positiveInt(values.from, '--from', 1);
  const count = positiveInt(values.lines, '--lines', 0) ?? 10;
  const c = await common(values, positionals, io.env);
  const what = `EventLog ${c.namespace}/${c.name}`;
  const log = await openLog(c.http, c.namespace, c.name, { via: c.via });
  let after: number;
  if (from !== undefined) after = from - 1;
  else {
    const res = await log.request('GET', '/status');
    if (res.statusCode !== 200) throw new PluginError(describeFailure(res, `${what}: reading /status`));
    const s = JSON.parse(res.body.toString('utf8')) as { stats?: { lastSequence?: number }; retention?: { firstSequence?: number } };
    after = Math.max((s.retention?.firstSequence ?? 1) - 1, (s.stats?.lastSequence ?? 0) - count);
  }
  // Print what is there now (in pages), then follow.
  for (;;) {
    const p = await page(log, what, after, 1000);
    for (const l of p.lines) io.stdout.write(`${l}\n`);
    if (p.lines.length === 0) break;
    after = p.last;
  }
  if (!values.follow) return 0;
  let stop = false;
  void io.interrupted?.then(() => (stop = true));
  const interrupted = io.interrupted?.then(() => undefined) ?? new Promise<never>(() => undefined);
  while (!stop) {
    const started = Date.now();
    const p = await Promise.race([page(log, what, after, 1000, FOLLOW_WAIT), interrupted]);
    if (p === undefined) break;
    for (const l of p.lines) io.stdout.write(`${l}\n`);
    after = p.last;
    // A server without long polls answers an empty page at once: poll once a second then.
    if (p.lines.length === 0 && Date.now() - started < 1_000) await Promise.race([new Promise((r) => setTimeout(r, 1_000)), interrupted]);
  }
  return 0;
}

async function append(args: string[], io: PluginIo): Promise<number> {
  const { values, positionals } = parse(args, { data: { type: 'string' }, file: { type: 'string', short: 'f' } });
  if ((values.data === undefined) === (values.file === undefined)) throw new UsageError('give exactly one of --data JSON or -f FILE');
  let body: string;
  let contentType = 'application/json';
  if (values.data !== undefined) {
    try {
      const v = JSON.parse(values.data) as unknown;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    } catch (error) {
      throw new UsageError(`--data must be a JSON object: ${(error as Error).message}`);
    }
    body = values.data;
  } else {
    const text = values.file === '-' ? await readStream(io.stdin) : await readFile(values.file!, 'utf8').catch((e: Error) => {
      throw new UsageError(`cannot read ${values.file}: ${e.message}`);
    });
    const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
    if (lines.length === 0) throw new UsageError(`${values.file === '-' ? 'stdin' : values.file} has no events`);
    lines.forEach((l, i) => {
      try {
        JSON.parse(l);
      } catch (error) {
        throw new UsageError(`${values.file}: line ${i + 1} is not JSON: ${(error as Error).message}`);
      }
    });
    body = lines.join('\n');
    contentType = 'application/x-ndjson';
  }
  const c = await common(values, positionals, io.env);
  const what = `EventLog ${c.namespace}/${c.name}`;
  const log = await openLog(c.http, c.namespace, c.name, { via: c.via });
  // One key for this append: a retry (by the user or a proxy) cannot duplicate it.
  const res = await log.request('POST', '/events', { body, contentType, headers: { 'Idempotency-Key': randomUUID() } });
  if (res.statusCode !== 201 && res.statusCode !== 200) throw new PluginError(describeFailure(res, `${what}: append`));
  const stored = JSON.parse(res.body.toString('utf8')) as unknown;
  for (const e of Array.isArray(stored) ? stored : [stored]) io.stdout.write(`${JSON.stringify(e)}\n`);
  return 0;
}

async function approveRepair(args: string[], io: PluginIo): Promise<number> {
  const { values, positionals } = parse(args, { yes: { type: 'boolean', short: 'y' } });
  const c = await common(values, positionals, io.env);
  const what = `EventLog ${c.namespace}/${c.name}`;
  const evl = await readEventLog(c.http, c.namespace, c.name);
  const corruption = evl.status?.recovery?.corruption;
  if (!corruption) throw new PluginError(`${what}: status reports no corruption; nothing to approve`);
  io.stdout.write(
    `${what}: interior corruption ${corruption.id}\n  in ${corruption.segment} at offset ${corruption.offset}: ${corruption.reason}\n` +
      `Approving truncates the log at that record; the cut bytes are moved aside on the volume (not deleted).\n`,
  );
  if (!values.yes) {
    if (!io.stdin.isTTY) throw new UsageError('not on a terminal: add --yes to approve');
    const rl = createInterface({ input: io.stdin, output: io.stdout });
    const answer = (await rl.question(`Approve the repair of ${corruption.id}? [y/N] `)).trim().toLowerCase();
    rl.close();
    if (answer !== 'y' && answer !== 'yes') {
      io.stdout.write('not approved\n');
      return 1;
    }
  }
  await new Resources(c.http).patch(EVENTLOG_RESOURCE, c.namespace, c.name, 'merge', { metadata: { annotations: { [APPROVE_REPAIR_ANNOTATION]: corruption.id } } }).catch((error: Error) => {
    throw new PluginError(`${what}: writing the annotation ${APPROVE_REPAIR_ANNOTATION}: ${error.message}`);
  });
  io.stdout.write(`approved: ${APPROVE_REPAIR_ANNOTATION}=${corruption.id}; the operator runs the repair at its next poll. Watch: kubectl eventlog status ${c.name} -n ${c.namespace}\n`);
  return 0;
}

async function readStream(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks).toString('utf8');
}
