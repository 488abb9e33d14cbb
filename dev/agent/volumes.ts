/**
 * Pod volumes as host directories:
 * - persistentVolumeClaim -> the bound PV's directory (local/hostPath), which
 *   outlives the pod, so a new pod on the same claim sees the same data; a PV
 *   this node provisioned is staged first (mounted, a pending offline file-system
 *   resize finished, the pod counted as a user: node-volumes.ts);
 * - emptyDir -> a per-pod directory, removed with the pod;
 * - hostPath -> that path;
 * - secret / configMap / downwardAPI / projected (incl. serviceAccountToken via
 *   the TokenRequest API) -> their keys written as files, once, at pod start.
 */
import { mkdir, rm, writeFile, chmod } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import type { CoreV1Api, V1KeyToPath, V1PersistentVolume, V1Pod, V1Volume } from '@kubernetes/client-node';
import { describeError, isNotFound } from './kube.ts';
import { fieldRefValue, type RuntimeFacts } from './container-spec.ts';
import { podVolumeDir, type AgentPaths } from './paths.ts';

/** A volume that is not (yet) available; the container waits in ContainerCreating. */
export class VolumeNotReadyError extends Error {
  readonly volume: string;
  constructor(volume: string, message: string) {
    super(`volume ${JSON.stringify(volume)}: ${message}`);
    this.volume = volume;
  }
}

export interface VolumeContext {
  core: CoreV1Api;
  paths: AgentPaths;
  facts: RuntimeFacts;
  /**
   * The node's own volumes (storage.ts stageClaimVolume): mount, finish a pending
   * file-system resize, count the pod as a user; undefined for a PV it did not make.
   */
  stageClaim?: (pv: V1PersistentVolume, podUid: string) => Promise<string | undefined>;
}

type FileMap = Map<string, { data: Buffer; mode?: number }>;

function safeRelPath(p: string, volume: string): string {
  const n = normalize(p);
  if (n.startsWith('..') || n.startsWith('/')) throw new VolumeNotReadyError(volume, `item path ${JSON.stringify(p)} must be relative and must not contain '..'`);
  return n;
}

function selectItems(all: Record<string, Buffer>, items: readonly V1KeyToPath[] | undefined, volume: string, what: string, optional: boolean): FileMap {
  const files: FileMap = new Map();
  if (!items || items.length === 0) {
    for (const [k, v] of Object.entries(all)) files.set(k, { data: v });
    return files;
  }
  for (const item of items) {
    const v = all[item.key];
    if (v === undefined) {
      if (optional) continue;
      throw new VolumeNotReadyError(volume, `couldn't find key ${item.key} in ${what}`);
    }
    files.set(safeRelPath(item.path, volume), item.mode !== undefined ? { data: v, mode: item.mode } : { data: v });
  }
  return files;
}

async function secretData(ctx: VolumeContext, namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
  try {
    const s = await ctx.core.readNamespacedSecret({ name, namespace });
    const out: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64');
    for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = Buffer.from(v, 'utf8');
    return out;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function configMapData(ctx: VolumeContext, namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
  try {
    const cm = await ctx.core.readNamespacedConfigMap({ name, namespace });
    const out: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(cm.data ?? {})) out[k] = Buffer.from(v, 'utf8');
    for (const [k, v] of Object.entries(cm.binaryData ?? {})) out[k] = Buffer.from(v, 'base64');
    return out;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function writeFiles(dir: string, files: FileMap, defaultMode: number): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const [rel, f] of files) {
    const target = join(dir, rel);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, f.data);
    await chmod(target, f.mode ?? defaultMode);
  }
}

async function secretFiles(ctx: VolumeContext, pod: V1Pod, volume: string, ref: { name?: string; secretName?: string; items?: V1KeyToPath[]; optional?: boolean }): Promise<FileMap> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const name = ref.secretName ?? ref.name ?? '';
  const data = await secretData(ctx, namespace, name);
  if (!data) {
    if (ref.optional) return new Map();
    throw new VolumeNotReadyError(volume, `secret "${name}" not found`);
  }
  return selectItems(data, ref.items, volume, `Secret ${namespace}/${name}`, ref.optional ?? false);
}

async function configMapFiles(ctx: VolumeContext, pod: V1Pod, volume: string, ref: { name?: string; items?: V1KeyToPath[]; optional?: boolean }): Promise<FileMap> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const name = ref.name ?? '';
  const data = await configMapData(ctx, namespace, name);
  if (!data) {
    if (ref.optional) return new Map();
    throw new VolumeNotReadyError(volume, `configmap "${name}" not found`);
  }
  return selectItems(data, ref.items, volume, `ConfigMap ${namespace}/${name}`, ref.optional ?? false);
}

function downwardFiles(pod: V1Pod, volume: string, items: readonly { path: string; fieldRef?: { fieldPath: string }; mode?: number }[], facts: RuntimeFacts): FileMap {
  const files: FileMap = new Map();
  for (const item of items) {
    if (!item.fieldRef) throw new VolumeNotReadyError(volume, `downwardAPI item ${item.path}: only fieldRef is supported on this node`);
    const value = fieldRefValue(pod, item.fieldRef.fieldPath, facts);
    files.set(safeRelPath(item.path, volume), item.mode !== undefined ? { data: Buffer.from(value), mode: item.mode } : { data: Buffer.from(value) });
  }
  return files;
}

async function tokenFile(ctx: VolumeContext, pod: V1Pod, volume: string, src: { audience?: string; expirationSeconds?: number; path: string }): Promise<FileMap> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const sa = pod.spec?.serviceAccountName ?? 'default';
  try {
    const tr = await ctx.core.createNamespacedServiceAccountToken({
      name: sa,
      namespace,
      body: {
        spec: {
          audiences: src.audience ? [src.audience] : [],
          expirationSeconds: src.expirationSeconds ?? 3607,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' },
        },
      },
    });
    const token = tr.status?.token;
    if (!token) throw new Error('TokenRequest returned no token');
    return new Map([[safeRelPath(src.path, volume), { data: Buffer.from(token) }]]);
  } catch (err) {
    throw new VolumeNotReadyError(volume, `failed to fetch token for serviceaccount ${namespace}/${sa}: ${describeError(err)}`);
  }
}

/** Where the pod's PVC data lives on the host: the bound PV's local/hostPath directory. */
async function claimDir(ctx: VolumeContext, namespace: string, volume: string, claimName: string, podUid: string): Promise<string> {
  let pvName: string | undefined;
  try {
    const pvc = await ctx.core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace });
    if (pvc.metadata?.deletionTimestamp) throw new VolumeNotReadyError(volume, `persistentvolumeclaim "${claimName}" is being deleted`);
    if (pvc.status?.phase !== 'Bound' || !pvc.spec?.volumeName) throw new VolumeNotReadyError(volume, `persistentvolumeclaim "${claimName}" is not bound (phase ${pvc.status?.phase ?? 'Pending'})`);
    pvName = pvc.spec.volumeName;
  } catch (err) {
    if (err instanceof VolumeNotReadyError) throw err;
    if (isNotFound(err)) throw new VolumeNotReadyError(volume, `persistentvolumeclaim "${claimName}" not found`);
    throw new VolumeNotReadyError(volume, `reading persistentvolumeclaim "${claimName}": ${describeError(err)}`);
  }
  try {
    const pv = await ctx.core.readPersistentVolume({ name: pvName });
    if (ctx.stageClaim) {
      let staged: string | undefined;
      try {
        staged = await ctx.stageClaim(pv, podUid);
      } catch (err) {
        throw new VolumeNotReadyError(volume, `persistentvolume "${pvName}": ${describeError(err)}`);
      }
      if (staged !== undefined) return staged;
    }
    const dir = pv.spec?.local?.path ?? pv.spec?.hostPath?.path;
    if (!dir) throw new VolumeNotReadyError(volume, `persistentvolume "${pvName}" has no local or hostPath directory this node can use`);
    await mkdir(dir, { recursive: true });
    return dir;
  } catch (err) {
    if (err instanceof VolumeNotReadyError) throw err;
    throw new VolumeNotReadyError(volume, `reading persistentvolume "${pvName}": ${describeError(err)}`);
  }
}

async function prepareVolume(ctx: VolumeContext, pod: V1Pod, v: V1Volume): Promise<string> {
  const uid = pod.metadata?.uid ?? '';
  const namespace = pod.metadata?.namespace ?? 'default';
  if (v.persistentVolumeClaim) return claimDir(ctx, namespace, v.name, v.persistentVolumeClaim.claimName, uid);
  if (v.hostPath) {
    await mkdir(v.hostPath.path, { recursive: true });
    return v.hostPath.path;
  }
  if (v.emptyDir) {
    const dir = podVolumeDir(ctx.paths, uid, 'empty-dir', v.name);
    await mkdir(dir, { recursive: true });
    return dir;
  }
  if (v.secret) {
    const dir = podVolumeDir(ctx.paths, uid, 'secret', v.name);
    await writeFiles(dir, await secretFiles(ctx, pod, v.name, v.secret), v.secret.defaultMode ?? 0o644);
    return dir;
  }
  if (v.configMap) {
    const dir = podVolumeDir(ctx.paths, uid, 'configmap', v.name);
    await writeFiles(dir, await configMapFiles(ctx, pod, v.name, v.configMap), v.configMap.defaultMode ?? 0o644);
    return dir;
  }
  if (v.downwardAPI) {
    const dir = podVolumeDir(ctx.paths, uid, 'downward-api', v.name);
    await writeFiles(dir, downwardFiles(pod, v.name, v.downwardAPI.items ?? [], ctx.facts), v.downwardAPI.defaultMode ?? 0o644);
    return dir;
  }
  if (v.projected) {
    const files: FileMap = new Map();
    for (const src of v.projected.sources ?? []) {
      let part: FileMap = new Map();
      if (src.secret) part = await secretFiles(ctx, pod, v.name, src.secret);
      else if (src.configMap) part = await configMapFiles(ctx, pod, v.name, src.configMap);
      else if (src.downwardAPI) part = downwardFiles(pod, v.name, src.downwardAPI.items ?? [], ctx.facts);
      else if (src.serviceAccountToken) part = await tokenFile(ctx, pod, v.name, src.serviceAccountToken);
      else throw new VolumeNotReadyError(v.name, 'unsupported projected volume source on this node');
      for (const [k, f] of part) files.set(k, f);
    }
    const dir = podVolumeDir(ctx.paths, uid, 'projected', v.name);
    await writeFiles(dir, files, v.projected.defaultMode ?? 0o644);
    return dir;
  }
  throw new VolumeNotReadyError(v.name, 'unsupported volume type on the local node agent (supported: persistentVolumeClaim, emptyDir, hostPath, secret, configMap, downwardAPI, projected)');
}

/** Prepare every volume of the pod; returns volume name -> host directory. */
export async function preparePodVolumes(ctx: VolumeContext, pod: V1Pod): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const v of pod.spec?.volumes ?? []) out.set(v.name, await prepareVolume(ctx, pod, v));
  return out;
}
