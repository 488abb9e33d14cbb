#!/usr/bin/env bash
# Builds the Go test tools (once, into a versioned cache outside the repo) and prints
# the path of each requested binary, one per line, on stdout:
#
#   test/tools/install.sh kstatus          # sigs.k8s.io/cli-utils kstatus on objects (cmd/kstatus)
#   test/tools/install.sh argocd-lua       # Argo CD's Lua VM for health checks and actions (cmd/argocd-lua)
#   test/tools/install.sh promtool         # Prometheus' promtool (test rules, check rules)
#   test/tools/install.sh rule-metrics     # the series each alert's PromQL selects (promtool/cmd/rule-metrics)
#   test/tools/install.sh                  # all four
#
# - kstatus and argocd-lua come from the module beside this script (go.mod pins
#   sigs.k8s.io/cli-utils, github.com/yuin/gopher-lua, layeh.com/gopher-json). Their
#   cache key is a hash of go.mod, go.sum and every .go file of the module, so editing a
#   harness rebuilds it; nothing else does.
# - promtool comes from promtool/go.mod (a `tool` line for
#   github.com/prometheus/prometheus/cmd/promtool); its cache key is the Prometheus module
#   version read from that go.mod plus a hash of promtool/go.sum. rule-metrics (Prometheus'
#   PromQL parser) is built from the same module; its key adds its own sources.
# - Cache: ${EVENTLOG_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventlog-tools}/<name>-<key>/.
#   A warm cache is only checked (binary present and answering), which takes
#   milliseconds and needs no Go. A build goes to a temporary directory beside the final
#   one and is renamed into place (an interrupted build never leaves a half-filled
#   cache); concurrent installs serialise on a lock file.
#
# Progress goes to stderr (with a heartbeat during long compiles); stdout carries only
# the binary paths. Exits non-zero, saying why, when a tool cannot be built.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${EVENTLOG_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventlog-tools}"

log() { printf 'tools-install: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../../scripts/lib/heartbeat.sh
source "$script_dir/../../scripts/lib/heartbeat.sh"

hash_files() { # stdin: file paths; stdout: 12 hex digits over names and contents
  local f
  while IFS= read -r f; do
    printf '%s\0' "${f#"$script_dir"/}"
    cat "$f"
  done | sha256sum | cut -c1-12
}

harness_key() {
  find "$script_dir" -path "$script_dir/promtool" -prune -o -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print | LC_ALL=C sort | hash_files
}

promtool_module_key() { # the Prometheus version and a hash of promtool/ (go.mod, go.sum, and for rule-metrics its sources)
  local v
  v="$(awk '$1 == "github.com/prometheus/prometheus" && $2 ~ /^v[0-9]/ { print $2; exit }' "$script_dir/promtool/go.mod")"
  [[ -n "$v" ]] || die "cannot read the github.com/prometheus/prometheus version from $script_dir/promtool/go.mod"
  printf 'prometheus-%s-%s' "$v" "$(find "$script_dir/promtool" -type f \( "$@" \) -print | LC_ALL=C sort | hash_files)"
}

# works NAME BIN: the binary exists and runs.
works() {
  local name="$1" bin="$2"
  [[ -x "$bin" ]] || return 1
  case "$name" in
    promtool) "$bin" --version >/dev/null 2>&1 && [[ -f "$(dirname "$bin")/BUILD-INFO" ]] ;;
    *) [[ -f "$(dirname "$bin")/BUILD-INFO" ]] ;;
  esac
}

# install NAME: prints the binary path.
install_tool() {
  local name="$1" module_dir pkg key hint
  case "$name" in
    kstatus | argocd-lua)
      module_dir="$script_dir"
      pkg="./cmd/$name"
      key="$(harness_key)"
      hint="a cold build takes about a minute on 2 cores (kstatus compiles k8s.io/api), seconds with a warm Go build cache"
      ;;
    promtool)
      module_dir="$script_dir/promtool"
      pkg="github.com/prometheus/prometheus/cmd/promtool"
      key="$(promtool_module_key -name go.mod -o -name go.sum)"
      hint="a cold build compiles every service discovery of Prometheus: about 10 minutes on 2 cores, plus module downloads on a fresh machine"
      ;;
    rule-metrics)
      module_dir="$script_dir/promtool"
      pkg="./cmd/rule-metrics"
      key="$(promtool_module_key -name go.mod -o -name go.sum -o -name '*.go')"
      hint="a cold build compiles Prometheus' PromQL parser: about a minute on 2 cores"
      ;;
    *) die "unknown tool '$name' (kstatus, argocd-lua, promtool, rule-metrics)" ;;
  esac

  local final="$cache_root/$name-$key"
  local bin="$final/$name"
  if works "$name" "$bin"; then
    log "cache hit: $name in $final"
    printf '%s\n' "$bin"
    return 0
  fi

  mkdir -p "$cache_root"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache_root/.lock"
    log "taking the cache lock $cache_root/.lock (waits while another install builds)"
    flock 9
    if works "$name" "$bin"; then
      log "cache filled by a concurrent install: $final"
      exec 9>&-
      printf '%s\n' "$bin"
      return 0
    fi
  fi

  command -v go >/dev/null 2>&1 || die "Go is needed to build $name (see the go directive in $module_dir/go.mod); none is on PATH"
  export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

  local tmp
  tmp="$(mktemp -d "$cache_root/.build-$name-XXXXXX")"
  log "building $name ($pkg) with $(go version); $hint"
  local start=$SECONDS status=0
  heartbeat_start "still building $name"
  (cd "$module_dir" && go build -mod=readonly -trimpath -ldflags='-s -w' -o "$tmp/$name" "$pkg") || status=$?
  heartbeat_stop
  if ((status != 0)); then
    rm -rf "$tmp"
    die "go build of $name failed (output above)"
  fi
  log "built $name in $((SECONDS - start))s"
  {
    echo "$name $key"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version)"
    go version -m "$tmp/$name" | grep -E '^\s+(dep|mod)\s+(sigs.k8s.io/cli-utils|github.com/yuin/gopher-lua|layeh.com/gopher-json|github.com/prometheus/prometheus)\s' || true
  } >"$tmp/BUILD-INFO"
  chmod 755 "$tmp"
  works "$name" "$tmp/$name" || { rm -rf "$tmp"; die "$tmp/$name does not run"; }
  [[ -e "$final" ]] && rm -rf "$final"
  mv "$tmp" "$final"
  exec 9>&- # release the lock
  log "installed $name into $final"
  printf '%s\n' "$bin"
}

tools=("$@")
((${#tools[@]})) || tools=(kstatus argocd-lua promtool rule-metrics)
for t in "${tools[@]}"; do
  install_tool "$t"
done
