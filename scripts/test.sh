#!/usr/bin/env bash
# `npm test`: from a fresh clone, installs what is missing, type-checks, and runs
# every test tier (unit, server, integration, container). Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
echo "[test] node $(node_modules/.bin/node --version); type-checking" >&2
node_modules/.bin/tsc -p tsconfig.json --noEmit

results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
# One plain summary line that any CI log reader understands.
node_modules/.bin/node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$results" || true
exit "$status"
