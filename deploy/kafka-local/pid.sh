#!/usr/bin/env bash
# Print the pid of the broker started by up.sh (same KAFKA_VERSION / KAFKA_PORT /
# VALORA_KAFKA_HOME); exit 1 if none runs. The fault tests use it to pause
# (SIGSTOP) and kill the broker.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pid=$(kl_read_pid || true)
if [[ -n $pid ]] && kl_is_our_broker "$pid"; then
  printf '%s\n' "$pid"
  exit 0
fi
kl_die "no broker from up.sh runs on port $KAFKA_PORT"
