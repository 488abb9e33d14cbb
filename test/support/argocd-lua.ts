/**
 * Runs the Argo CD health check (deploy/gitops/argocd/eventlog-health.lua) in a real
 * Lua 5.1 interpreter (Debian's `lua5.1`; Argo CD's gopher-lua implements Lua 5.1),
 * the way Argo CD does: the object is a global `obj` (a Lua table converted from its
 * JSON), the script's chunk returns `{status, message}`. The chunk runs with only the
 * safe standard libraries Argo CD opens (no io/os), so a script that needs more fails
 * here too.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const HEALTH_LUA = fileURLToPath(new URL('../../deploy/gitops/argocd/eventlog-health.lua', import.meta.url));
export const ARGOCD_CM_PATCH = fileURLToPath(new URL('../../deploy/gitops/argocd/argocd-cm-patch.yaml', import.meta.url));
export const HEALTH_KEY = 'resource.customizations.health.eventlog.dev_EventLog';
const LUA = process.env.LUA ?? 'lua5.1';

/** A Lua string literal for any bytes (Lua 5.1 strings are byte strings; `\ddd` escapes). */
function luaString(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b === 0x22) out += '\\"';
    else if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${b}`;
  }
  return `${out}"`;
}

/** A Lua table constructor for a JSON value (null and undefined become nil, as in Argo CD). */
export function toLuaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`toLuaLiteral: ${value} is not a JSON number`);
    return String(value);
  }
  if (typeof value === 'string') return luaString(value);
  if (Array.isArray(value)) return `{${value.map(toLuaLiteral).join(', ')}}`;
  if (typeof value === 'object') {
    const fields = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `[${luaString(k)}] = ${toLuaLiteral(v)}`);
    return `{${fields.join(', ')}}`;
  }
  throw new Error(`toLuaLiteral: cannot convert a ${typeof value}`);
}

const HARNESS = (objLiteral: string) => `
local obj = ${objLiteral}
local chunk = assert(loadfile(arg[1]))
setfenv(chunk, { obj = obj, pairs = pairs, ipairs = ipairs, next = next, tostring = tostring, tonumber = tonumber, type = type, string = string, table = table, math = math })
local hs = chunk()
assert(type(hs) == "table", "the health script must return a table")
io.write(tostring(hs.status), "\\n", tostring(hs.message))
`;

export interface HealthStatus {
  status: string;
  message: string;
}

/** Evaluates the health script for `obj` (the object's JSON) in lua5.1. */
export function runHealthCheck(obj: unknown, script: string = HEALTH_LUA): Promise<HealthStatus> {
  return new Promise((resolve, reject) => {
    const child = execFile(LUA, ['-', script], { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) {
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
        return reject(new Error(missing ? `${LUA} is not installed (Debian package lua5.1)` : `${LUA} failed: ${stderr || error.message}`));
      }
      const nl = stdout.indexOf('\n');
      resolve({ status: stdout.slice(0, nl), message: stdout.slice(nl + 1) });
    });
    child.stdin?.end(HARNESS(toLuaLiteral(obj)));
  });
}
