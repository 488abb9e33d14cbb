/**
 * The Argo CD customizations for EventLog
 * (deploy/gitops/argocd/resource_customizations/eventlog.dev/EventLog/: health.lua,
 * actions/discovery.lua, actions/{approve-repair,suspend,resume}/action.lua), run under
 * gopher-lua the way Argo CD runs them (test/tools/cmd/argocd-lua), against the test
 * files in Argo CD's own format (health_test.yaml, actions/action_test.yaml, testdata/),
 * and the argocd-cm patch checked to carry exactly those scripts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  ACTIONS,
  ACTIONS_KEY,
  ARGOCD_CM_PATCH,
  CUSTOMIZATION_DIR,
  DISCOVERY_LUA,
  HEALTH_KEY,
  HEALTH_LUA,
  actionLua,
  ensureArgoLua,
  runAction,
  runCustomizationTests,
  runDiscovery,
  runHealthCheck,
  type ActionName,
  type CaseResult,
  type ResourceAction,
} from '../support/argocd-lua.ts';
import { TOOL_BUILD_TIMEOUT_MS } from '../support/go-tools.ts';

const dir = CUSTOMIZATION_DIR;
const yamlFile = <T>(path: string) => parse(readFileSync(join(dir, path), 'utf8')) as T;
const healthTests = yamlFile<{ tests: { inputPath: string; healthStatus: { status: string; message: string } }[] }>('health_test.yaml').tests;
const actionTests = yamlFile<{
  discoveryTests: { inputPath: string; result: ResourceAction[] }[];
  actionTests: { action: ActionName; inputPath: string; expectedOutputPath: string }[];
}>('actions/action_test.yaml');
const object = (path: string) => yamlFile<Record<string, any>>(path);

beforeAll(() => ensureArgoLua(), TOOL_BUILD_TIMEOUT_MS);

describe('health.lua under gopher-lua (argocd-cm: no standard libraries)', () => {
  it('has a test for every health status it can return', () => {
    expect(new Set(healthTests.map((t) => t.healthStatus.status))).toEqual(new Set(['Healthy', 'Progressing', 'Degraded', 'Suspended']));
  });

  it.each(healthTests)('$inputPath -> $healthStatus.status', async ({ inputPath, healthStatus }) => {
    expect(await runHealthCheck(object(inputPath))).toEqual(healthStatus);
  });

  it('every testdata file is an input of some test', () => {
    const used = new Set(healthTests.map((t) => t.inputPath));
    expect(readdirSync(join(dir, 'testdata')).map((f) => `testdata/${f}`).filter((f) => !used.has(f))).toEqual([]);
  });
});

describe('resource actions under gopher-lua', () => {
  it('discovery offers exactly the actions that have an action.lua', () => {
    const dirs = readdirSync(join(dir, 'actions'), { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== 'testdata').map((d) => d.name);
    expect(dirs.sort()).toEqual([...ACTIONS]);
    for (const t of actionTests.discoveryTests) expect(t.result.map((a) => a.name).sort(), t.inputPath).toEqual([...ACTIONS]);
  });

  it.each(actionTests.discoveryTests)('discovery: $inputPath', async ({ inputPath, result }) => {
    expect(await runDiscovery(object(`actions/${inputPath}`))).toEqual([...result].sort((a, b) => a.name.localeCompare(b.name)));
  });

  it.each(actionTests.actionTests)('$action: $inputPath -> $expectedOutputPath', async ({ action, inputPath, expectedOutputPath }) => {
    const r = await runAction(action, object(`actions/${inputPath}`));
    expect(r.object).toEqual(object(`actions/${expectedOutputPath}`));
  });

  it('each action changes only its one field: the merge patch Argo CD sends', async () => {
    const corrupt = object('actions/testdata/corrupt.yaml');
    expect((await runAction('approve-repair', corrupt)).mergePatch).toEqual({ metadata: { annotations: { 'eventlog.dev/approve-repair': 'c-1f2e' } } });
    expect((await runAction('suspend', corrupt)).mergePatch).toEqual({ spec: { suspend: true } });
    expect((await runAction('resume', object('actions/testdata/suspended.yaml'))).mergePatch).toEqual({ spec: { suspend: false } });
    // The empty map in spec.podTemplate.labels stays a map (Lua turns {} into []).
    expect((await runAction('suspend', corrupt)).object.spec.podTemplate).toEqual({ labels: {} });
  });

  it('approve-repair refuses to run when there is no corruption (no empty or stale approval is written)', async () => {
    await expect(runAction('approve-repair', object('actions/testdata/running.yaml'))).rejects.toThrow(/status\.recovery\.corruption\.id is empty/);
    const emptyId = object('actions/testdata/corrupt.yaml');
    emptyId.status.recovery.corruption.id = '';
    await expect(runAction('approve-repair', emptyId)).rejects.toThrow(/corruption\.id is empty/);
    expect((await runDiscovery(emptyId)).find((a) => a.name === 'approve-repair')).toEqual({ name: 'approve-repair', disabled: true, iconClass: 'fa fa-fw fa-wrench' });
  });

  it('every actions/testdata file is used by some test', () => {
    const used = new Set([...actionTests.discoveryTests.map((t) => t.inputPath), ...actionTests.actionTests.flatMap((t) => [t.inputPath, t.expectedOutputPath])]);
    expect(readdirSync(join(dir, 'actions/testdata')).map((f) => `testdata/${f}`).filter((f) => !used.has(f))).toEqual([]);
  });
});

describe("Argo CD's own test format (argocd-lua test: health_test.yaml and action_test.yaml, strictly decoded)", () => {
  const expectedCases = [
    ...healthTests.map((t) => `health/${t.inputPath}`),
    ...actionTests.discoveryTests.map((t) => `discovery/${t.inputPath}`),
    ...actionTests.actionTests.map((t) => `action/${t.action}/${t.inputPath}`),
  ].sort();
  const failures = (cases: CaseResult[]) => cases.filter((c) => !c.ok).map((c) => `${c.case}: ${c.error ?? `got ${JSON.stringify(c.got)}, want ${JSON.stringify(c.want)}`}`);

  it.each([
    ['as from argocd-cm (no standard libraries)', false],
    ['as a built-in customization (standard libraries open)', true],
  ])('every case passes %s', async (_name, openLibs) => {
    const r = await runCustomizationTests(dir, { openLibs });
    expect(failures(r.cases)).toEqual([]);
    expect(r.cases.map((c) => c.case).sort()).toEqual(expectedCases);
    expect(r).toMatchObject({ code: 0, summary: { passed: expectedCases.length, failed: 0 } });
  });

  it('a wrong expectation or a misspelt key fails', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'argocd-custom-'));
    try {
      await writeFile(join(tmp, 'health.lua'), readFileSync(HEALTH_LUA));
      await writeFile(join(tmp, 'in.yaml'), readFileSync(join(dir, 'testdata/healthy.yaml')));
      await writeFile(join(tmp, 'health_test.yaml'), 'tests:\n  - inputPath: in.yaml\n    healthStatus: {status: Degraded, message: nope}\n');
      const wrong = await runCustomizationTests(tmp);
      expect(wrong).toMatchObject({ code: 1, summary: { passed: 0, failed: 1 } });
      expect(wrong.cases[0]).toMatchObject({ case: 'health/in.yaml', ok: false, got: { status: 'Healthy' } });
      await writeFile(join(tmp, 'health_test.yaml'), 'tests:\n  - inputPath: in.yaml\n    expectedHealth: {status: Healthy}\n');
      const misspelt = await runCustomizationTests(tmp);
      expect(misspelt.code).toBe(1);
      expect(misspelt.cases[0]?.error).toMatch(/unknown field "expectedHealth"/);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe('the harness runs scripts the way Argo CD does', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'argocd-lua-'));
    return () => rm(tmp, { recursive: true, force: true });
  });
  const script = async (name: string, text: string) => {
    const path = join(tmp, name);
    await writeFile(path, text);
    return path;
  };
  const evl = { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'x', generation: 7 } };

  it('a different script gives a different answer', async () => {
    const other = await script('other.lua', 'local hs = {}\nhs.status = "Degraded"\nhs.message = obj.metadata.name .. "/" .. tostring(obj.metadata.generation)\nreturn hs\n');
    expect(await runHealthCheck(evl, other)).toEqual({ status: 'Degraded', message: 'x/7' });
  });

  it('no string, math, io or full os library for argocd-cm scripts; string with the standard libraries', async () => {
    const usesString = await script('string.lua', 'return { status = "Healthy", message = string.upper(obj.metadata.name) }\n');
    await expect(runHealthCheck(evl, usesString)).rejects.toThrow(/attempt to index a non-table object\(nil\) with key 'upper'/);
    expect(await runHealthCheck(evl, usesString, { openLibs: true })).toEqual({ status: 'Healthy', message: 'X' });
    const usesIo = await script('io.lua', 'io.write("x")\nreturn { status = "Healthy" }\n');
    await expect(runHealthCheck(evl, usesIo)).rejects.toThrow(/with key 'write'/);
    // require("os") gives Argo CD's safe os: time and date, no exit.
    const exits = await script('exit.lua', 'local os = require("os")\nlocal t = os.time()\nos.exit(0)\n');
    await expect(runHealthCheck(evl, exits)).rejects.toThrow(/attempt to call a non-function object/);
  });

  it('an unknown health status becomes Unknown; a non-table return and a runaway script fail', async () => {
    expect(await runHealthCheck(evl, await script('bad.lua', 'return { status = "Fine", message = "?" }\n'))).toEqual({ status: 'Unknown', message: 'Lua returned an invalid health status' });
    await expect(runHealthCheck(evl, await script('str.lua', 'return "Healthy"\n'))).rejects.toThrow(/expect table output from Lua script, not string/);
    await expect(runHealthCheck(evl, await script('loop.lua', 'while true do end\n'))).rejects.toThrow(/deadline/);
  });

  it('the scripts in the repo need no standard library (they also run with them)', async () => {
    for (const path of [HEALTH_LUA, DISCOVERY_LUA, ...ACTIONS.map(actionLua)]) expect(readFileSync(path, 'utf8'), path).not.toMatch(/\b(string|math|io|os)\./);
  });
});

describe('the argocd-cm patch', () => {
  const cm = parse(readFileSync(ARGOCD_CM_PATCH, 'utf8')) as { kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> };
  const stale = 'argocd-cm-patch.yaml differs from resource_customizations/eventlog.dev/EventLog/: copy the script into the patch';

  it('is a patch of argocd-cm with the health check and the actions', () => {
    expect(cm.kind).toBe('ConfigMap');
    expect(cm.metadata).toEqual({ name: 'argocd-cm', namespace: 'argocd' });
    expect(Object.keys(cm.data).sort()).toEqual([ACTIONS_KEY, HEALTH_KEY]);
  });

  it('carries health.lua verbatim', () => {
    expect(cm.data[HEALTH_KEY], stale).toBe(readFileSync(HEALTH_LUA, 'utf8'));
  });

  it('carries discovery.lua and every action.lua verbatim, in the format Argo CD reads', () => {
    const actions = parse(cm.data[ACTIONS_KEY]!) as { 'discovery.lua': string; definitions: { name: string; 'action.lua': string }[] };
    expect(Object.keys(actions).sort()).toEqual(['definitions', 'discovery.lua']);
    expect(actions['discovery.lua'], stale).toBe(readFileSync(DISCOVERY_LUA, 'utf8'));
    expect(actions.definitions.map((d) => d.name).sort()).toEqual([...ACTIONS]);
    for (const d of actions.definitions) {
      expect(Object.keys(d).sort()).toEqual(['action.lua', 'name']);
      expect(d['action.lua'], `${stale} (${d.name})`).toBe(readFileSync(actionLua(d.name), 'utf8'));
    }
  });
});
