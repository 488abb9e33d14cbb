/**
 * Server configuration: flags win over environment variables, every value validated by
 * zod. A bad value produces one line naming the flag (or variable), what was expected
 * and what was given.
 */
import { z } from 'zod';
import { DURABILITY_MODES } from '../storage/store.ts';
import { TOKEN_PATTERN } from './auth.ts';
import { parseByteSize, parseDurationSeconds, parseReserve } from './units.ts';

const reserveSpecSchema = z.union([
  z.strictObject({ bytes: z.number().int().min(0) }),
  z.strictObject({ percent: z.number().min(0).max(50) }),
  z.strictObject({ default: z.literal(true) }),
]);

export const serverConfigSchema = z.object({
  dataDir: z.string().min(1),
  host: z.string().min(1).default('0.0.0.0'),
  /** 0 picks a free port (programmatic use); the CLI requires 1..65535. */
  port: z.number().int().min(0).max(65535).default(8080),
  durability: z.enum(DURABILITY_MODES).default('fsync'),
  fsyncIntervalMs: z.number().int().min(1).max(60_000).default(10),
  maxBodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Unset: min(64 MiB, filesystem/16, retentionMaxBytes/8), at least 256 KiB (storage/space.ts). */
  segmentBytes: z.number().int().min(4096).max(1024 * 1024 * 1024).optional(),
  /** Free-space reserve; default 2% of the filesystem, 1 MiB..1 GiB; never below maxBodyBytes. */
  storageReserve: reserveSpecSchema.default({ default: true }),
  /** Retention by age, in seconds (the flag takes a duration; unset: no age limit). */
  retentionMaxAge: z.number().int().min(1).optional(),
  /** Retention by segment bytes (unset: no size limit). */
  retentionMaxBytes: z.number().int().min(1).optional(),
  terminationMessagePath: z.string().min(1).default('/dev/termination-log'),
  /** Bearer token the data API requires (auth.ts); unset: the API is open. */
  token: z.string().regex(TOKEN_PATTERN).optional(),
  /** File holding the token (a mounted Secret); read once at start-up. Exclusive with `token`. */
  tokenFile: z.string().min(1).optional(),
  /** Period of the heartbeat comment on idle event streams (GET /events/stream). */
  streamHeartbeatMs: z.number().int().min(10).max(300_000).default(15_000),
});

export type ServerConfig = z.infer<typeof serverConfigSchema>;
export type ServerConfigInput = z.input<typeof serverConfigSchema>;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

interface OptionSpec {
  flag: string;
  env: string | undefined;
  key: string;
  expected: string;
  schema: z.ZodType;
  help: string;
}

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const nonEmpty = z.string().min(1);

/** A string parsed by `parse`; anything it refuses fails the flag with its `expected` text. */
function parsed<T>(parse: (s: string) => T | undefined) {
  return z.string().transform((v, ctx) => {
    const r = parse(v);
    if (r === undefined) {
      ctx.addIssue({ code: 'custom', message: 'invalid' });
      return z.NEVER;
    }
    return r;
  });
}
const positive = (n: number | undefined) => (n === undefined || n < 1 ? undefined : n);

export const SERVE_OPTIONS: OptionSpec[] = [
  { flag: '--data-dir', env: 'EVENTLOG_DATA_DIR', key: 'dataDir', expected: 'a directory path', schema: nonEmpty, help: 'directory holding the log (required)' },
  { flag: '--host', env: 'EVENTLOG_HOST', key: 'host', expected: 'a host name or IP address', schema: z.string().regex(/^[A-Za-z0-9.:\-[\]]+$/), help: 'address to listen on (default 0.0.0.0)' },
  { flag: '--port', env: 'EVENTLOG_PORT', key: 'port', expected: 'an integer between 1 and 65535', schema: int(1, 65535), help: 'TCP port (default 8080)' },
  { flag: '--durability', env: 'EVENTLOG_DURABILITY', key: 'durability', expected: 'one of fsync, interval, none', schema: z.enum(DURABILITY_MODES), help: 'fsync (default) | interval | none' },
  { flag: '--fsync-interval-ms', env: 'EVENTLOG_FSYNC_INTERVAL_MS', key: 'fsyncIntervalMs', expected: 'an integer between 1 and 60000', schema: int(1, 60_000), help: 'interval mode: fdatasync period (default 10)' },
  { flag: '--max-body-bytes', env: 'EVENTLOG_MAX_BODY_BYTES', key: 'maxBodyBytes', expected: 'an integer between 1024 and 67108864', schema: int(1024, 64 * 1024 * 1024), help: 'largest request body (default 1048576)' },
  { flag: '--segment-bytes', env: 'EVENTLOG_SEGMENT_BYTES', key: 'segmentBytes', expected: 'an integer between 4096 and 1073741824', schema: int(4096, 1024 * 1024 * 1024), help: 'roll segments at this size (default min(64 MiB, filesystem/16, retention max bytes/8), at least 256 KiB)' },
  { flag: '--storage-reserve', env: 'EVENTLOG_STORAGE_RESERVE', key: 'storageReserve', expected: 'bytes, a quantity such as 8Mi, or a percentage of the filesystem up to 50% such as 2%', schema: parsed(parseReserve), help: 'refuse appends (507) that would leave less free (default 2% of the filesystem, 1Mi..1Gi, at least --max-body-bytes)' },
  { flag: '--retention-max-age', env: 'EVENTLOG_RETENTION_MAX_AGE', key: 'retentionMaxAge', expected: 'a duration of whole seconds such as 168h, 30m, 90s or 7d', schema: parsed(parseDurationSeconds), help: 'delete sealed segments whose newest event is older (default: keep)' },
  { flag: '--retention-max-bytes', env: 'EVENTLOG_RETENTION_MAX_BYTES', key: 'retentionMaxBytes', expected: 'a positive number of bytes or a quantity such as 512Mi', schema: parsed((v) => positive(parseByteSize(v))), help: 'delete the oldest sealed segments while the segments take more (default: keep)' },
  { flag: '--termination-message-path', env: 'EVENTLOG_TERMINATION_MESSAGE_PATH', key: 'terminationMessagePath', expected: 'a file path', schema: nonEmpty, help: 'where corruption/failure reports go (default /dev/termination-log)' },
  { flag: '--auth-token', env: 'EVENTLOG_AUTH_TOKEN', key: 'token', expected: 'a token (visible ASCII without spaces, at most 4096 characters)', schema: z.string().regex(TOKEN_PATTERN), help: 'require "Authorization: Bearer <token>" on everything but /healthz, /readyz, /metrics' },
  { flag: '--auth-token-file', env: 'EVENTLOG_AUTH_TOKEN_FILE', key: 'tokenFile', expected: 'a file path', schema: nonEmpty, help: 'the same, with the token read from this file (a mounted Secret)' },
  { flag: '--stream-heartbeat-ms', env: 'EVENTLOG_STREAM_HEARTBEAT_MS', key: 'streamHeartbeatMs', expected: 'an integer between 10 and 300000', schema: int(10, 300_000), help: 'heartbeat comment period of event streams, GET /events/stream (default 15000)' },
];

export interface ParsedArgs {
  values: Record<string, unknown>;
  help: boolean;
}

/**
 * Parses `--flag value` / `--flag=value` against `specs`, then fills the rest from `env`.
 * Throws UsageError with a one-line message.
 */
export function parseArgs(argv: string[], specs: OptionSpec[], env: NodeJS.ProcessEnv = process.env): ParsedArgs {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const raw = new Map<OptionSpec, { value: string; source: string }>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (see --help)`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const spec = byFlag.get(name);
    if (spec === undefined) throw new UsageError(`unknown flag ${name} (see --help)`);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`${name}: expected ${spec.expected}, got nothing`);
      value = next;
      i++;
    }
    raw.set(spec, { value, source: name });
  }
  for (const spec of specs) {
    if (raw.has(spec) || spec.env === undefined) continue;
    const v = env[spec.env];
    if (v !== undefined && v !== '') raw.set(spec, { value: v, source: spec.env });
  }
  const values: Record<string, unknown> = {};
  for (const [spec, { value, source }] of raw) {
    const r = spec.schema.safeParse(value);
    if (!r.success) throw new UsageError(`${source}: expected ${spec.expected}, got ${JSON.stringify(value)}`);
    values[spec.key] = r.data;
  }
  return { values, help };
}

export function requireOption(values: Record<string, unknown>, spec: OptionSpec): void {
  if (values[spec.key] === undefined) {
    throw new UsageError(`${spec.flag}: required${spec.env ? ` (or set ${spec.env})` : ''}`);
  }
}

export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): { config: ServerConfig; help: boolean } {
  const { values, help } = parseArgs(argv, SERVE_OPTIONS, env);
  if (help) return { config: undefined as unknown as ServerConfig, help };
  requireOption(values, SERVE_OPTIONS[0]!);
  if (values.token !== undefined && values.tokenFile !== undefined) {
    throw new UsageError('--auth-token and --auth-token-file (EVENTLOG_AUTH_TOKEN, EVENTLOG_AUTH_TOKEN_FILE) are mutually exclusive: set one');
  }
  const r = serverConfigSchema.safeParse(values);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new UsageError(`${issue.path.join('.')}: ${issue.message}`);
  }
  return { config: r.data, help };
}

export function optionHelp(specs: OptionSpec[]): string {
  return specs
    .map((s) => `  ${(s.flag + ' ' + s.key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()).padEnd(44)} ${s.help}${s.env ? ` [env ${s.env}]` : ''}`)
    .join('\n');
}
