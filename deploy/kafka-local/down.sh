#!/usr/bin/env bash
# Stop the broker started by up.sh (same KAFKA_VERSION / KAFKA_PORT / VALORA_KAFKA_HOME) and
# delete its state dir (data, config, log). The jar cache is kept.
#   KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKA_KEEP_LOG=1     copy server.log to <cache>/last-server-<port>.log before deleting
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$(kl_now_ms)
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
[[ $STOP_TIMEOUT =~ ^[0-9]+$ ]] || kl_die "KAFKA_STOP_TIMEOUT must be a number of seconds"

[[ -d $KL_HOME ]] || { kl_log "nothing to stop ($KL_HOME does not exist)"; exit 0; }
kl_lock

pid=$(kl_read_pid || true)
if [[ -n $pid ]] && kl_is_our_broker "$pid"; then
  kl_log "stopping broker pid $pid (SIGTERM, SIGKILL after ${STOP_TIMEOUT}s) ..."
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    kl_log "broker pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
    kl_kill_wait "$pid"
  fi
  kl_log "broker stopped in $(kl_secs_since "$T0")s"
elif [[ -n $pid ]]; then
  kl_log "pid $pid from $KL_PIDFILE is not running (or is not our broker); cleaning up only"
else
  kl_log "no broker pid file at $KL_PIDFILE; cleaning up only"
fi

if [[ ${KAFKA_KEEP_LOG:-0} == 1 && -f $KL_LOG ]]; then
  cp "$KL_LOG" "$KL_HOME/last-server-$KAFKA_PORT.log"
fi
rm -rf "$KL_RUN"
kl_log "removed $KL_RUN (jar cache kept in $KL_LIBS)"
