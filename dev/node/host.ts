/**
 * Host-level plumbing of the real node (dev/node/realnode.ts): commands, the pod
 * bridge, its FORWARD rules, mounts, network namespaces, cgroups and stray
 * processes, each created under names that are ours alone so that a stop (or the next
 * start, after a crash) removes exactly what this node made and nothing else.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, rmdirSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Runs a command; throws with its stderr. */
export async function sh(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  try {
    const r = await execFileAsync(cmd, [...args], { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 });
    return r.stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** Like sh, but never throws (cleanup paths): returns undefined on failure. */
export async function trySh(cmd: string, args: readonly string[]): Promise<string | undefined> {
  try {
    return await sh(cmd, args, { timeoutMs: 30_000 });
  } catch {
    return undefined;
  }
}

export interface BridgeSpec {
  name: string;
  /** e.g. 10.244.0.1 */
  gateway: string;
  /** e.g. 24 */
  prefix: number;
}

export const FORWARD_COMMENT = 'eventlog-realnode';

/** The pod bridge with the node's address (kube-apiserver advertises it to pods). */
export async function ensureBridge(b: BridgeSpec): Promise<void> {
  if (!existsSync(`/sys/class/net/${b.name}`)) await sh('ip', ['link', 'add', b.name, 'type', 'bridge']);
  const addrs = await sh('ip', ['-o', '-4', 'addr', 'show', 'dev', b.name]);
  if (!addrs.includes(` ${b.gateway}/`)) await sh('ip', ['addr', 'add', `${b.gateway}/${b.prefix}`, 'dev', b.name]);
  await sh('ip', ['link', 'set', b.name, 'up']);
  // dockerd sets the FORWARD policy to DROP and loads br_netfilter, which would drop
  // pod-to-pod traffic on the bridge: allow the bridge explicitly (removed on stop).
  for (const dir of ['-i', '-o']) {
    const rule = ['FORWARD', dir, b.name, '-m', 'comment', '--comment', FORWARD_COMMENT, '-j', 'ACCEPT'];
    if ((await trySh('iptables', ['-w', '-C', ...rule])) === undefined) await sh('iptables', ['-w', '-I', ...rule]);
  }
}

export async function removeBridge(b: BridgeSpec): Promise<string[]> {
  const done: string[] = [];
  for (const dir of ['-i', '-o']) {
    const rule = ['FORWARD', dir, b.name, '-m', 'comment', '--comment', FORWARD_COMMENT, '-j', 'ACCEPT'];
    while ((await trySh('iptables', ['-w', '-C', ...rule])) !== undefined) {
      await trySh('iptables', ['-w', '-D', ...rule]);
      done.push(`iptables FORWARD ${dir} ${b.name}`);
    }
  }
  if (existsSync(`/sys/class/net/${b.name}`)) {
    await trySh('ip', ['link', 'del', b.name]);
    done.push(`bridge ${b.name}`);
  }
  return done;
}

/** Mount points at or under `root`, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(root: string): string[] {
  const r = resolve(root);
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const path = mp.replace(/\\040/g, ' ');
    if (path === r || path.startsWith(r + sep)) out.push(path);
  }
  return [...new Set(out)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything under `root` except `keep` (deepest first; lazy as a last resort). */
export async function unmountUnder(root: string, keep: (path: string) => boolean = () => false): Promise<string[]> {
  const done: string[] = [];
  for (let pass = 0; pass < 3; pass++) {
    const left = mountsUnder(root).filter((m) => !keep(m));
    if (left.length === 0) break;
    for (const m of left) {
      if ((await trySh('umount', [m])) !== undefined || (pass === 2 && (await trySh('umount', ['-l', m])) !== undefined)) done.push(m);
    }
  }
  return done;
}

/** Pids of every process in a cgroup subtree (v1: any controller dir; v2: the unified dir). */
export function pidsInCgroupTree(dir: string): number[] {
  const pids: number[] = [];
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    try {
      for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p.trim()) pids.push(Number(p));
    } catch { /* gone */ }
    for (const e of entries) {
      try {
        if (statSync(join(d, e)).isDirectory()) walk(join(d, e));
      } catch { /* gone */ }
    }
  };
  walk(dir);
  return [...new Set(pids)];
}

/** The cgroup directories named `name` directly under each mounted hierarchy. */
export function cgroupDirs(name: string): string[] {
  const root = '/sys/fs/cgroup';
  const out: string[] = [];
  if (existsSync(join(root, 'cgroup.controllers'))) {
    if (existsSync(join(root, name))) out.push(join(root, name));
    return out;
  }
  let entries: string[] = [];
  try {
    entries = readdirSync(root);
  } catch {
    return out;
  }
  for (const e of entries) {
    const d = join(root, e, name);
    try {
      if (statSync(join(root, e)).isDirectory() && existsSync(d)) out.push(d);
    } catch { /* skip */ }
  }
  return [...new Set(out.map((d) => {
    try {
      return realpathSync(d);
    } catch {
      return d;
    }
  }))];
}

/** Removes a cgroup subtree (deepest first); its processes must be gone. */
export function removeCgroupTree(dir: string): boolean {
  let ok = true;
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return true;
  }
  for (const e of entries) {
    try {
      if (statSync(join(dir, e)).isDirectory()) ok = removeCgroupTree(join(dir, e)) && ok;
    } catch { /* gone */ }
  }
  try {
    rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') ok = false;
  }
  return ok;
}

/** Pids whose command line contains `needle` (e.g. our containerd socket path: its shims). */
export function pidsWithArg(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (cmd.split('\0').some((a) => a.includes(needle))) out.push(Number(e));
    } catch { /* gone */ }
  }
  return out.filter((p) => p !== process.pid);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function killAll(pids: readonly number[], signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const p of pids) {
    try {
      process.kill(p, signal);
    } catch { /* gone */ }
  }
}

/** Network namespaces in /run/netns. */
export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

/**
 * The chains the kubelet itself adds to the host's iptables (KUBE-FIREWALL and its
 * INPUT/OUTPUT jumps, the KUBE-KUBELET-CANARY chains), for IPv4 and IPv6. Only called
 * when this node ran (its state file exists): no other kubelet runs on this host.
 */
export async function removeKubeletChains(): Promise<string[]> {
  const done: string[] = [];
  for (const cmd of ['iptables', 'ip6tables']) {
    for (const [table, chain, jumps] of [
      ['filter', 'KUBE-FIREWALL', ['INPUT', 'OUTPUT']],
      ['filter', 'KUBE-KUBELET-CANARY', []],
      ['nat', 'KUBE-KUBELET-CANARY', []],
      ['mangle', 'KUBE-KUBELET-CANARY', []],
      ['mangle', 'KUBE-IPTABLES-HINT', []],
    ] as const) {
      for (const from of jumps) {
        while ((await trySh(cmd, ['-w', '-t', table, '-C', from, '-j', chain])) !== undefined) {
          await trySh(cmd, ['-w', '-t', table, '-D', from, '-j', chain]);
        }
      }
      if ((await trySh(cmd, ['-w', '-t', table, '-S', chain])) !== undefined) {
        await trySh(cmd, ['-w', '-t', table, '-F', chain]);
        if ((await trySh(cmd, ['-w', '-t', table, '-X', chain])) !== undefined) done.push(`${cmd} -t ${table} ${chain}`);
      }
    }
  }
  return done;
}
