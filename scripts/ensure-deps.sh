#!/usr/bin/env bash
# Makes a fresh clone runnable: installs the npm dependencies (including Node 24,
# which the project pins as the `node` devDependency) and the control-plane
# binaries (built once into a cache outside the repo). Idempotent and quiet when
# everything is already there; `npm test` and `npm run dev` call it first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x node_modules/.bin/node || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[setup] installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

# Prints the binary directory as its last line; progress goes to stderr.
bash test/envtest/install.sh >/dev/null
