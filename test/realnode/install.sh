#!/usr/bin/env bash
# Installs the real node's binaries for the e2e tier (dev/node/): kubelet,
# kube-scheduler, kube-proxy (k8s.io/kubernetes, the release test/envtest pins),
# containerd, containerd-shim-runc-v2, ctr (github.com/containerd/containerd/v2),
# runc (github.com/opencontainers/runc) and a pause image (pause.tar, a static C
# program FROM scratch, for `ctr images import`).
#
#   test/realnode/install.sh     # build (or reuse) and print the directory
#
# Versions: kubernetes/go.mod and containerd/go.mod beside this script and RUNC_VERSION below.
# Cache: ${EVENTLOG_REALNODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventlog-realnode}/k8s-<v>-containerd-<v>-runc-<v>/
# A warm cache is only checked. A build goes to a temporary directory and is renamed
# into place; concurrent installs are serialised by a lock. Progress goes to stderr,
# stdout is one line: the directory.
# Needs: Go, a C compiler, Debian libseccomp-dev + pkg-config (runc's seccomp), docker
# (only to build pause.tar).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUNC_VERSION=v1.3.3
binaries=(kubelet kube-scheduler kube-proxy containerd containerd-shim-runc-v2 ctr runc)

log() { printf 'realnode-install: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../../scripts/lib/heartbeat.sh
source "$script_dir/../../scripts/lib/heartbeat.sh"

has_all() {
  local dir="$1" b
  for b in "${binaries[@]}"; do
    [[ -x "$dir/$b" ]] || return 1
  done
  [[ -s "$dir/pause.tar" && -f "$dir/BUILD-INFO" ]] || return 1
  "$dir/kubelet" --version >/dev/null 2>&1 && "$dir/containerd" --version >/dev/null 2>&1 && "$dir/runc" --version >/dev/null 2>&1
}

# Two modules: containerd needs a newer k8s.io/cri-api than the kubernetes release pins.
k8s_version="$(awk '($1 == "k8s.io/kubernetes" || ($1 == "require" && $2 == "k8s.io/kubernetes")) { for (i = 1; i <= NF; i++) if ($i ~ /^v[0-9]/) { print $i; exit } }' "$script_dir/kubernetes/go.mod")"
containerd_version="$(awk '($1 == "github.com/containerd/containerd/v2" || $2 == "github.com/containerd/containerd/v2") { for (i = 1; i <= NF; i++) if ($i ~ /^v[0-9]/) { print $i; exit } }' "$script_dir/containerd/go.mod")"
[[ -n "$k8s_version" && -n "$containerd_version" ]] || die "cannot read the versions from $script_dir/{kubernetes,containerd}/go.mod"

cache_root="${EVENTLOG_REALNODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eventlog-realnode}"
final="$cache_root/k8s-$k8s_version-containerd-$containerd_version-runc-$RUNC_VERSION"

if has_all "$final"; then
  log "cache hit: $final"
  printf '%s\n' "$final"
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
log "taking the cache lock $cache_root/.lock (waits while another install runs)"
flock 9
if has_all "$final"; then
  log "cache filled by a concurrent install: $final"
  printf '%s\n' "$final"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "Go is needed to build the real node's binaries"
command -v cc >/dev/null 2>&1 || die "a C compiler (cc) is needed for runc and the pause program"
pkg-config --exists libseccomp 2>/dev/null || die "runc needs libseccomp: apt-get install libseccomp-dev pkg-config"

tmp="$(mktemp -d "$cache_root/.build-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
heartbeat_start "still building"
trap 'heartbeat_stop; rm -rf "$tmp"' EXIT

k8s_minor="${k8s_version#v1.}"; k8s_minor="${k8s_minor%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
vpkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$k8s_minor -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=$build_date"

log "building kubelet, kube-scheduler, kube-proxy $k8s_version with $(go version) (~30 s with a warm Go build cache)"
( cd "$script_dir/kubernetes" && go build -mod=mod -trimpath -ldflags="$k8s_ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy ) ||
  die "go build of the kubernetes binaries failed (output above)"
log "kubernetes binaries built at $((SECONDS - start))s"

log "building containerd $containerd_version (containerd, containerd-shim-runc-v2, ctr; ~2.5 min cold)"
cpkg=github.com/containerd/containerd/v2/version
( cd "$script_dir/containerd" && CGO_ENABLED=0 go build -mod=mod -trimpath \
    -ldflags="-s -w -X $cpkg.Version=$containerd_version -X $cpkg.Package=github.com/containerd/containerd/v2" -o "$tmp/" \
    github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr ) ||
  die "go build of containerd failed (output above)"
log "containerd built at $((SECONDS - start))s"

# runc: its go.mod replaces opencontainers/selinux with a directory its module zip
# lacks, so `go install @version` refuses it; build a copy with that replace dropped.
log "building runc $RUNC_VERSION (tag seccomp)"
runc_dir="$(cd "$script_dir/containerd" && GOFLAGS=-mod=mod go mod download -json "github.com/opencontainers/runc@$RUNC_VERSION" | awk -F'"' '$2 == "Dir" { print $4 }')"
[[ -d "$runc_dir" ]] || die "go mod download of runc $RUNC_VERSION failed"
cp -r "$runc_dir" "$tmp/runc-src"
chmod -R u+w "$tmp/runc-src"
sed -i '/^replace github.com\/opencontainers\/selinux/d' "$tmp/runc-src/go.mod"
rm -rf "$tmp/runc-src/vendor"
( cd "$tmp/runc-src" && go build -mod=mod -trimpath -tags seccomp -ldflags "-s -w -X main.version=${RUNC_VERSION#v}" -o "$tmp/runc" . ) ||
  die "go build of runc failed (output above)"
rm -rf "$tmp/runc-src"
log "runc built at $((SECONDS - start))s"

# The pause image: pause.c below, static, FROM scratch, saved as a docker archive.
log "building the pause image"
mkdir -p "$tmp/pause"
cat >"$tmp/pause/pause.c" <<'C'
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
static void quit(int s) { (void)s; _exit(0); }
int main(void) {
  signal(SIGINT, quit); signal(SIGTERM, quit); signal(SIGCHLD, reap);
  for (;;) pause();
}
C
cc -static -O2 -o "$tmp/pause/pause" "$tmp/pause/pause.c" || die "building pause.c failed (static glibc: libc6-dev)"
printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$tmp/pause/Dockerfile"
bash "$script_dir/../../scripts/docker-daemon.sh" >&2
docker build -q -t eventlog-pause:local "$tmp/pause" >&2 || die "docker build of the pause image failed"
docker save eventlog-pause:local -o "$tmp/pause.tar" || die "docker save of the pause image failed"
rm -rf "$tmp/pause"

heartbeat_stop
{
  echo "kubernetes $k8s_version"; echo "containerd $containerd_version"; echo "runc $RUNC_VERSION"
  echo "built $build_date with $(go version) in $((SECONDS - start))s"
} >"$tmp/BUILD-INFO"
chmod 755 "$tmp"
[[ -e "$final" ]] && rm -rf "$final"
mv "$tmp" "$final"
trap - EXIT
log "installed into $final in $((SECONDS - start))s"
printf '%s\n' "$final"
