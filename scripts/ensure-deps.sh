#!/usr/bin/env bash
# Makes a fresh clone runnable: installs the npm dependencies (including Node 24,
# which the project pins as the `node` devDependency), the control-plane binaries and
# the Go test tools (each built once into a cache outside the repo). Idempotent and quiet when
# everything is already there; `npm test` and `npm run dev` call it first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -L node_modules ]]; then
  # A symlinked node_modules (a git worktree sharing another checkout's): never reinstall
  # it from here. `npm ci` would empty the directory it points to, under every checkout
  # that shares it, and its lock file is older than this checkout's by construction.
  if [[ ! -x node_modules/.bin/node ]]; then
    echo "[setup] error: node_modules links to $(readlink node_modules), which has no node_modules/.bin/node; run npm ci in that checkout" >&2
    exit 1
  fi
elif [[ ! -x node_modules/.bin/node || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[setup] installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

# Prints the binary directory as its last line; progress goes to stderr.
bash test/envtest/install.sh >/dev/null

# The Go-built test tools (test/tools/: kstatus, argocd-lua, promtool, rule-metrics), so
# the tests do not wait on a cold build; `npm run dev` does not need them.
if [[ ${npm_lifecycle_event:-} != dev ]]; then
  bash test/tools/install.sh >/dev/null
fi

# Docker for the container tier (test/container): as root (CI), install Debian's
# docker.io when there is no daemon binary; the daemon itself is started by
# scripts/docker-daemon.sh (called by scripts/build-image.sh) when needed.
if ! command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing docker.io (Debian) for the container tests" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  else
    echo "[setup] note: no Docker daemon here; the container tests (test/container) need one" >&2
  fi
fi

# The real node's binaries for the e2e tier (test/e2e: kubelet, kube-proxy, kube-scheduler,
# containerd, runc, a pause image), Linux + root only; `npm run dev` does not need them.
if [[ ${npm_lifecycle_event:-} != dev && $(uname -s) == Linux && $(id -u) -eq 0 ]]; then
  bash test/realnode/install.sh >/dev/null
fi
