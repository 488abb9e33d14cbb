/**
 * Running the volume tools (mkfs.ext4, losetup, mount, umount, e2fsck, resize2fs).
 *
 * Guarantees:
 * - Tools are found on PATH and in the sbin directories (a test runner's PATH often
 *   lacks /usr/sbin), and `checkTools` names every missing one and its Debian package
 *   in one line, so a root run without them fails loudly instead of falling back.
 * - A failed command throws a `VolumeCommandError` naming the volume, the full command
 *   line, the exit status and the tool's own stderr.
 * - Commands run through execFile (no shell), with a timeout.
 *
 * Caveats: e2fsck's exit status 1 ("errors corrected") is a success for callers that
 * pass `okCodes: [0, 1]`; everything else non-zero is an error.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export class VolumeCommandError extends Error {
  readonly volume: string;
  readonly command: string;
  readonly exitCode: number | undefined;
  readonly stderr: string;
  constructor(volume: string, command: string, exitCode: number | undefined, stderr: string, cause?: unknown) {
    const detail = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
    super(`volume ${volume}: \`${command}\` failed${exitCode !== undefined ? ` (exit ${exitCode})` : ''}${detail ? `: ${detail}` : ''}`, { cause });
    this.volume = volume;
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Tool -> the Debian package that ships it. */
export const TOOLS = {
  'mkfs.ext4': 'e2fsprogs',
  resize2fs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  losetup: 'mount',
  mount: 'mount',
  umount: 'mount',
} as const;
export type Tool = keyof typeof TOOLS;

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];
const found = new Map<string, string>();

/** Absolute path of a tool, or undefined. */
export function which(tool: string): string | undefined {
  const hit = found.get(tool);
  if (hit) return hit;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN];
  for (const dir of dirs) {
    const p = join(dir, tool);
    try {
      accessSync(p, constants.X_OK);
      found.set(tool, p);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The one line for missing tools: which, and the Debian packages that ship them. */
export function missingToolsMessage(missing: readonly Tool[]): string {
  const pkgs = [...new Set(missing.map((t) => TOOLS[t]))];
  return `loop-ext4 volumes need ${missing.join(', ')}, not found on PATH or in /usr/sbin, /sbin: install the Debian package${pkgs.length > 1 ? 's' : ''} ${pkgs.join(' and ')} (apt-get install ${pkgs.join(' ')}; elsewhere e2fsprogs / util-linux)`;
}

/** Throw one clear line if any tool is missing (names the Debian packages to install). */
export function checkTools(): void {
  const missing = (Object.keys(TOOLS) as Tool[]).filter((t) => which(t) === undefined);
  if (missing.length > 0) throw new Error(missingToolsMessage(missing));
}

export interface RunOptions {
  /** Exit codes that count as success (default [0]). */
  okCodes?: readonly number[];
  timeoutMs?: number;
}

/** Run `tool args...` for `volume`; resolves to stdout. */
export function run(volume: string, tool: Tool, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const bin = which(tool);
  const command = [tool, ...args].join(' ');
  if (!bin) return Promise.reject(new VolumeCommandError(volume, command, undefined, `${tool} not found (Debian package ${TOOLS[tool]})`));
  const okCodes = opts.okCodes ?? [0];
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: opts.timeoutMs ?? 60_000, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = typeof err.code === 'number' ? err.code : undefined;
      if (code !== undefined && okCodes.includes(code)) return resolve(stdout);
      reject(new VolumeCommandError(volume, command, code, stderr || err.message, err));
    });
  });
}
