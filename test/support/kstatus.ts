/**
 * kstatus verdicts from the real library (sigs.k8s.io/cli-utils/pkg/kstatus/status, the
 * rules Flux's `wait: true` and the cli-utils applier use), through the Go harness
 * test/tools/cmd/kstatus. Works on fixtures and on live objects fetched from the API.
 */
import { jsonLines, runTool, toolPath } from './go-tools.ts';

export type KStatus = 'Current' | 'InProgress' | 'Failed' | 'Terminating' | 'Unknown' | 'NotFound';

export interface KStatusResult {
  kind?: string;
  namespace?: string;
  name?: string;
  status: KStatus;
  message: string;
  conditions: { type: string; status: string; reason?: string; message?: string }[];
}

/** Builds the harness if needed (call from beforeAll with TOOL_BUILD_TIMEOUT_MS). */
export function ensureKStatus(): void {
  toolPath('kstatus');
}

/** kstatus of each object, in order (one harness process for all). */
export async function kstatusOfAll(objects: unknown[]): Promise<KStatusResult[]> {
  if (objects.length === 0) return [];
  const r = await runTool('kstatus', [], JSON.stringify(objects));
  const out = jsonLines<KStatusResult & { error?: string }>(r.stdout);
  const failed = out.find((o) => o.error !== undefined);
  if (r.code !== 0 || failed) throw new Error(`kstatus failed (exit ${r.code}): ${failed?.error ?? r.stderr}`);
  if (out.length !== objects.length) throw new Error(`kstatus answered ${out.length} verdicts for ${objects.length} objects`);
  return out;
}

/** kstatus of one object. */
export async function kstatusOf(object: unknown): Promise<KStatusResult> {
  return (await kstatusOfAll([object]))[0]!;
}
