#!/usr/bin/env bash
# Installs the Kubernetes control-plane binaries used by the integration tests and
# `npm run dev`: etcd, kube-apiserver and kube-controller-manager.
#
#   test/envtest/install.sh            # build (or reuse) and print the directory
#   export KUBEBUILDER_ASSETS="$(test/envtest/install.sh)"
#
# - If KUBEBUILDER_ASSETS names a directory that already holds all three binaries
#   (the envtest convention), that directory is used as is: no Go needed.
# - Otherwise the binaries are built with Go from the module beside this script
#   (go.mod pins k8s.io/kubernetes and go.etcd.io/etcd/server; the versions below
#   are read from it, never written twice) into a versioned cache directory
#   outside the repo:
#     ${EVENTLOG_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventlog-envtest}/k8s-<v>-etcd-<v>/
#   A warm cache is only checked (the binaries exist and run `--version`), which
#   takes seconds. A build goes to a temporary directory beside the final one and
#   is renamed into place, so an interrupted build never leaves a half-filled cache.
#
# Progress goes to stderr; stdout carries exactly one line, the directory holding
# the binaries, so `$(install.sh)` and `install.sh | tail -1` both work.
# dev/cluster/binaries.ts resolves the same directory (keep the two in step).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binaries=(etcd kube-apiserver kube-controller-manager)

log() { printf 'envtest-install: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../../scripts/lib/heartbeat.sh
source "$script_dir/../../scripts/lib/heartbeat.sh"

# has_all DIR: all binaries present, executable and answering --version.
has_all() {
  local dir="$1" b
  for b in "${binaries[@]}"; do
    [[ -x "$dir/$b" ]] || return 1
    "$dir/$b" --version >/dev/null 2>&1 || return 1
  done
}

# --- 1. KUBEBUILDER_ASSETS -----------------------------------------------------
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if has_all "$KUBEBUILDER_ASSETS"; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS (etcd, kube-apiserver, kube-controller-manager present)"
    printf '%s\n' "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  missing=()
  for b in "${binaries[@]}"; do [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || missing+=("$b"); done
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks a working: ${missing[*]:-(a binary failed --version)}"
  log "(setup-envtest assets hold no kube-controller-manager); building the full set into the cache instead"
fi

# --- 2. versions, from go.mod --------------------------------------------------
gomod="$script_dir/go.mod"
[[ -f "$gomod" ]] || die "missing $gomod"
k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "$gomod")"
etcd_version="$(grep -oE 'go\.etcd\.io/etcd/server/v3 v[0-9][^ ]*' "$gomod" | head -n1 | awk '{ print $2 }')"
[[ -n "$k8s_version" ]] || die "cannot read the k8s.io/kubernetes version from $gomod"
[[ -n "$etcd_version" ]] || die "cannot read the go.etcd.io/etcd/server/v3 version from $gomod"

cache_root="${EVENTLOG_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventlog-envtest}"
final="$cache_root/k8s-$k8s_version-etcd-$etcd_version"

# --- 3. warm cache -----------------------------------------------------------
if has_all "$final"; then
  log "cache hit: kubernetes $k8s_version, etcd $etcd_version in $final"
  printf '%s\n' "$final"
  exit 0
fi

# --- 4. build ----------------------------------------------------------------
mkdir -p "$cache_root"
# Serialise concurrent installs (two terminals, parallel CI steps) on one cache.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/.lock"
  log "taking the cache lock $cache_root/.lock (waits while another install runs)"
  flock 9
  if has_all "$final"; then # another install finished while we waited
    log "cache filled by a concurrent install: $final"
    printf '%s\n' "$final"
    exit 0
  fi
fi

command -v go >/dev/null 2>&1 ||
  die "Go is needed to build the binaries (see the go directive in $gomod), or set KUBEBUILDER_ASSETS to a directory holding ${binaries[*]}"

tmp="$(mktemp -d "$cache_root/.build-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

k8s_minor="${k8s_version#v1.}"; k8s_minor="${k8s_minor%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# Stamp the Kubernetes version into the binaries (as the upstream release build
# does), so /version and `kubectl version` report it instead of v0.0.0-master.
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$k8s_minor -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=$build_date"

log "building kubernetes $k8s_version (kube-apiserver, kube-controller-manager) and etcd $etcd_version with $(go version)"
log "a cold build compiles ~3000 packages: ~10 min on 2 cores (plus module downloads on a fresh machine); with a warm Go build cache under a minute"
start=$SECONDS
heartbeat_start "still building"
status=0
(
  cd "$script_dir"
  go build -trimpath -ldflags="$ldflags" -o "$tmp/" \
    ./cmd/etcd \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager
) || status=$?
heartbeat_stop
((status == 0)) || die "go build failed (output above)"
log "built in $((SECONDS - start))s"

for b in "${binaries[@]}"; do
  "$tmp/$b" --version >/dev/null 2>&1 || die "$tmp/$b does not run (--version failed)"
done
{
  echo "kubernetes $k8s_version"
  echo "etcd $etcd_version"
  echo "built $build_date with $(go version)"
  for b in "${binaries[@]}"; do echo "$b: $("$tmp/$b" --version 2>&1 | head -n1)"; done
} >"$tmp/BUILD-INFO"

chmod 755 "$tmp" # mktemp -d made it 0700

# Atomic publish: rename the finished directory into place (same filesystem).
if [[ -e "$final" ]]; then
  log "replacing the incomplete $final"
  rm -rf "$final"
fi
mv "$tmp" "$final"
trap - EXIT
log "installed into $final"
printf '%s\n' "$final"
