/**
 * From a container spec to a local process: `$(VAR)` expansion, env resolution
 * (literal values, downward API fieldRefs, secret/configMap keys), and mapping
 * of in-container paths (volume mounts, the termination-message file) to host
 * paths. All pure: the caller fetches secrets/configMaps and prepares volumes.
 */
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';

/**
 * Kubernetes' `$(VAR)` expansion (k8s.io/kubernetes third_party/forked/golang/expansion):
 * `$(NAME)` becomes the value when NAME is defined and stays as written when not;
 * `$$` is an escaped `$`; any other `$` is literal.
 */
export function expandVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      i++;
      continue;
    }
    const next = input[i + 1]!;
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      const value = name.length > 0 ? lookup(name) : undefined;
      out += value ?? input.slice(i, close + 1);
      i = close + 1;
      continue;
    }
    out += ch + next;
    i += 2;
  }
  return out;
}

/** Data of the Secrets and ConfigMaps a container references (secret values already base64-decoded). */
export interface RefData {
  secrets: ReadonlyMap<string, Readonly<Record<string, string>>>;
  configMaps: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

export interface RuntimeFacts {
  podIP: string;
  hostIP: string;
  nodeName: string;
}

/** A container that cannot be started because its configuration is wrong (kubelet: CreateContainerConfigError). */
export class ContainerConfigError extends Error {
  readonly reason = 'CreateContainerConfigError';
}

function labelOrAnnotation(path: string, prefix: string, values: Record<string, string> | undefined): string | undefined {
  const m = new RegExp(`^${prefix}\\['(.*)'\\]$`).exec(path);
  if (!m) return undefined;
  return values?.[m[1]!] ?? '';
}

/** The downward-API value of `fieldPath` for this pod (env `valueFrom.fieldRef`, downwardAPI volumes). */
export function fieldRefValue(pod: V1Pod, fieldPath: string, facts: RuntimeFacts): string {
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? facts.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP':
    case 'status.podIPs':
      return facts.podIP;
    case 'status.hostIP':
    case 'status.hostIPs':
      return facts.hostIP;
    case 'metadata.labels':
      return Object.entries(pod.metadata?.labels ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).sort().join('\n');
    case 'metadata.annotations':
      return Object.entries(pod.metadata?.annotations ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).sort().join('\n');
  }
  const label = labelOrAnnotation(fieldPath, 'metadata\\.labels', pod.metadata?.labels);
  if (label !== undefined) return label;
  const annotation = labelOrAnnotation(fieldPath, 'metadata\\.annotations', pod.metadata?.annotations);
  if (annotation !== undefined) return annotation;
  throw new ContainerConfigError(`unsupported downward API fieldPath ${JSON.stringify(fieldPath)}`);
}

function keyRef(
  kind: 'Secret' | 'ConfigMap',
  ref: { name?: string; key: string; optional?: boolean },
  data: ReadonlyMap<string, Readonly<Record<string, string>>>,
  namespace: string,
): string | undefined {
  const name = ref.name ?? '';
  const values = data.get(name);
  if (!values) {
    if (ref.optional) return undefined;
    throw new ContainerConfigError(`${kind.toLowerCase()} "${name}" not found`);
  }
  const value = values[ref.key];
  if (value === undefined) {
    if (ref.optional) return undefined;
    throw new ContainerConfigError(`couldn't find key ${ref.key} in ${kind} ${namespace}/${name}`);
  }
  return value;
}

/** Secret and ConfigMap names a container's env refers to (so the caller can fetch them). */
export function envReferences(container: V1Container): { secrets: string[]; configMaps: string[] } {
  const secrets = new Set<string>();
  const configMaps = new Set<string>();
  for (const from of container.envFrom ?? []) {
    if (from.secretRef?.name) secrets.add(from.secretRef.name);
    if (from.configMapRef?.name) configMaps.add(from.configMapRef.name);
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom?.secretKeyRef?.name) secrets.add(e.valueFrom.secretKeyRef.name);
    if (e.valueFrom?.configMapKeyRef?.name) configMaps.add(e.valueFrom.configMapKeyRef.name);
  }
  return { secrets: [...secrets], configMaps: [...configMaps] };
}

function envVarValue(e: V1EnvVar, pod: V1Pod, container: V1Container, facts: RuntimeFacts, refs: RefData, lookup: (n: string) => string | undefined): string | undefined {
  const namespace = pod.metadata?.namespace ?? '';
  const from = e.valueFrom;
  if (!from) return expandVars(e.value ?? '', lookup);
  if (from.fieldRef) return fieldRefValue(pod, from.fieldRef.fieldPath, facts);
  if (from.secretKeyRef) return keyRef('Secret', from.secretKeyRef, refs.secrets, namespace);
  if (from.configMapKeyRef) return keyRef('ConfigMap', from.configMapKeyRef, refs.configMaps, namespace);
  if (from.resourceFieldRef) {
    const res = from.resourceFieldRef.resource;
    const [kind, name] = res.split('.') as [string, string | undefined];
    const source = kind === 'limits' ? container.resources?.limits : kind === 'requests' ? container.resources?.requests : undefined;
    const value = name ? source?.[name] : undefined;
    if (value === undefined) throw new ContainerConfigError(`resourceFieldRef ${res} is not set on container ${container.name} (this node reports only explicit values)`);
    return String(value);
  }
  throw new ContainerConfigError(`env ${e.name}: unsupported valueFrom`);
}

/**
 * The container's environment as the kubelet builds it: `envFrom` first (with
 * prefixes), then `env` in order, each literal value `$(VAR)`-expanded against
 * the variables defined before it (and `base`, e.g. KUBERNETES_SERVICE_HOST).
 */
export function resolveEnv(pod: V1Pod, container: V1Container, facts: RuntimeFacts, refs: RefData, base: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = { ...base };
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    const ref = from.secretRef ?? from.configMapRef;
    const kind = from.secretRef ? 'Secret' : 'ConfigMap';
    const data = (from.secretRef ? refs.secrets : refs.configMaps).get(ref?.name ?? '');
    if (!data) {
      if (ref?.optional) continue;
      throw new ContainerConfigError(`${kind.toLowerCase()} "${ref?.name ?? ''}" not found`);
    }
    for (const [k, v] of Object.entries(data)) env[prefix + k] = v;
  }
  const lookup = (name: string): string | undefined => env[name];
  for (const e of container.env ?? []) {
    const value = envVarValue(e, pod, container, facts, refs, lookup);
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}

/** An in-container path and the host path it stands for. */
export interface PathMapping {
  containerPath: string;
  hostPath: string;
}

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.replace(/\/+$/, '') : p;
}

/**
 * Rewrite an in-container path to the host: a value equal to a mapping's
 * container path, or below it (`/data/x` under `/data`), takes the host path;
 * the longest matching container path wins. `--flag=/path` is rewritten after
 * the `=`. Anything else is returned unchanged.
 */
export function mapPath(value: string, mappings: readonly PathMapping[]): string {
  const sorted = [...mappings]
    .map((m) => ({ containerPath: trimSlash(m.containerPath), hostPath: trimSlash(m.hostPath) }))
    .filter((m) => m.containerPath !== '/' && m.containerPath.startsWith('/'))
    .sort((a, b) => b.containerPath.length - a.containerPath.length);
  const rewrite = (v: string): string | undefined => {
    for (const m of sorted) {
      if (v === m.containerPath) return m.hostPath;
      if (v.startsWith(m.containerPath + '/')) return m.hostPath + v.slice(m.containerPath.length);
    }
    return undefined;
  };
  const direct = rewrite(value);
  if (direct !== undefined) return direct;
  const eq = value.indexOf('=');
  if (value.startsWith('-') && eq > 0) {
    const mapped = rewrite(value.slice(eq + 1));
    if (mapped !== undefined) return value.slice(0, eq + 1) + mapped;
  }
  return value;
}

/** Expand `$(VAR)` in command and args with the container's env (kubelet semantics). */
export function expandCommand(container: V1Container, env: Readonly<Record<string, string>>): { command: string[] | undefined; args: string[] | undefined } {
  const lookup = (name: string): string | undefined => env[name];
  return {
    command: container.command?.map((c) => expandVars(c, lookup)),
    args: container.args?.map((a) => expandVars(a, lookup)),
  };
}

export const defaultTerminationMessagePath = '/dev/termination-log';
