import { describe, expect, it } from 'vitest';
import { main } from '../../../src/operator/main.ts';

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, env } };
}

describe('eventlog operator main (usage paths)', () => {
  it('--help prints usage and returns 0', async () => {
    const t = io();
    expect(await main(['--help'], t.io)).toBe(0);
    expect(t.out.join('')).toContain('usage: eventlog operator');
    expect(t.out.join('')).toContain('--poll-interval');
  });

  it('a bad value prints one line and returns 2', async () => {
    const t = io();
    expect(await main(['--workers', 'zero'], t.io)).toBe(2);
    expect(t.err).toHaveLength(1);
    expect(t.err[0]).toMatch(/^eventlog operator: --workers: .*\n$/);
  });

  it('an unknown flag is a usage error', async () => {
    const t = io();
    expect(await main(['--nope'], t.io)).toBe(2);
    expect(t.err[0]).toMatch(/^eventlog operator: /);
  });

  it('a missing kubeconfig file is a usage error naming the problem', async () => {
    const t = io();
    expect(await main(['--kubeconfig', '/nonexistent/kubeconfig'], t.io)).toBe(2);
    expect(t.err[0]).toMatch(/^eventlog operator: cannot load a kubeconfig: /);
  });
});
