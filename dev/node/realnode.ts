/**
 * A real Kubernetes node beside the local control plane (dev/cluster/): containerd
 * (+ runc, CNI bridge), kubelet, kube-proxy and kube-scheduler as child processes,
 * with generated configs and certificates, plus a PV provisioner for the node's
 * default StorageClass (dev/agent/storage.ts on dev/volumes/ ext4 loop volumes).
 * Used by the e2e tier (test/e2e), which runs the README's install on it.
 *
 * Linux, root. The binaries: test/realnode/install.sh. The network: one bridge
 * (`evl0`, 10.244.0.1/24) in the host namespace that the control plane must be told
 * about before it starts (`controlPlaneOptions()`): kube-apiserver listens on all
 * addresses, advertises the bridge address and keeps the `kubernetes` Service's
 * endpoints (lease reconciler), so pods reach it through 10.0.0.1:443 via kube-proxy.
 *
 * Identities: kubelet runs as `system:node:<name>` (group system:nodes; Node
 * authorizer + NodeRestriction), kube-proxy as `system:kube-proxy`, kube-scheduler as
 * `system:kube-scheduler`: each bound by the API server's bootstrap RBAC, none admin.
 * The provisioner uses the admin credential (it plays the storage vendor's controller).
 *
 * Stop (and the next start, after a crash: `reclaimRealNode`) removes everything:
 * processes (tracked pids; the containers' by their cgroups; the shims by our
 * socket path), mounts under the data dir, the pods' network namespaces, the bridge,
 * our FORWARD rules, kube-proxy's rules (`kube-proxy --cleanup`), the kubepods cgroups
 * and the loop volumes.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, StorageV1Api } from '@kubernetes/client-node';
import { silentLogger, type Logger } from '../../src/common/logger.ts';
import { eventRecorder } from '../agent/events.ts';
import { NodeVolumes } from '../agent/node-volumes.ts';
import { agentPaths } from '../agent/paths.ts';
import { provisionerName, StorageProvisioner } from '../agent/storage.ts';
import { writeKubeconfig } from '../cluster/kubeconfig.ts';
import { ensurePki, type Pki } from '../cluster/pki.ts';
import { freePorts } from '../cluster/ports.ts';
import { Reaper, spawnComponent, type ComponentProcess } from '../cluster/process.ts';
import {
  alive, cgroupDirs, ensureBridge, killAll, listNetns, pidsInCgroupTree, pidsWithArg, removeBridge, removeKubeletChains, removeCgroupTree, sh, trySh, unmountUnder, type BridgeSpec,
} from './host.ts';

export const BRIDGE: BridgeSpec = { name: 'evl0', gateway: '10.244.0.1', prefix: 24 };
export const POD_CIDR = '10.244.0.0/24';
export const NODE_NAME = 'eventlog-node';
const KUBEPODS = 'kubepods';
const STATE_FILE = 'realnode-state.json';

export interface RealNodeBinaries {
  dir: string;
}

/** Where the node keeps its files, under the e2e data dir. */
export function nodeDir(dataDir: string): string {
  return join(dataDir, 'node');
}

/**
 * The control-plane options the real node needs (kept out of the defaults, which the
 * other tiers use). Call before startControlPlane with the same dataDir; it makes the
 * PKI first so the API server can present the admin client certificate to kubelets.
 */
export async function controlPlaneOptions(dataDir: string): Promise<{ extraApiServerArgs: string[]; controllers: string[] }> {
  const { pki } = await ensurePki(join(dataDir, 'pki'));
  return {
    extraApiServerArgs: [
      '--bind-address=0.0.0.0',
      `--advertise-address=${BRIDGE.gateway}`,
      '--endpoint-reconciler-type=lease',
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-client-certificate=${pki.adminCert}`,
      `--kubelet-client-key=${pki.adminKey}`,
      '--enable-admission-plugins=NodeRestriction',
    ],
    controllers: [
      'garbage-collector-controller', 'namespace-controller', 'serviceaccount-controller', 'serviceaccount-token-controller',
      'root-ca-certificate-publisher-controller', 'clusterrole-aggregation-controller', 'persistentvolume-binder-controller',
      'persistentvolume-protection-controller', 'persistentvolumeclaim-protection-controller', 'endpointslice-controller',
      'endpoints-controller', 'endpointslice-mirroring-controller',
      // what a real node and a Deployment need
      'deployment-controller', 'replicaset-controller', 'node-lifecycle-controller', 'pod-garbage-collector-controller',
      'disruption-controller',
    ],
  };
}

/** Makes the bridge before the control plane starts (the API server advertises its address). */
export async function prepareNetwork(): Promise<void> {
  await ensureBridge(BRIDGE);
}

async function signClient(pki: Pki, dir: string, name: string, subject: string, serving?: string[]): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  const cnf = join(dir, `${name}.cnf`);
  await writeFile(cnf, [
    '[req]', 'distinguished_name = dn', 'prompt = no', 'x509_extensions = ext', '[dn]', `CN = ${name}`, '[ext]',
    'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage = ${serving ? 'serverAuth' : 'clientAuth'}`,
    ...(serving ? [`subjectAltName = ${serving.join(',')}`] : []),
    'authorityKeyIdentifier = keyid', '',
  ].join('\n'));
  await sh('openssl', ['req', '-x509', '-config', cnf, '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '3650', '-subj', subject, '-CA', pki.caCert, '-CAkey', pki.caKey]);
  await rm(cnf, { force: true });
  return { cert, key };
}

interface NodeState {
  /** pids of our components (kubelet, containerd, ...), for a crash reclaim. */
  pids: number[];
  /** network namespaces that existed before this node started (not ours). */
  netnsBefore: string[];
  startedAt: number;
}

export interface ReclaimReport {
  actions: string[];
}

/**
 * Removes whatever a node run under `dataDir` left (idempotent; used by stop and by
 * the next start after a crash). Never touches a process, mount or namespace that
 * is not ours: processes by recorded pid, our cgroups and our containerd socket;
 * mounts under our dir; namespaces created since our start that were not there before.
 */
export async function reclaimRealNode(dataDir: string, binDir: string | undefined, log: Logger = silentLogger): Promise<ReclaimReport> {
  const dir = nodeDir(dataDir);
  const actions: string[] = [];
  let state: NodeState | undefined;
  try {
    state = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as NodeState;
  } catch { /* no state: nothing recorded */ }
  // 1. processes: recorded components, then containers (kubepods cgroups), then shims.
  const recorded = (state?.pids ?? []).filter(alive);
  if (recorded.length) {
    killAll(recorded, 'SIGKILL');
    actions.push(`killed recorded pids ${recorded.join(',')}`);
  }
  const sock = join(dir, 'containerd', 'containerd.sock');
  for (let i = 0; i < 5; i++) {
    const pids = [...new Set([...cgroupDirs(KUBEPODS).flatMap(pidsInCgroupTree), ...pidsWithArg(sock)])];
    if (pids.length === 0) break;
    killAll(pids, 'SIGKILL');
    if (i === 0) actions.push(`killed ${pids.length} container/shim processes`);
    await sleep(200);
  }
  // 2. mounts under our dir (kubelet pod volumes, containerd rootfs and shm, sandboxes),
  //    the loop volumes too (node-volumes reclaims their loop devices at its start).
  const unmounted = await unmountUnder(dir);
  if (unmounted.length) actions.push(`unmounted ${unmounted.length} mounts under ${dir}`);
  // 3. network namespaces the CRI made for our pods.
  if (state) {
    const before = new Set(state.netnsBefore);
    for (const ns of listNetns()) {
      if (before.has(ns) || !ns.startsWith('cni-')) continue;
      await trySh('ip', ['netns', 'delete', ns]);
      actions.push(`netns ${ns}`);
    }
  }
  // 4. kube-proxy's rules, the bridge and our FORWARD rules.
  if (binDir && existsSync(join(binDir, 'kube-proxy')) && state) {
    await trySh(join(binDir, 'kube-proxy'), ['--cleanup', '--v=0']);
    actions.push('kube-proxy --cleanup');
  }
  if (state) actions.push(...(await removeKubeletChains()));
  actions.push(...(await removeBridge(BRIDGE)));
  // 5. cgroups (kubelet made kubepods/ in every hierarchy).
  for (const cg of cgroupDirs(KUBEPODS)) {
    if (removeCgroupTree(cg)) actions.push(`cgroup ${cg}`);
    else log.warn({ cgroup: cg }, 'real node: a cgroup is still busy');
  }
  await rm(join(dir, STATE_FILE), { force: true });
  if (actions.length) log.info({ actions }, 'real node: reclaimed');
  return { actions };
}

/** What a stopped node must not have left: returns one line per leftover (empty = clean). */
export function leftovers(dataDir: string): string[] {
  const dir = nodeDir(dataDir);
  const out: string[] = [];
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir + '/'));
  if (mounts.length) out.push(`${mounts.length} mounts under ${dir}`);
  if (existsSync(`/sys/class/net/${BRIDGE.name}`)) out.push(`bridge ${BRIDGE.name}`);
  const shims = pidsWithArg(join(dir, 'containerd', 'containerd.sock'));
  if (shims.length) out.push(`processes naming our containerd socket: ${shims.join(',')}`);
  const cgs = cgroupDirs(KUBEPODS);
  if (cgs.length) out.push(`cgroups ${cgs.join(',')}`);
  return out;
}

export interface RealNodeOptions {
  dataDir: string;
  /** Directory from test/realnode/install.sh. */
  binDir: string;
  /** Admin kubeconfig + server URL + CA of the control plane. */
  server: string;
  caCertPath: string;
  adminKubeConfig: KubeConfig;
  /** docker image tags to load into containerd's k8s.io namespace (docker save | ctr import). */
  images: string[];
  log?: Logger;
  startTimeoutMs?: number;
}

export interface RealNode {
  name: string;
  containerdSocket: string;
  logFiles: Record<string, string>;
  /** `ctr` against this node's containerd, namespace k8s.io. */
  ctr(args: string[]): Promise<string>;
  /** Host pid of a container's main process (containerd task). */
  containerPid(containerId: string): Promise<number>;
  stop(): Promise<ReclaimReport>;
}

export async function startRealNode(o: RealNodeOptions): Promise<RealNode> {
  const log = o.log ?? silentLogger;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) throw new Error('real node: needs Linux and root (containerd, kubelet, loop volumes)');
  const dir = nodeDir(o.dataDir);
  const t0 = performance.now();
  const since = () => Math.round(performance.now() - t0);
  // Whatever a crashed run left.
  await reclaimRealNode(o.dataDir, o.binDir, log);
  await mkdir(dir, { recursive: true });
  await ensureBridge(BRIDGE);
  const { pki } = await ensurePki(join(o.dataDir, 'pki'));
  const certs = join(dir, 'pki');
  await mkdir(certs, { recursive: true, mode: 0o700 });
  const bin = (n: string) => join(o.binDir, n);

  const state: NodeState = { pids: [], netnsBefore: listNetns(), startedAt: Date.now() };
  const saveState = () => writeFileSync(join(dir, STATE_FILE), JSON.stringify(state));
  saveState();

  const reaper = await Reaper.start();
  const procs: ComponentProcess[] = [];
  const logFiles: Record<string, string> = {};
  await mkdir(join(dir, 'logs'), { recursive: true });
  const start = async (name: string, command: string, args: string[]) => {
    const logFile = join(dir, 'logs', `${name}.log`);
    logFiles[name] = logFile;
    const p = await spawnComponent({ name: name as never, command, args, logFile, log, reaper });
    procs.push(p);
    state.pids.push(p.pid);
    saveState();
    log.info({ component: name, pid: p.pid, ms: since() }, `real node: ${name} started`);
    return p;
  };
  const deadline = Date.now() + (o.startTimeoutMs ?? 180_000);
  const waitFor = async (what: string, proc: ComponentProcess | undefined, probe: () => Promise<boolean>) => {
    for (;;) {
      if (proc && !proc.running) throw new Error(`real node: ${proc.name} exited while waiting for ${what}\n${proc.tail()}`);
      if (await probe().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`real node: timed out waiting for ${what}${proc ? `\n${proc.tail()}` : ''}`);
      await sleep(250);
    }
  };

  let volumes: NodeVolumes | undefined;
  let storageTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<ReclaimReport> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (storageTimer) clearInterval(storageTimer);
      // kube-proxy, scheduler, kubelet, then containerd (reverse start order).
      for (const p of [...procs].reverse()) await p.stop(10_000).catch(() => undefined);
      await reaper.close().catch(() => undefined);
      const report = await reclaimRealNode(o.dataDir, o.binDir, log);
      // loop volumes: unmounted above; node-volumes detaches its loop devices.
      await volumes?.stop().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'real node: volumes stop'));
      log.info({ actions: report.actions.length }, 'real node: stopped');
      return report;
    })();
    return stopping;
  };

  try {
    // --- containerd -------------------------------------------------------------
    const cdir = join(dir, 'containerd');
    const sock = join(cdir, 'containerd.sock');
    const cniConf = join(dir, 'cni', 'net.d');
    await mkdir(cniConf, { recursive: true });
    await writeFile(join(cniConf, '10-eventlog.conflist'), JSON.stringify({
      cniVersion: '0.4.0',
      name: 'eventlog-e2e',
      plugins: [
        {
          type: 'bridge', bridge: BRIDGE.name, isGateway: true, ipMasq: false, hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: POD_CIDR, gateway: BRIDGE.gateway }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'cni', 'ipam') },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    }, null, 2));
    const pauseImage = 'docker.io/library/eventlog-pause:local';
    await writeFile(join(cdir + '.toml'), `version = 3
root = "${cdir}/root"
state = "${cdir}/state"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
[metrics]
  address = ""
[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = "${cdir}/opt"
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "${pauseImage}"
  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "${bin('runc')}"
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = "${cniConf}"
      max_conf_num = 1
  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
`);
    process.env.PATH = `${o.binDir}:${process.env.PATH}`; // the shim is found on PATH
    const containerd = await start('containerd', bin('containerd'), ['--config', `${cdir}.toml`, '--log-level', 'warn']);
    const ctr = (args: string[]) => sh(bin('ctr'), ['--address', sock, '--namespace', 'k8s.io', ...args], { timeoutMs: 300_000 });
    await waitFor('containerd socket', containerd, async () => (await ctr(['version'])).includes('Server'));

    // Images: the pause image and the project's image(s), from docker.
    const pauseTar = join(o.binDir, 'pause.tar');
    await ctr(['images', 'import', '--no-unpack=false', pauseTar]).catch(async () => ctr(['images', 'import', pauseTar]));
    for (const image of o.images) {
      const tar = join(dir, 'image.tar');
      await sh('docker', ['save', '-o', tar, image], { timeoutMs: 300_000 });
      await ctr(['images', 'import', tar]);
      await rm(tar, { force: true });
    }
    log.info({ images: o.images, ms: since() }, 'real node: images imported');

    // --- credentials ---------------------------------------------------------------
    const kubeletCert = await signClient(pki, certs, 'kubelet', `/O=system:nodes/CN=system:node:${NODE_NAME}`);
    const kubeletServing = await signClient(pki, certs, 'kubelet-serving', `/CN=${NODE_NAME}`, [`IP:${BRIDGE.gateway}`, `DNS:${NODE_NAME}`]);
    const proxyCert = await signClient(pki, certs, 'kube-proxy', '/CN=system:kube-proxy');
    const schedCert = await signClient(pki, certs, 'kube-scheduler', '/CN=system:kube-scheduler');
    const kc = async (name: string, c: { cert: string; key: string }, user: string) => {
      const path = join(dir, `${name}.kubeconfig`);
      await writeKubeconfig(path, { server: o.server, caCertFile: o.caCertPath, clientCertFile: c.cert, clientKeyFile: c.key, user });
      return path;
    };
    const [kubeletPort, proxyHealth, proxyMetrics] = (await freePorts(3)) as [number, number, number];

    // --- kube-scheduler ------------------------------------------------------------------
    const schedKc = await kc('kube-scheduler', schedCert, 'system:kube-scheduler');
    await start('kube-scheduler', bin('kube-scheduler'), [`--kubeconfig=${schedKc}`, '--leader-elect=false', '--secure-port=0', '--v=1']);

    // --- kubelet -----------------------------------------------------------------------
    const kubeletKc = await kc('kubelet', kubeletCert, `system:node:${NODE_NAME}`);
    const kubeletDir = join(dir, 'kubelet');
    await mkdir(join(kubeletDir, 'pod-logs'), { recursive: true });
    await writeFile(join(dir, 'kubelet.yaml'), JSON.stringify({
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      failCgroupV1: false, // this machine has cgroup v1; kubelet 1.35 refuses it otherwise
      cgroupDriver: 'cgroupfs',
      containerRuntimeEndpoint: `unix://${sock}`,
      address: BRIDGE.gateway,
      port: kubeletPort,
      readOnlyPort: 0,
      healthzPort: 0,
      tlsCertFile: kubeletServing.cert,
      tlsPrivateKeyFile: kubeletServing.key,
      authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: o.caCertPath } },
      authorization: { mode: 'Webhook' },
      failSwapOn: false,
      // Our images were imported, not pulled: never garbage-collect them.
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      // A busy shared disk must not evict the test's pods.
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '0%', 'nodefs.inodesFree': '0%', 'imagefs.available': '0%', 'imagefs.inodesFree': '0%' },
      maxPods: 30,
      podLogsDir: join(kubeletDir, 'pod-logs'),
      serializeImagePulls: false,
      registerNode: true,
      nodeStatusUpdateFrequency: '5s',
      syncFrequency: '10s',
      resolvConf: '/etc/resolv.conf',
      shutdownGracePeriod: '0s',
    }, null, 2));
    const kubelet = await start('kubelet', bin('kubelet'), [
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${kubeletKc}`,
      `--root-dir=${kubeletDir}`,
      `--cert-dir=${join(kubeletDir, 'pki')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${BRIDGE.gateway}`,
      '--v=1',
    ]);

    // --- kube-proxy ----------------------------------------------------------------------
    const proxyKc = await kc('kube-proxy', proxyCert, 'system:kube-proxy');
    await writeFile(join(dir, 'kube-proxy.yaml'), JSON.stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig: proxyKc },
      mode: 'iptables',
      clusterCIDR: POD_CIDR,
      hostnameOverride: NODE_NAME,
      healthzBindAddress: `127.0.0.1:${proxyHealth}`,
      metricsBindAddress: `127.0.0.1:${proxyMetrics}`,
      // Leave the host's conntrack sysctls alone.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    }, null, 2));
    await start('kube-proxy', bin('kube-proxy'), [`--config=${join(dir, 'kube-proxy.yaml')}`, '--v=1']);

    // --- storage: default StorageClass + provisioner on ext4 loop volumes ---------------
    const paths = agentPaths(join(dir, 'storage'));
    volumes = await NodeVolumes.start({ paths, log, registryDir: join(dir, 'volume-registry') });
    const core = o.adminKubeConfig.makeApiClient(CoreV1Api);
    const storage = new StorageProvisioner({
      core, storage: o.adminKubeConfig.makeApiClient(StorageV1Api), paths, nodeName: NODE_NAME, log, volumes,
      events: eventRecorder(core, provisionerName, NODE_NAME, log),
    });
    await storage.ensureStorageClasses();
    let syncing = false;
    storageTimer = setInterval(() => {
      if (syncing) return;
      syncing = true;
      storage.sync().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'real node: storage sync failed; will retry')).finally(() => { syncing = false; });
    }, 1_000);

    // --- Ready ---------------------------------------------------------------------------
    await waitFor(`Node ${NODE_NAME} Ready`, kubelet, async () => {
      const n = await core.readNode({ name: NODE_NAME });
      const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      const tainted = (n.spec?.taints ?? []).some((t) => t.key.startsWith('node.kubernetes.io/'));
      return ready && !tainted;
    });
    log.info({ node: NODE_NAME, ms: since() }, 'real node: Ready');

    return {
      name: NODE_NAME,
      containerdSocket: sock,
      logFiles,
      ctr,
      containerPid: async (id: string) => {
        const out = await ctr(['tasks', 'ls']);
        const line = out.split('\n').find((l) => l.startsWith(id));
        const pid = Number(line?.trim().split(/\s+/)[1]);
        if (!line || !Number.isInteger(pid) || pid <= 0) throw new Error(`real node: no running task for container ${id}\n${out}`);
        return pid;
      },
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

export const defaultHostname = hostname;
