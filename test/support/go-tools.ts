/**
 * The Go-built test tools (test/tools/): the real kstatus library, Argo CD's Lua VM set-up
 * and Prometheus' promtool with rule-metrics (its PromQL parser). `toolPath(name)` runs test/tools/install.sh once per process:
 * a warm cache answers in milliseconds; a cold one builds the tool (progress lines on
 * stderr; promtool takes minutes), so call it from a `beforeAll` with a long timeout.
 * There is no fallback: a tool that cannot be built fails the test that needs it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type GoTool = 'kstatus' | 'argocd-lua' | 'promtool' | 'rule-metrics';

const INSTALL = fileURLToPath(new URL('../tools/install.sh', import.meta.url));
/** Long enough for a cold promtool build on 2 cores. */
export const TOOL_BUILD_TIMEOUT_MS = 20 * 60_000;

const paths = new Map<GoTool, string>();

/** Absolute path of the tool's binary, built if needed (synchronous, memoised). */
export function toolPath(name: GoTool): string {
  let path = paths.get(name);
  if (path === undefined) {
    let out: string;
    try {
      out = execFileSync('bash', [INSTALL, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: TOOL_BUILD_TIMEOUT_MS });
    } catch (error) {
      throw new Error(`test/tools/install.sh ${name} failed (see its output above): ${(error as Error).message}`, { cause: error });
    }
    path = out.trim().split('\n').at(-1);
    if (!path) throw new Error(`test/tools/install.sh ${name} printed no binary path`);
    paths.set(name, path);
  }
  return path;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool with `input` on stdin; resolves with its exit code and output (never rejects on a non-zero exit). */
export function runTool(name: GoTool, args: string[], input?: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const bin = toolPath(name);
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(new Error(`${name} ${args.join(' ')}: ${error.message}\n${stderr}`, { cause: error }));
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}

/** Parses one JSON value per non-empty line. */
export function jsonLines<T>(text: string): T[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}
