/**
 * scripts/lib/heartbeat.sh, sourced by the three install scripts: stopping the heartbeat
 * must also stop its pending 30 s `sleep`, or `dir=$(install.sh)` waits for it.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const lib = resolve(import.meta.dirname, '../../../scripts/lib/heartbeat.sh');

describe('heartbeat.sh', () => {
  it('leaves nothing holding stdout open once stopped, and writes nothing to stdout', () => {
    const started = Date.now();
    const script = `set -euo pipefail; log() { printf '%s\\n' "$*" >&2; }; source ${JSON.stringify(lib)}; heartbeat_start "building"; sleep 0.2; heartbeat_stop; echo done`;
    // Command substitution, as the callers use it: returns only when every writer of the pipe is gone.
    const out = execFileSync('bash', ['-c', `out=$(bash -c ${JSON.stringify(script)}); printf '%s' "$out"`], { encoding: 'utf8' });
    expect(out).toBe('done');
    // The heartbeat's sleep lasts 30 s: an orphaned one would hold the substitution that long.
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('stopping without starting is a no-op', () => {
    const out = execFileSync('bash', ['-c', `set -euo pipefail; log() { :; }; source ${JSON.stringify(lib)}; heartbeat_stop; echo ok`], { encoding: 'utf8' });
    expect(out.trim()).toBe('ok');
  });
});
