// The plain client loads no package at all: only node: built-ins and its own files.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ENTRY = resolve(import.meta.dirname, '../../../src/client/index.ts');

describe('client dependencies', () => {
  it('importing eventlog-operator/client (and using it) resolves no npm package; @kubernetes/client-node only on fromEventLog', () => {
    const script = `
      import { registerHooks } from 'node:module';
      const seen = new Set();
      registerHooks({ resolve(spec, ctx, next) { seen.add(spec); return next(spec, ctx); } });
      const m = await import(${JSON.stringify(ENTRY)});
      const c = m.createClient({ url: 'http://127.0.0.1:1', retry: { attempts: 1 } });
      await c.append({ a: 1 }).catch(() => undefined);
      c.producer();
      const before = [...seen];
      await m.fromEventLog({ name: 'x', namespace: 'y', url: 'http://127.0.0.1:1' }).catch(() => undefined);
      process.stdout.write(JSON.stringify({ before, after: [...seen] }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: '/nonexistent' } });
    const { before, after } = JSON.parse(out) as { before: string[]; after: string[] };
    const packages = (list: string[]) => list.filter((s) => !s.startsWith('node:') && !s.startsWith('.') && !s.startsWith('/') && !s.startsWith('file:'));
    expect(before.length).toBeGreaterThan(3);
    expect(packages(before)).toEqual([]);
    expect(packages(after)).toContain('@kubernetes/client-node');
  });
});
