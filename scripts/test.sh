#!/usr/bin/env bash
# `npm test`: from a fresh clone, installs what is missing, type-checks, and runs
# every test tier: unit, server, integration and container together, then e2e (the
# real node) on its own, so the real node's kubelet, containerd and pods never share
# the 2 cores with the timing-sensitive integration tier. Extra arguments go to vitest
# and run exactly what they select, in one run (e.g. `npm test -- --project e2e`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
echo "[test] node $(node_modules/.bin/node --version); type-checking" >&2
node_modules/.bin/tsc -p tsconfig.json --noEmit

results_dir=$(mktemp -d)
trap 'rm -rf "$results_dir"' EXIT
status=0
run() { # run NAME vitest-args...
  local name=$1
  shift
  node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$results_dir/$name.json" "$@" || status=1
}
if (($# > 0)); then
  run selected "$@"
else
  run tiers --project unit --project server --project integration --project container
  echo "[test] the e2e tier (a real node: kubelet + containerd) runs on its own" >&2
  run e2e --project e2e
fi
# One plain summary line over every run, that any CI log reader understands.
node_modules/.bin/node -e '
  const fs = require("node:fs");
  let passed = 0, failed = 0, skipped = 0, missing = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { missing++; continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  if (missing) console.error(`[test] ${missing} run(s) wrote no results (a setup failed)`);
' "$results_dir"/*.json || true
exit "$status"
