#!/usr/bin/env bash
# Makes sure a Docker daemon answers (the container test tier and the image build
# need one). If none does and we are root (CI), starts `dockerd` in the background,
# fully detached, logging to $EVENTLOG_STATE_DIR/dockerd.log, and waits up to 60 s.
# Not root and no daemon: fails with what to do. Idempotent and quiet when it runs.
set -euo pipefail

STATE_DIR=${EVENTLOG_STATE_DIR:-${HOME:-/root}/.cache/eventlog}
log() { printf '[docker] %s\n' "$*" >&2; }
die() { printf '[docker] error: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "no docker CLI on PATH (Debian: apt-get install docker.io)"
docker info >/dev/null 2>&1 && exit 0

[[ $(id -u) -eq 0 ]] || die "the Docker daemon does not answer and only root may start it here; start it (e.g. systemctl start docker) and retry"
command -v dockerd >/dev/null 2>&1 || die "the Docker daemon is not running and there is no dockerd (Debian: apt-get install docker.io)"
mkdir -p "$STATE_DIR"
# Two callers at once must not start two daemons.
exec 8>"$STATE_DIR/dockerd-start.lock"
flock 8
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: $STATE_DIR/dockerd.log)"
  # No inherited stdio (callers that wait for our output must not wait for the
  # daemon) and no inherited lock fds (ours, and build-image.sh's 9).
  setsid dockerd >>"$STATE_DIR/dockerd.log" 2>&1 </dev/null 8>&- 9>&- &
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || die "dockerd did not come up within 60 s; see $STATE_DIR/dockerd.log"
  log "dockerd is up"
fi
