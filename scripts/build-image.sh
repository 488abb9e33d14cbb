#!/usr/bin/env bash
# Builds the project image (default tag eventlog:dev, the operator's default log
# server image) from the Dockerfile, on any machine with Docker and no image
# registry. Idempotent: a content hash of the build inputs is stored as an image
# label, and nothing is rebuilt while it matches. Progress goes to stderr.
#
#   1. Docker daemon: scripts/docker-daemon.sh (if it does not answer and we are
#      root, as in CI, starts `dockerd` in the background and waits for it).
#   2. Base image: BASE_IMAGE (default node:24-bookworm-slim, the official image).
#      When BASE_IMAGE is not set and the official image is not present locally,
#      a stand-in is made and used instead: `eventlog-base:node24`, a minimal root
#      filesystem laid out like the official image (node in /usr/local/bin, npm in
#      /usr/local/lib/node_modules, /bin/sh and a few coreutils, glibc from this
#      Debian host) imported with `docker import`. Node is the project's own Node 24
#      (node_modules/node), npm is the host's npm. An explicit BASE_IMAGE is passed
#      through as is (docker pulls it if it can).
#   3. `docker build --network host` (npm ci inside the build needs the npm registry;
#      host networking reaches it the same way the host does) on a temporary copy of
#      the build inputs, with the host's extra CA bundle if it has one (below).
#
# Environment: BASE_IMAGE, EVENTLOG_IMAGE (tag, default eventlog:dev),
# EVENTLOG_LOCAL_BASE (stand-in tag, default eventlog-base:node24), EVENTLOG_STATE_DIR
# (locks and dockerd log, default ~/.cache/eventlog).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${EVENTLOG_IMAGE:-eventlog:dev}
OFFICIAL_BASE=node:24-bookworm-slim
LOCAL_BASE=${EVENTLOG_LOCAL_BASE:-eventlog-base:node24}
# Bump when the stand-in's recipe below changes, so existing ones are rebuilt.
LOCAL_BASE_RECIPE=1
STATE_DIR=${EVENTLOG_STATE_DIR:-${HOME:-/root}/.cache/eventlog}
HASH_LABEL=dev.eventlog.source-hash
started=$(date +%s)

log() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] error: %s\n' "$*" >&2; exit 1; }
mkdir -p "$STATE_DIR"

# Several people (or test runs) may build at once: one at a time.
exec 9>"$STATE_DIR/build-image.lock"
flock 9

# --- 1. the Docker daemon -----------------------------------------------------------
bash scripts/docker-daemon.sh

rootfs=
image_label() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

# --- 2. the base image --------------------------------------------------------------
make_local_base() {
  local node_bin npm_dir node_version npm_version recipe
  node_bin=$(readlink -f node_modules/node/bin/node 2>/dev/null || true)
  [[ -x $node_bin ]] || die "node_modules/node/bin/node is missing: run scripts/ensure-deps.sh first"
  node_version=$("$node_bin" --version)
  [[ $node_version == v24.* ]] || die "node_modules has Node $node_version, expected v24"
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [[ -f $npm_dir/package.json ]] || die "cannot find npm's package directory (from $(command -v npm))"
  npm_version=$("$node_bin" -p "require('$npm_dir/package.json').version")
  recipe="recipe=$LOCAL_BASE_RECIPE node=$node_version npm=$npm_version arch=$(uname -m)"
  if [[ $(image_label "$LOCAL_BASE" dev.eventlog.base-recipe) == "$recipe" ]]; then
    log "base: $LOCAL_BASE is up to date ($recipe)"
    return
  fi
  log "base: making $LOCAL_BASE from the local Node $node_version and npm $npm_version"
  local base_started=$SECONDS
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT  # replaced by the build's trap, which removes it too
  # Merged /usr, as in Debian bookworm (and so the official image).
  mkdir -p "$rootfs"/usr/{bin,sbin,lib,lib64,local/bin,local/lib/node_modules} "$rootfs"/{etc/ssl/certs,root,tmp,home}
  ln -s usr/bin "$rootfs/bin"; ln -s usr/sbin "$rootfs/sbin"; ln -s usr/lib "$rootfs/lib"; ln -s usr/lib64 "$rootfs/lib64"
  chmod 1777 "$rootfs/tmp"; chmod 0700 "$rootfs/root"

  cp "$node_bin" "$rootfs/usr/local/bin/node"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # A shell and the few tools a Dockerfile RUN line (and `npm run`) needs.
  local tools=(sh env ln chmod chown mkdir rm cp mv cat ls id)
  local bins=("$node_bin") tool path
  for tool in "${tools[@]}"; do
    path=$(command -v "$tool") || die "host tool $tool is missing"
    cp -L "$path" "$rootfs/usr/bin/$tool"
    bins+=("$(readlink -f "$path")")
  done
  # Their shared libraries, at the paths the dynamic linker looks for them.
  local lib
  while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done < <(ldd "${bins[@]}" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | sort -u)

  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"

  tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "ENV NODE_VERSION=${node_version#v}" \
      --change 'CMD ["node"]' \
      --change "LABEL dev.eventlog.base-recipe=\"$recipe\"" \
      - "$LOCAL_BASE" >/dev/null
  rm -rf "$rootfs"
  docker run --rm --network none "$LOCAL_BASE" node -e 'process.exit(process.versions.node.startsWith("24.") ? 0 : 1)' ||
    die "the new $LOCAL_BASE cannot run node"
  log "base: $LOCAL_BASE ready in $((SECONDS - base_started))s ($(docker image inspect -f '{{.Size}}' "$LOCAL_BASE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

if [[ -n ${BASE_IMAGE:-} ]]; then
  base=$BASE_IMAGE
elif docker image inspect "$OFFICIAL_BASE" >/dev/null 2>&1; then
  base=$OFFICIAL_BASE
else
  make_local_base
  base=$LOCAL_BASE
fi

# --- 3. the application image -------------------------------------------------------
# Everything the Dockerfile reads (see .dockerignore) plus the base image's id.
base_id=$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null || echo "$base")
hash=$(
  {
    echo "base=$base_id"
    sha256sum Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json
    find src -type f -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-32
)
if [[ $(image_label "$IMAGE" "$HASH_LABEL") == "$hash" ]]; then
  log "$IMAGE is up to date (inputs $hash, base $base)"
  exit 0
fi
log "building $IMAGE from $base (inputs $hash)"
# The build context is a copy of exactly the hashed files, plus, when this host
# trusts an extra CA for TLS (NODE_EXTRA_CA_CERTS or npm's cafile, e.g. behind an
# intercepting proxy), that bundle as npm-extra-ca.pem: the build stages' `npm ci`
# needs it to reach the registry; the final stage never copies it.
ctx=$(mktemp -d)
trap 'rm -rf "${rootfs:-}" "$ctx"' EXIT
cp -r Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json src "$ctx/"
ca=${NODE_EXTRA_CA_CERTS:-}
if [[ -z $ca ]] && command -v npm >/dev/null 2>&1; then
  ca=$(npm config get cafile 2>/dev/null || true)
fi
if [[ -n $ca && $ca != null && $ca != undefined && -f $ca ]]; then
  log "passing the host's extra CA bundle ($ca) to npm in the build stages"
  cp -L "$ca" "$ctx/npm-extra-ca.pem"
fi
docker build --force-rm --network host --build-arg "BASE_IMAGE=$base" --label "$HASH_LABEL=$hash" -t "$IMAGE" "$ctx" >&2
# The image this build replaced is now untagged: drop it (only ours, by label).
docker image prune -f --filter "label=$HASH_LABEL" >/dev/null
log "built $IMAGE in $(($(date +%s) - started))s ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
