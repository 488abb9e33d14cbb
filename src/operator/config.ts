/**
 * Operator configuration: flags win over environment variables, zod validates both,
 * and a bad value becomes one line naming the flag (or variable) and what is wrong.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { DEFAULT_OPERATOR_NAMESPACE } from '../decisions/desired.ts';

const duration = z
  .string()
  .regex(/^\d+(ms|s|m)$/, 'expected a duration like 500ms, 10s or 2m')
  .transform((s) => {
    const n = Number.parseInt(s, 10);
    return s.endsWith('ms') ? n : s.endsWith('m') ? n * 60_000 : n * 1000;
  });

const address = z
  .string()
  .regex(/^([0-9a-zA-Z.\-]*|\[[0-9a-fA-F:]+\]):\d{1,5}$/, 'expected HOST:PORT or :PORT (":0" disables)')
  .transform((s) => {
    const i = s.lastIndexOf(':');
    const host = s.slice(0, i).replace(/^\[|\]$/g, '');
    return { host: host === '' ? '0.0.0.0' : host, port: Number(s.slice(i + 1)) };
  })
  .refine((a) => a.port <= 65535, 'port must be 0..65535');

const bool = z.enum(['true', 'false']).transform((s) => s === 'true');

export const OperatorConfigSchema = z.object({
  /** Namespaces to watch; empty: all namespaces. */
  namespaces: z
    .string()
    .transform((s) => s.split(',').map((n) => n.trim()).filter((n) => n.length > 0))
    .pipe(z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'namespace names are DNS labels'))),
  workers: z.coerce.number().int().min(1).max(64),
  leaderElect: bool,
  leaderElectionNamespace: z.string().min(1),
  leaderElectionId: z.string().min(1),
  /** Namespace the operator runs in; every log's NetworkPolicy admits it. */
  operatorNamespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'namespace names are DNS labels'),
  metricsAddr: address,
  probeAddr: address,
  defaultImage: z.string().min(1),
  pollInterval: duration,
  statusCounterInterval: duration,
  shutdownTimeout: duration,
  /** EventLogs whose pod may be rolling to a new template at once, cluster-wide (src/decisions/rollout.ts). */
  maxConcurrentRollouts: z
    .string()
    .regex(/^\s*[0-9]+\s*$/, 'expected a whole number >= 1')
    .transform((s) => Number.parseInt(s, 10))
    .refine((n) => n >= 1, 'expected a whole number >= 1'),
  /** Used percent at which status.storage.nearlyFull turns on (a Warning Event, a gauge). */
  storageWarningPercent: z.coerce.number().int().min(1).max(100),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  kubeconfig: z.string().optional(),
});

export type OperatorConfig = z.infer<typeof OperatorConfigSchema>;

type Field = { flag: string; env: string; default?: string; help: string };

/** Every setting, its flag, its environment variable and its default. */
export const FIELDS: Record<keyof OperatorConfig, Field> = {
  namespaces: { flag: 'namespaces', env: 'EVENTLOG_NAMESPACES', default: '', help: 'comma-separated namespaces to watch (default: all)' },
  workers: { flag: 'workers', env: 'EVENTLOG_WORKERS', default: '2', help: 'parallel reconciles (never two for one EventLog)' },
  leaderElect: { flag: 'leader-elect', env: 'EVENTLOG_LEADER_ELECT', default: 'true', help: 'true|false: only the Lease holder reconciles' },
  leaderElectionNamespace: { flag: 'leader-election-namespace', env: 'POD_NAMESPACE', default: DEFAULT_OPERATOR_NAMESPACE, help: 'namespace of the leader-election Lease' },
  operatorNamespace: { flag: 'operator-namespace', env: 'POD_NAMESPACE', default: DEFAULT_OPERATOR_NAMESPACE, help: "the operator's own namespace: each log's NetworkPolicy admits it" },
  leaderElectionId: { flag: 'leader-election-id', env: 'EVENTLOG_LEADER_ELECTION_ID', default: 'eventlog-operator', help: 'name of the Lease' },
  metricsAddr: { flag: 'metrics-addr', env: 'EVENTLOG_METRICS_ADDR', default: ':8080', help: 'HOST:PORT for /metrics (":0": a free port)' },
  probeAddr: { flag: 'probe-addr', env: 'EVENTLOG_PROBE_ADDR', default: ':8081', help: 'HOST:PORT for /healthz and /readyz' },
  defaultImage: { flag: 'default-image', env: 'EVENTLOG_DEFAULT_IMAGE', default: 'eventlog:dev', help: 'log server image when spec.image is empty' },
  pollInterval: { flag: 'poll-interval', env: 'EVENTLOG_POLL_INTERVAL', default: '10s', help: "how often each log server's /status is polled" },
  statusCounterInterval: { flag: 'status-counter-interval', env: 'EVENTLOG_STATUS_COUNTER_INTERVAL', default: '30s', help: 'minimum time between status writes for log counters alone' },
  maxConcurrentRollouts: {
    flag: 'max-concurrent-rollouts',
    env: 'EVENTLOG_MAX_CONCURRENT_ROLLOUTS',
    default: '1',
    help: "EventLogs whose log pod may be replaced for a new template (image, operator version, spec) at once; the others wait, Reconciling=True/RolloutQueued",
  },
  storageWarningPercent: { flag: 'storage-warning-percent', env: 'EVENTLOG_STORAGE_WARNING_PERCENT', default: '85', help: "used percent of a log's volume that raises a StorageNearlyFull Warning (off again 5 points below)" },
  shutdownTimeout: { flag: 'shutdown-timeout', env: 'EVENTLOG_SHUTDOWN_TIMEOUT', default: '20s', help: 'how long SIGTERM waits for in-flight reconciles' },
  logLevel: { flag: 'log-level', env: 'LOG_LEVEL', default: 'info', help: 'trace|debug|info|warn|error' },
  kubeconfig: { flag: 'kubeconfig', env: 'KUBECONFIG', help: 'kubeconfig file (default: in-cluster, then ~/.kube/config)' },
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function usage(): string {
  const rows = Object.values(FIELDS).map((f) => `  --${f.flag.padEnd(26)} ${f.help}${f.default ? ` (default ${JSON.stringify(f.default)}; env ${f.env})` : ` (env ${f.env})`}`);
  return `usage: eventlog operator [flags]\n\nRuns the EventLog operator against the cluster of the kubeconfig (or in-cluster).\n\n${rows.join('\n')}\n  --help                       this text\n`;
}

/**
 * Flags (argv) over environment (env) over defaults. Throws ConfigError with one line;
 * returns undefined when `--help` was asked for.
 */
export function parseOperatorConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorConfig | undefined {
  const options = Object.fromEntries(Object.values(FIELDS).map((f) => [f.flag, { type: 'string' as const }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ConfigError((error as Error).message.split('\n')[0]!);
  }
  if (values.help) return undefined;
  const raw: Record<string, string | undefined> = {};
  const source: Record<string, string> = {};
  for (const [key, field] of Object.entries(FIELDS)) {
    const fromFlag = values[field.flag];
    if (typeof fromFlag === 'string') {
      raw[key] = fromFlag;
      source[key] = `--${field.flag}`;
    } else if (env[field.env] !== undefined && env[field.env] !== '') {
      raw[key] = env[field.env];
      source[key] = field.env;
    } else {
      raw[key] = field.default;
      source[key] = `--${field.flag}`;
    }
  }
  const parsed = OperatorConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]);
    throw new ConfigError(`${source[key] ?? key}: ${issue.message}, got ${JSON.stringify(raw[key])}`);
  }
  return parsed.data;
}
