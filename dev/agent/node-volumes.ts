/**
 * The node's side of its PersistentVolumes (what a CSI node plugin + kubelet do):
 * make a PV's storage (a real ext4 file system on a loop device when the agent
 * runs as root, else a plain directory), keep it attached and mounted at the
 * PV's `local.path`, grow it, track which pods use it, and clean up on stop.
 *
 * Modes (also on each PV, annotation `eventlog.dev/volume-mode`):
 * - `loop-ext4`: `<dataDir>/volumes/<pv>.img` on a loop device, mounted at
 *   `<dataDir>/volumes/<pv>/`; sized exactly (dev/volumes/loopfs.ts).
 * - `directory`: `<dataDir>/volumes/<pv>/`; capacity is bookkeeping only.
 *
 * Guarantees:
 * - Root without the tools (e2fsprogs, mount) fails `start` with one line naming the
 *   packages; it never silently falls back to directories.
 * - `start` reclaims a crashed run's loop devices and mounts first (loopfs.reclaimLeftovers).
 * - Per-volume operations (stage for a pod, grow, remove) are serialized by a lock, so a
 *   pod never starts on a volume in the middle of an offline resize, and a pending
 *   offline resize finishes before a pod starts on it (NodeExpandVolume before publish).
 * - `stop` unmounts and detaches every loop volume this process opened (after the
 *   agent stopped its pods); a busy mount is left and reported, and the next start
 *   re-uses it.
 *
 * Caveats: a PV's mode is fixed when it is made; a loop-ext4 PV cannot be used by an
 * agent running without root (it reports that), and a directory PV stays a directory.
 */
import { mkdir, rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';
import { checkLoopSupport, LoopVolume, onlineResizeSupport, OnlineResizeUnsupportedError, reclaimLeftovers } from '../volumes/loopfs.ts';
import { volumePaths } from '../volumes/plan.ts';
import { pvDir, type AgentPaths } from './paths.ts';

export type VolumeMode = 'loop-ext4' | 'directory';
export const volumeModeAnnotation = 'eventlog.dev/volume-mode';

export const volumeModeOf = (pv: V1PersistentVolume): VolumeMode => (pv.metadata?.annotations?.[volumeModeAnnotation] === 'loop-ext4' ? 'loop-ext4' : 'directory');

export interface NodeVolumesOptions {
  paths: AgentPaths;
  log: Logger;
  /** 'auto' (default): loop-ext4 when running as root, else directory. */
  mode?: VolumeMode | 'auto';
  /** Attach records (default /run/eventlog-volumes; see dev/volumes/registry.ts). */
  registryDir?: string;
  /** Called when a pod stops using a volume (an offline resize may now proceed). */
  onRelease?: () => void;
}

export class NodeVolumes {
  readonly mode: VolumeMode;
  #online: { supported: boolean; reason: string };
  readonly #o: NodeVolumesOptions;
  readonly #open = new Map<string, LoopVolume>();
  readonly #users = new Map<string, Set<string>>();
  readonly #locks = new Map<string, Promise<unknown>>();
  #stopped = false;

  private constructor(o: NodeVolumesOptions, mode: VolumeMode, online: { supported: boolean; reason: string }) {
    this.#o = o;
    this.mode = mode;
    this.#online = online;
  }

  static async start(o: NodeVolumesOptions): Promise<NodeVolumes> {
    const root = process.getuid?.() === 0;
    const mode: VolumeMode = o.mode === undefined || o.mode === 'auto' ? (root ? 'loop-ext4' : 'directory') : o.mode;
    if (mode === 'directory') {
      const nv = new NodeVolumes(o, mode, { supported: true, reason: 'directories have no size to grow' });
      o.log.info({ volumeMode: mode, reason: root ? 'chosen by option' : 'not running as root' }, 'volumes: plain directories (capacity is bookkeeping, nothing fills up)');
      return nv;
    }
    if (!root) throw new Error('node agent: volumeMode loop-ext4 needs root (loop devices and mount); run as root or use volumeMode "directory"');
    try {
      checkLoopSupport();
    } catch (err) {
      throw new Error(`node agent: ${(err as Error).message}`, { cause: err });
    }
    const online = await onlineResizeSupport();
    const nv = new NodeVolumes(o, mode, online);
    await mkdir(o.paths.volumes, { recursive: true });
    const report = await reclaimLeftovers(o.paths.volumes, o.registryDir ? { registryDir: o.registryDir } : {});
    for (const r of report.reclaimed) o.log.warn({ device: r.device, image: r.image, reason: r.reason }, 'volumes: detached a loop device left behind by an earlier run');
    for (const b of report.busy) o.log.warn(b, 'volumes: a mount left behind by an earlier run is still busy; re-using it');
    for (const e of report.errors) o.log.error({ err: e }, 'volumes: could not reclaim a leftover');
    o.log.info(
      { volumeMode: mode, onlineExpansion: online.supported, ...(online.supported ? {} : { onlineExpansionUnavailable: online.reason }) },
      online.supported
        ? 'volumes: ext4 file systems on loop devices, exactly the requested size; online expansion available'
        : 'volumes: ext4 file systems on loop devices, exactly the requested size; online expansion unavailable, file systems grow when no pod uses them',
    );
    return nv;
  }

  /** Can a mounted volume grow here? */
  get onlineExpansion(): { supported: boolean; reason: string } {
    return this.#online;
  }

  /** Run `fn` with the volume's lock held (one operation per volume at a time). */
  async withLock<T>(pvName: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(pvName) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.#locks.set(pvName, next);
    try {
      return await next;
    } finally {
      if (this.#locks.get(pvName) === next) this.#locks.delete(pvName);
    }
  }

  #checkOurPath(pv: V1PersistentVolume): { name: string; image: string; mountPoint: string } {
    const name = pv.metadata?.name ?? '';
    const { image, mountPoint } = volumePaths(this.#o.paths.volumes, name);
    const path = pv.spec?.local?.path;
    if (path && resolve(path) !== resolve(mountPoint)) throw new Error(`volume ${name}: local.path ${path} is not this agent's mount point ${mountPoint} (another data dir?)`);
    return { name, image, mountPoint };
  }

  /** Make the storage for a new PV; returns its directory (the PV's local.path) and size. */
  async provision(pvName: string, requestedBytes: bigint): Promise<{ path: string; bytes: bigint; mode: VolumeMode }> {
    if (this.mode === 'directory') {
      const dir = pvDir(this.#o.paths, pvName);
      await mkdir(dir, { recursive: true });
      return { path: dir, bytes: requestedBytes, mode: 'directory' };
    }
    return this.withLock(pvName, async () => {
      const { image, mountPoint } = volumePaths(this.#o.paths.volumes, pvName);
      let vol = this.#open.get(pvName);
      if (!vol) {
        // A retry after a failed PV create finds the image already made: re-use it.
        vol = await LoopVolume.create({ image, mountPoint, bytes: requestedBytes, name: pvName, ...this.#reg() }).catch(async (err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          return LoopVolume.open({ image, mountPoint, name: pvName, ...this.#reg() });
        });
        this.#open.set(pvName, vol);
      }
      return { path: mountPoint, bytes: await vol.deviceBytes(), mode: 'loop-ext4' as const };
    });
  }

  #reg(): { registryDir?: string } {
    return this.#o.registryDir ? { registryDir: this.#o.registryDir } : {};
  }

  /** Attach + mount (if needed) and return the PV's directory. Call with the lock held or via stage(). */
  async #ready(pv: V1PersistentVolume): Promise<string> {
    if (this.#stopped) throw new Error('the node agent is stopping');
    if (volumeModeOf(pv) === 'directory') {
      const dir = pv.spec?.local?.path ?? pv.spec?.hostPath?.path;
      if (!dir) throw new Error(`volume ${pv.metadata?.name}: no local or hostPath directory`);
      await mkdir(dir, { recursive: true });
      return dir;
    }
    if (this.mode !== 'loop-ext4') throw new Error(`volume ${pv.metadata?.name} is a loop-ext4 volume (an ext4 image); this agent runs without root and cannot mount it`);
    const { name, image, mountPoint } = this.#checkOurPath(pv);
    let vol = this.#open.get(name);
    if (vol) {
      if (!(await vol.isMounted())) await vol.mount();
      return mountPoint;
    }
    vol = await LoopVolume.open({ image, mountPoint, name, ...this.#reg() });
    this.#open.set(name, vol);
    this.#o.log.info({ volume: name, device: vol.device, mountPoint }, 'volume attached and mounted');
    return mountPoint;
  }

  /** Keep a PV of ours attached and mounted (each sync pass; cheap when it is). */
  async ensureReady(pv: V1PersistentVolume): Promise<string> {
    return this.withLock(pv.metadata?.name ?? '', () => this.#ready(pv));
  }

  /**
   * A pod is about to use the volume: make it ready, run `beforeFirstUse` (a pending
   * file-system resize) when no other pod uses it, and count the pod as a user.
   */
  async stage(pv: V1PersistentVolume, podUid: string, beforeFirstUse?: () => Promise<void>): Promise<string> {
    const name = pv.metadata?.name ?? '';
    return this.withLock(name, async () => {
      const path = await this.#ready(pv);
      const users = this.#users.get(name) ?? new Set<string>();
      if (beforeFirstUse && [...users].every((u) => u === podUid)) await beforeFirstUse();
      users.add(podUid);
      this.#users.set(name, users);
      return path;
    });
  }

  /** The pod stopped: it no longer uses any volume. */
  release(podUid: string): void {
    let changed = false;
    for (const [name, users] of this.#users) {
      if (users.delete(podUid)) changed = true;
      if (users.size === 0) this.#users.delete(name);
    }
    if (changed) this.#o.onRelease?.();
  }

  inUse(pvName: string): boolean {
    return (this.#users.get(pvName)?.size ?? 0) > 0;
  }

  /** Controller step: grow the block device to (at least) `bytes`; returns the new size. Call with the lock held. */
  async growDevice(pv: V1PersistentVolume, bytes: bigint): Promise<bigint> {
    if (volumeModeOf(pv) === 'directory') return bytes;
    await this.#ready(pv);
    const vol = this.#open.get(pv.metadata?.name ?? '');
    if (!vol) throw new Error(`volume ${pv.metadata?.name} is not open`);
    return vol.growDevice(bytes);
  }

  /** File-system step. Call with the lock held. Online failure for lack of capability turns online expansion off for this node. */
  async growFilesystem(pv: V1PersistentVolume, online: boolean): Promise<void> {
    if (volumeModeOf(pv) === 'directory') return;
    await this.#ready(pv);
    const vol = this.#open.get(pv.metadata?.name ?? '');
    if (!vol) throw new Error(`volume ${pv.metadata?.name} is not open`);
    try {
      await vol.growFilesystem({ online });
    } catch (err) {
      if (err instanceof OnlineResizeUnsupportedError) {
        this.#online = { supported: false, reason: err.message };
        this.#o.log.warn({ volume: vol.name, err: err.message }, 'volumes: online expansion failed for lack of privilege; growing file systems only when no pod uses them from now on');
      }
      throw err;
    }
  }

  /** Delete the PV's storage (claim gone, reclaimPolicy Delete). Refuses while a pod uses it. */
  async remove(pv: V1PersistentVolume): Promise<void> {
    const name = pv.metadata?.name ?? '';
    await this.withLock(name, async () => {
      if (this.inUse(name)) throw new Error(`volume ${name} is still used by a pod on this node`);
      const root = resolve(this.#o.paths.volumes) + sep;
      if (volumeModeOf(pv) === 'loop-ext4') {
        const { image, mountPoint } = this.#checkOurPath(pv);
        const vol = this.#open.get(name) ?? (await LoopVolume.open({ image, mountPoint, name, ...this.#reg() }).catch(() => undefined));
        if (vol) await vol.destroy();
        this.#open.delete(name);
        await rm(image, { force: true });
        await rm(mountPoint, { recursive: true, force: true });
        return;
      }
      const dir = pv.spec?.local?.path;
      if (dir && resolve(dir).startsWith(root)) await rm(dir, { recursive: true, force: true });
    });
  }

  /** Unmount and detach everything this process opened (call after the pods are stopped). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(
      [...this.#open.entries()].map(([name, vol]) =>
        this.withLock(name, async () => {
          try {
            await vol.close();
            this.#open.delete(name);
          } catch (err) {
            this.#o.log.error({ volume: name, device: vol.device, err: (err as Error).message }, 'volumes: could not unmount/detach on stop; the next start re-uses or reclaims it');
          }
        }),
      ),
    );
  }
}
