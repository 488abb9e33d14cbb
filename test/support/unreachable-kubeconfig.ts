/**
 * A kubeconfig whose API server is port 1 on loopback: nothing listens, every list and
 * watch is refused and retried. For tests of an operator that must still stop cleanly
 * (SIGTERM) before its caches ever sync.
 */
export const UNREACHABLE_KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
`;
