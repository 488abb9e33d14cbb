# shellcheck shell=bash
# A progress line every 30 s during a long, silent step (a cold Go build is ~10 min), so
# CI logs do not look hung. Sourced by the install scripts, which define `log` (stderr).
#
#   heartbeat_start "building kubernetes"   # logs "<what>... <n>s" every 30 s
#   ...long step...
#   heartbeat_stop
#
# Guarantees: the heartbeat never writes to stdout, and stopping it also stops its
# pending `sleep`. An orphaned sleep would otherwise keep the caller's stdout open for up
# to 30 s, so `dir=$(install.sh)` would wait for it.

heartbeat_pid=""

heartbeat_start() { # heartbeat_start WHAT
  local what=$1 since=$SECONDS
  (
    nap=""
    trap '[[ -n $nap ]] && kill "$nap" 2>/dev/null; exit 0' TERM
    while :; do
      sleep 30 &
      nap=$!
      wait "$nap"
      log "$what... $((SECONDS - since))s"
    done
  ) >/dev/null &
  heartbeat_pid=$!
}

heartbeat_stop() {
  [[ -n $heartbeat_pid ]] || return 0
  kill "$heartbeat_pid" 2>/dev/null || true
  wait "$heartbeat_pid" 2>/dev/null || true
  heartbeat_pid=""
}
