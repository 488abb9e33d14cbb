#!/usr/bin/env bash
# `npm test`: from a fresh clone, installs what is missing, type-checks, and runs
# every test tier (unit, server, integration). Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
echo "[test] node $(node_modules/.bin/node --version); type-checking" >&2
node_modules/.bin/tsc -p tsconfig.json --noEmit
node_modules/.bin/vitest run "$@"
