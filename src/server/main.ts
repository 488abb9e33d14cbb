/**
 * `eventlog-server` entry: `serve` (default), `verify`, `import`, `repair`, `--help`.
 * Resolves with the process exit code: 0 ok, 1 failure/corruption found, 2 usage error.
 */
import { z } from 'zod';
import { createLogger } from '../common/logger.ts';
import { ImportError, importNdjson } from '../storage/import.ts';
import { LockedError } from '../storage/lock.ts';
import { EventStore, StoreError } from '../storage/store.ts';
import { verifyLog } from '../storage/verify.ts';
import { TokenFileError } from './auth.ts';
import { SERVE_OPTIONS, UsageError, optionHelp, parseArgs, parseServeConfig, requireOption } from './config.ts';

export interface MainIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  env: NodeJS.ProcessEnv;
}

const PROG = 'eventlog-server';
const dataDirOpt = SERVE_OPTIONS[0]!;
const fromOpt = { flag: '--from', env: undefined, key: 'from', expected: 'a file path', schema: z.string().min(1), help: 'legacy NDJSON log to import (required)' };
const corruptionOpt = { flag: '--corruption-id', env: undefined, key: 'corruptionId', expected: 'the corruption id from /status or verify', schema: z.string().min(1), help: 'id of the corruption to repair (required)' };

export const USAGE = `Usage:
  ${PROG} [serve] --data-dir DIR [options]     run the log server
  ${PROG} verify --data-dir DIR                check a log offline, print the recovery report (exit 1 if corrupt)
  ${PROG} import --data-dir DIR --from FILE    import a legacy NDJSON event log, keeping ids
  ${PROG} repair --data-dir DIR --corruption-id ID
                                               move the corrupt part of the log aside and recover
  ${PROG} --help

Options (serve):
${optionHelp(SERVE_OPTIONS)}

Docs: docs/server.md
`;

export async function main(argv: string[], io: MainIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const first = argv[0];
  const sub = first === undefined || first.startsWith('-') ? 'serve' : first;
  const rest = sub === first ? argv.slice(1) : argv;
  try {
    switch (sub) {
      case 'help':
        io.stdout.write(USAGE);
        return 0;
      case 'serve':
        return await serve(rest, io);
      case 'verify':
        return await verify(rest, io);
      case 'import':
        return await runImport(rest, io);
      case 'repair':
        return await repair(rest, io);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(sub)} (see --help)`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${PROG}: ${err.message}\n`);
      return 2;
    }
    const msg = err instanceof Error ? err.message : String(err);
    io.stderr.write(`${PROG}: ${msg.split('\n')[0]}\n`);
    return 1;
  }
}

async function serve(argv: string[], io: MainIo): Promise<number> {
  const { config, help } = parseServeConfig(argv, io.env);
  if (help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const log = createLogger(PROG);
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));
  // Loaded here so the offline sub-commands do not pay for fastify and prom-client.
  const { startServer } = await import('./app.ts');
  let handle: Awaited<ReturnType<typeof startServer>>;
  try {
    handle = await startServer(config, {
      logger: log,
      onFatal: (err) => {
        log.fatal({ err }, 'storage failure: exiting so the pod restarts and recovery runs');
        // Give the rejected requests a moment to get their 503, then exit non-zero.
        setTimeout(() => resolveExit(1), 100).unref();
      },
    });
  } catch (err) {
    if (err instanceof LockedError) throw new Error(err.message);
    if (err instanceof TokenFileError) {
      const byFlag = argv.some((a) => a === '--auth-token-file' || a.startsWith('--auth-token-file='));
      throw new UsageError(`${byFlag ? '--auth-token-file' : 'EVENTLOG_AUTH_TOKEN_FILE'}: ${err.message}`);
    }
    throw err;
  }
  const onSignal = (sig: string) => {
    log.info({ signal: sig }, 'shutting down: finishing in-flight requests and commits');
    const force = setTimeout(() => {
      log.error('shutdown took longer than 20 s; exiting');
      resolveExit(1);
    }, 20_000);
    force.unref();
    handle.close().then(
      () => {
        clearTimeout(force);
        log.info('closed cleanly');
        resolveExit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error while closing');
        resolveExit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const code = await exited;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return code;
}

function subArgs(argv: string[], io: MainIo, specs: (typeof dataDirOpt)[]): Record<string, unknown> | 'help' {
  const { values, help } = parseArgs(argv, specs, io.env);
  if (help) return 'help';
  for (const s of specs) requireOption(values, s);
  return values;
}

async function verify(argv: string[], io: MainIo): Promise<number> {
  const v = subArgs(argv, io, [dataDirOpt]);
  if (v === 'help') return io.stdout.write(USAGE), 0;
  const report = await verifyLog(v.dataDir as string);
  io.stdout.write(JSON.stringify(report) + '\n');
  return report.outcome === 'CorruptionDetected' ? 1 : 0;
}

async function openStore(dataDir: string): Promise<EventStore> {
  const store = new EventStore({ dataDir, durability: 'fsync', logger: createLogger(PROG) });
  await store.open();
  return store;
}

async function runImport(argv: string[], io: MainIo): Promise<number> {
  const v = subArgs(argv, io, [dataDirOpt, fromOpt]);
  if (v === 'help') return io.stdout.write(USAGE), 0;
  const store = await openStore(v.dataDir as string);
  try {
    if (store.state !== 'ready') {
      throw new Error(`cannot import into ${String(v.dataDir)}: the log is ${store.state} (${store.report?.corruption?.reason ?? ''})`);
    }
    const report = await importNdjson(store, v.from as string);
    io.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  } catch (err) {
    if (err instanceof ImportError) throw new Error(`import: ${err.message}`);
    throw err;
  } finally {
    await store.close();
  }
}

async function repair(argv: string[], io: MainIo): Promise<number> {
  const v = subArgs(argv, io, [dataDirOpt, corruptionOpt]);
  if (v === 'help') return io.stdout.write(USAGE), 0;
  const store = await openStore(v.dataDir as string);
  try {
    const report = await store.repair(v.corruptionId as string);
    io.stdout.write(JSON.stringify({ repair: store.lastRepair, recovery: report }) + '\n');
    return report.outcome === 'CorruptionDetected' ? 1 : 0;
  } catch (err) {
    if (err instanceof StoreError) throw new Error(`repair: ${err.message}`);
    throw err;
  } finally {
    await store.close();
  }
}
