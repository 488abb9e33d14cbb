/**
 * kubeconfig files for the local control plane: self-contained (certificates
 * embedded as base64 data, not file paths), so a copied file keeps working, and
 * verifying the API server's certificate against the local CA (no
 * insecure-skip-tls-verify).
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';

export const CLUSTER_NAME = 'eventlog-local';

export interface KubeconfigSpec {
  server: string;
  caCertFile: string;
  /** Client certificate credential... */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** ...or a bearer token. */
  token?: string;
  user: string;
  namespace?: string;
}

const b64 = (file: string) => readFileSync(file).toString('base64');

/** The kubeconfig document as YAML. */
export function renderKubeconfig(spec: KubeconfigSpec): string {
  const user: Record<string, string> = {};
  if (spec.clientCertFile && spec.clientKeyFile) {
    user['client-certificate-data'] = b64(spec.clientCertFile);
    user['client-key-data'] = b64(spec.clientKeyFile);
  }
  if (spec.token) user.token = spec.token;
  const context = `${spec.user}@${CLUSTER_NAME}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: CLUSTER_NAME, cluster: { server: spec.server, 'certificate-authority-data': b64(spec.caCertFile) } }],
    users: [{ name: spec.user, user }],
    contexts: [{ name: context, context: { cluster: CLUSTER_NAME, user: spec.user, namespace: spec.namespace ?? 'default' } }],
    'current-context': context,
    preferences: {},
  });
}

/** Writes a kubeconfig file (mode 0600: it holds a credential) and returns it loaded. */
export async function writeKubeconfig(path: string, spec: KubeconfigSpec): Promise<KubeConfig> {
  const text = renderKubeconfig(spec);
  await writeFile(path, text, { mode: 0o600 });
  const kc = new KubeConfig();
  kc.loadFromString(text);
  return kc;
}
