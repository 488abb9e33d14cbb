/**
 * The local control plane's PKI: one CA that signs the kube-apiserver serving
 * certificate and the client certificates (admin, kube-controller-manager), and
 * the service-account token signing key pair. Generated with the `openssl` CLI
 * (Node can make keys but not X.509 certificates); EC P-256 keys, so generation
 * takes a few milliseconds. An existing, complete PKI directory is reused, so a
 * persistent data dir (`npm run dev`) keeps its kubeconfig and tokens valid
 * across restarts.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Identities baked into the client certificates. */
export const ADMIN_USER = 'eventlog-admin';
export const ADMIN_GROUP = 'system:masters';
/** The user the RBAC bootstrap policy binds to the system:kube-controller-manager role. */
export const CONTROLLER_MANAGER_USER = 'system:kube-controller-manager';

/** Names the serving certificate is valid for (the `kubernetes` Service's names too). */
export const SERVING_SANS = [
  'IP:127.0.0.1',
  'IP:10.0.0.1', // first address of --service-cluster-ip-range: the `kubernetes` Service
  'DNS:localhost',
  'DNS:kubernetes',
  'DNS:kubernetes.default',
  'DNS:kubernetes.default.svc',
  'DNS:kubernetes.default.svc.cluster.local',
];

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  controllerManagerCert: string;
  controllerManagerKey: string;
  /** Service-account token signing key (private, PKCS#8 PEM) and its public key. */
  serviceAccountKey: string;
  serviceAccountPub: string;
}

function pkiPaths(dir: string): Pki {
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    servingCert: p('apiserver.crt'),
    servingKey: p('apiserver.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    controllerManagerCert: p('controller-manager.crt'),
    controllerManagerKey: p('controller-manager.key'),
    serviceAccountKey: p('sa.key'),
    serviceAccountPub: p('sa.pub'),
  };
}

const DAYS = 3650;

function opensslConfig(commonName: string, extensions: string[]): string {
  return [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    'x509_extensions = ext',
    '[dn]',
    `CN = ${commonName}`,
    '[ext]',
    ...extensions,
    '',
  ].join('\n');
}

async function openssl(args: string[], step: string): Promise<void> {
  try {
    await execFileAsync('openssl', args, { timeout: 30_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: string };
    const hint = e.code === 'ENOENT' ? ' (is the openssl CLI installed?)' : '';
    throw new Error(`PKI: ${step} failed${hint}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

interface CertSpec {
  cert: string;
  key: string;
  /** openssl -subj, e.g. "/O=system:masters/CN=admin" */
  subject: string;
  extensions: string[];
  /** self-signed when absent */
  issuer?: { cert: string; key: string };
}

async function makeCert(dir: string, name: string, spec: CertSpec): Promise<void> {
  const cnf = join(dir, `${name}.cnf`);
  await writeFile(cnf, opensslConfig(name, spec.extensions));
  const args = [
    'req', '-x509', '-config', cnf,
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', spec.key, '-out', spec.cert, '-days', String(DAYS), '-subj', spec.subject,
  ];
  if (spec.issuer) args.push('-CA', spec.issuer.cert, '-CAkey', spec.issuer.key);
  await openssl(args, `creating the ${name} certificate`);
  await rm(cnf, { force: true });
}

const CLIENT_EXT = [
  'basicConstraints = critical,CA:FALSE',
  'keyUsage = critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage = clientAuth',
  'authorityKeyIdentifier = keyid',
];

/**
 * Returns the PKI in `dir`, creating it if any file is missing (a partial
 * directory is regenerated as a whole, so every certificate chains to one CA).
 */
export async function ensurePki(dir: string): Promise<{ pki: Pki; created: boolean }> {
  const pki = pkiPaths(dir);
  const files = Object.entries(pki).filter(([k]) => k !== 'dir').map(([, v]) => v);
  if (files.every((f) => existsSync(f))) return { pki, created: false };

  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });

  await makeCert(dir, 'eventlog-local-ca', {
    cert: pki.caCert,
    key: pki.caKey,
    subject: '/CN=eventlog-local-ca',
    extensions: [
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign,digitalSignature',
      'subjectKeyIdentifier = hash',
    ],
  });
  const issuer = { cert: pki.caCert, key: pki.caKey };
  await Promise.all([
    makeCert(dir, 'kube-apiserver', {
      cert: pki.servingCert,
      key: pki.servingKey,
      subject: '/CN=kube-apiserver',
      extensions: [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage = serverAuth',
        `subjectAltName = ${SERVING_SANS.join(',')}`,
        'authorityKeyIdentifier = keyid',
      ],
      issuer,
    }),
    makeCert(dir, 'admin', {
      cert: pki.adminCert,
      key: pki.adminKey,
      subject: `/O=${ADMIN_GROUP}/CN=${ADMIN_USER}`,
      extensions: CLIENT_EXT,
      issuer,
    }),
    makeCert(dir, 'controller-manager', {
      cert: pki.controllerManagerCert,
      key: pki.controllerManagerKey,
      subject: `/CN=${CONTROLLER_MANAGER_USER}`,
      extensions: CLIENT_EXT,
      issuer,
    }),
    (async () => {
      // RSA (RS256): the algorithm every service-account token consumer accepts.
      const { privateKey, publicKey } = generateKeyPairSync('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      });
      await writeFile(pki.serviceAccountKey, privateKey, { mode: 0o600 });
      await writeFile(pki.serviceAccountPub, publicKey);
    })(),
  ]);
  return { pki, created: true };
}
