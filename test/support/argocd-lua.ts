/**
 * Argo CD's resource customizations for EventLog (health check and resource actions,
 * deploy/gitops/argocd/resource_customizations/eventlog.dev/EventLog/), run under
 * gopher-lua the way Argo CD runs them, through the Go harness test/tools/cmd/argocd-lua.
 *
 * By default scripts run as Argo CD runs scripts from argocd-cm: base, table and
 * package libraries only (no string, math, io, os). `openLibs: true` runs them as Argo
 * CD runs built-in customizations (standard libraries opened).
 */
import { fileURLToPath } from 'node:url';
import { jsonLines, runTool, toolPath } from './go-tools.ts';

export const CUSTOMIZATION_DIR = fileURLToPath(new URL('../../deploy/gitops/argocd/resource_customizations/eventlog.dev/EventLog/', import.meta.url));
export const HEALTH_LUA = `${CUSTOMIZATION_DIR}health.lua`;
export const DISCOVERY_LUA = `${CUSTOMIZATION_DIR}actions/discovery.lua`;
export const actionLua = (name: string) => `${CUSTOMIZATION_DIR}actions/${name}/action.lua`;
export const ACTIONS = ['approve-repair', 'resume', 'suspend'] as const;
export type ActionName = (typeof ACTIONS)[number];

export const ARGOCD_CM_PATCH = fileURLToPath(new URL('../../deploy/gitops/argocd/argocd-cm-patch.yaml', import.meta.url));
export const HEALTH_KEY = 'resource.customizations.health.eventlog.dev_EventLog';
export const ACTIONS_KEY = 'resource.customizations.actions.eventlog.dev_EventLog';

export interface HealthStatus {
  status: string;
  message: string;
}

export interface ResourceAction {
  name: string;
  disabled: boolean;
  iconClass?: string;
  displayName?: string;
}

export interface ActionResult {
  /** The object the action returned (what Argo CD diffs against the live one). */
  object: Record<string, any>;
  /** The JSON merge patch Argo CD sends to the API server. */
  mergePatch: Record<string, any>;
}

export interface Options {
  openLibs?: boolean;
}

/** Builds the harness if needed (call from beforeAll with TOOL_BUILD_TIMEOUT_MS). */
export function ensureArgoLua(): void {
  toolPath('argocd-lua');
}

/** One harness process for all objects; rejects naming the first script error. */
async function runAll<T>(mode: string, script: string, objs: unknown[], opts: Options): Promise<T[]> {
  const r = await runTool('argocd-lua', [mode, ...(opts.openLibs ? ['--open-libs'] : []), script], JSON.stringify(objs));
  const out = jsonLines<T & { error?: string }>(r.stdout);
  const failed = out.find((o) => o.error !== undefined);
  if (failed) throw new Error(`argocd-lua ${mode} ${script}: ${failed.error}`);
  if (r.code !== 0 || out.length !== objs.length) throw new Error(`argocd-lua ${mode} ${script} exited ${r.code} with ${out.length} answers for ${objs.length} objects: ${r.stderr}`);
  return out;
}

async function run<T>(mode: string, script: string, obj: unknown, opts: Options): Promise<T> {
  return (await runAll<T>(mode, script, [obj], opts))[0]!;
}

/** The health of each object, in order (one harness process). */
export function runHealthChecks(objs: unknown[], script: string = HEALTH_LUA, opts: Options = {}): Promise<HealthStatus[]> {
  return runAll<HealthStatus>('health', script, objs, opts);
}

/** The health Argo CD shows for `obj` (health.lua unless another script is given). */
export function runHealthCheck(obj: unknown, script: string = HEALTH_LUA, opts: Options = {}): Promise<HealthStatus> {
  return run<HealthStatus>('health', script, obj, opts);
}

/** The actions Argo CD offers for `obj`, sorted by name. */
export async function runDiscovery(obj: unknown, opts: Options = {}): Promise<ResourceAction[]> {
  return (await run<{ actions: ResourceAction[] }>('discovery', DISCOVERY_LUA, obj, opts)).actions;
}

/** Runs an action on `obj`: the new object and the merge patch Argo CD would send. */
export function runAction(name: ActionName, obj: unknown, opts: Options = {}): Promise<ActionResult> {
  return run<ActionResult>('action', actionLua(name), obj, opts);
}

export interface CaseResult {
  case: string;
  ok: boolean;
  got?: unknown;
  want?: unknown;
  error?: string;
}

/** Runs health_test.yaml and actions/action_test.yaml of a customization directory (Argo CD's format). */
export async function runCustomizationTests(dir: string = CUSTOMIZATION_DIR, opts: Options = {}): Promise<{ code: number; cases: CaseResult[]; summary: { passed: number; failed: number } }> {
  const r = await runTool('argocd-lua', ['test', ...(opts.openLibs ? ['--open-libs'] : []), dir]);
  const lines = jsonLines<CaseResult & { summary?: boolean; passed?: number; failed?: number }>(r.stdout);
  const summary = lines.find((l) => l.summary);
  if (!summary) throw new Error(`argocd-lua test ${dir} printed no summary (exit ${r.code}): ${r.stderr}`);
  return { code: r.code, cases: lines.filter((l) => !l.summary), summary: { passed: summary.passed!, failed: summary.failed! } };
}
