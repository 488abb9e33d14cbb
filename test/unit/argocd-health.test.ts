/**
 * The Argo CD health check for EventLog (deploy/gitops/argocd/eventlog-health.lua),
 * run in a real Lua 5.1 interpreter against the JSON fixtures in
 * test/unit/gitops/fixtures/ (one per case), and the argocd-cm patch checked to
 * carry exactly that script.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ARGOCD_CM_PATCH, HEALTH_KEY, HEALTH_LUA, runHealthCheck, toLuaLiteral } from '../support/argocd-lua.ts';

const fixturesDir = fileURLToPath(new URL('./gitops/fixtures/', import.meta.url));
const fixtures = readdirSync(fixturesDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({ name: f.replace(/\.json$/, ''), ...(JSON.parse(readFileSync(join(fixturesDir, f), 'utf8')) as { expect: { status: string; message: string }; object: unknown }) }));

describe('Argo CD health check for EventLog (lua5.1)', () => {
  it('has a fixture for every health status it can return', () => {
    expect(new Set(fixtures.map((f) => f.expect.status))).toEqual(new Set(['Healthy', 'Progressing', 'Degraded', 'Suspended']));
  });

  it.each(fixtures)('$name -> $expect.status', async ({ object, expect: want }) => {
    expect(await runHealthCheck(object)).toEqual(want);
  });

  it('the argocd-cm patch carries the script verbatim under the resource.customizations.health key', () => {
    const cm = parse(readFileSync(ARGOCD_CM_PATCH, 'utf8')) as { kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> };
    expect(cm.kind).toBe('ConfigMap');
    expect(cm.metadata).toEqual({ name: 'argocd-cm', namespace: 'argocd' });
    expect(Object.keys(cm.data)).toEqual([HEALTH_KEY]);
    expect(cm.data[HEALTH_KEY], 'argocd-cm-patch.yaml differs from eventlog-health.lua: copy the script into the patch').toBe(readFileSync(HEALTH_LUA, 'utf8'));
  });

  it('the harness really runs the script: a different script gives a different answer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lua-health-'));
    try {
      const script = join(dir, 'other.lua');
      await writeFile(script, 'local hs = {}\nhs.status = "Degraded"\nhs.message = obj.metadata.name .. "/" .. tostring(obj.metadata.generation)\nreturn hs\n');
      expect(await runHealthCheck({ metadata: { name: 'x', generation: 7 } }, script)).toEqual({ status: 'Degraded', message: 'x/7' });
      // Argo CD offers no io/os to health scripts; neither does the harness.
      await writeFile(script, 'os.exit(0)\n');
      await expect(runHealthCheck({}, script)).rejects.toThrow(/os/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('converts JSON to Lua table literals (nulls dropped, strings escaped byte-wise)', () => {
    expect(toLuaLiteral({ a: [1, true, null, 'x"\\\n'], b: null })).toBe('{["a"] = {1, true, nil, "x\\"\\\\\\10"}}');
    expect(toLuaLiteral('é')).toBe('"\\195\\169"');
  });
});
