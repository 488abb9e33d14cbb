import { describe, expect, it } from 'vitest';
import { ConfigError, parseOperatorConfig, usage } from '../../../src/operator/config.ts';

describe('operator config', () => {
  it('has sensible defaults', () => {
    expect(parseOperatorConfig([], {})).toEqual({
      namespaces: [],
      workers: 2,
      leaderElect: true,
      leaderElectionNamespace: 'eventlog-system',
      leaderElectionId: 'eventlog-operator',
      operatorNamespace: 'eventlog-system',
      metricsAddr: { host: '0.0.0.0', port: 8080 },
      probeAddr: { host: '0.0.0.0', port: 8081 },
      defaultImage: 'eventlog:dev',
      pollInterval: 10_000,
      statusCounterInterval: 30_000,
      shutdownTimeout: 20_000,
      storageWarningPercent: 85,
      maxConcurrentRollouts: 1,
      logLevel: 'info',
    });
  });

  it('takes flags over environment over defaults', () => {
    const config = parseOperatorConfig(['--workers', '4', '--namespaces', 'a, b'], { EVENTLOG_WORKERS: '8', POD_NAMESPACE: 'ops', EVENTLOG_POLL_INTERVAL: '2m', EVENTLOG_PROBE_ADDR: '127.0.0.1:0' });
    expect(config).toMatchObject({ workers: 4, namespaces: ['a', 'b'], leaderElectionNamespace: 'ops', operatorNamespace: 'ops', pollInterval: 120_000, probeAddr: { host: '127.0.0.1', port: 0 } });
  });

  it.each([
    [['--workers', '0'], {}, /^--workers: .*got "0"$/],
    [['--max-concurrent-rollouts', '0'], {}, /^--max-concurrent-rollouts: expected a whole number >= 1, got "0"$/],
    [[], { EVENTLOG_MAX_CONCURRENT_ROLLOUTS: '1.5' }, /^EVENTLOG_MAX_CONCURRENT_ROLLOUTS: expected a whole number >= 1, got "1.5"$/],
    [['--leader-elect', 'yes'], {}, /^--leader-elect: .*got "yes"$/],
    [[], { EVENTLOG_POLL_INTERVAL: 'soon' }, /^EVENTLOG_POLL_INTERVAL: expected a duration like 500ms, 10s or 2m, got "soon"$/],
    [['--metrics-addr', 'localhost'], {}, /^--metrics-addr: expected HOST:PORT/],
    [['--namespaces', 'Bad_NS'], {}, /^--namespaces: namespace names are DNS labels/],
    [[], { POD_NAMESPACE: 'Ops' }, /^POD_NAMESPACE: namespace names are DNS labels, got "Ops"$/],
    [['--no-such-flag'], {}, /no-such-flag/],
  ] as const)('rejects %j %j with one line', (argv, env, message) => {
    let error: unknown;
    try {
      parseOperatorConfig([...argv], env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  it('--help returns nothing and the usage names every flag', () => {
    expect(parseOperatorConfig(['--help'], {})).toBeUndefined();
    expect(usage()).toContain('--leader-election-namespace');
    expect(usage()).toContain('EVENTLOG_DEFAULT_IMAGE');
  });
});
