/**
 * The agent's data directory layout (like /var/lib/kubelet + /var/log/pods):
 *
 *   <dataDir>/volumes/<pv-name>/                       provisioned PersistentVolumes (survive pods)
 *   <dataDir>/pods/<pod-uid>/volumes/<kind>/<name>/    emptyDir, secret, configMap, projected, downwardAPI
 *   <dataDir>/pods/<pod-uid>/containers/<name>/termination-log
 *   <dataDir>/logs/<ns>_<pod>_<uid>/<container>/<restartCount>.log
 *   <dataDir>/run/<pod-uid>_<container>.pid            live processes (reaped after an agent crash)
 */
import { join } from 'node:path';

export interface AgentPaths {
  root: string;
  volumes: string;
  pods: string;
  logs: string;
  run: string;
}

export function agentPaths(dataDir: string): AgentPaths {
  return {
    root: dataDir,
    volumes: join(dataDir, 'volumes'),
    pods: join(dataDir, 'pods'),
    logs: join(dataDir, 'logs'),
    run: join(dataDir, 'run'),
  };
}

const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_');

export const pvDir = (p: AgentPaths, pvName: string): string => join(p.volumes, safe(pvName));
export const podDir = (p: AgentPaths, uid: string): string => join(p.pods, safe(uid));
export const podVolumeDir = (p: AgentPaths, uid: string, kind: string, name: string): string => join(podDir(p, uid), 'volumes', safe(kind), safe(name));
export const containerDir = (p: AgentPaths, uid: string, container: string): string => join(podDir(p, uid), 'containers', safe(container));
export const podLogDir = (p: AgentPaths, namespace: string, name: string, uid: string): string => join(p.logs, `${safe(namespace)}_${safe(name)}_${safe(uid)}`);
export const containerLogFile = (p: AgentPaths, namespace: string, name: string, uid: string, container: string, restartCount: number): string =>
  join(podLogDir(p, namespace, name, uid), safe(container), `${restartCount}.log`);
export const pidFile = (p: AgentPaths, uid: string, container: string): string => join(p.run, `${safe(uid)}_${safe(container)}.pid`);
