#!/usr/bin/env bash
# End-to-end smoke test of a running local broker (start it with up.sh first):
# a 2-partition topic, keyed produce + consume in a consumer group, and a transactional
# produce (commit + abort) read back with isolation.level=read_committed (TxSmoke.java).
#   VALORA_TEST_BROKERS   bootstrap address (default 127.0.0.1:$KAFKA_PORT)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"

B=${VALORA_TEST_BROKERS:-$KL_BOOTSTRAP}
T0=$(kl_now_ms)
sfx=$$-$RANDOM
topic=valora-smoke-$sfx
txtopic=valora-smoke-tx-$sfx
tool() { "$here/tool.sh" "$@"; }
fail() { kl_die "smoke: $*"; }

tool topics --bootstrap-server "$B" --create --topic "$topic" --partitions 2 --replication-factor 1 >&2
desc=$(tool topics --bootstrap-server "$B" --describe --topic "$topic")
[[ $(grep -c 'Leader: 1' <<<"$desc") == 2 ]] || fail "topic $topic does not have 2 partitions led by broker 1: $desc"

printf 'k%d:v%d\n' 1 1 2 2 3 3 4 4 5 5 6 6 |
  tool console-producer --bootstrap-server "$B" --topic "$topic" \
    --reader-property parse.key=true --reader-property key.separator=: --command-property acks=all
got=$(tool console-consumer --bootstrap-server "$B" --topic "$topic" --group "smoke-$sfx" \
  --from-beginning --max-messages 6 --timeout-ms 30000 \
  --formatter-property print.key=true --formatter-property print.partition=true 2>/dev/null)
printf '%s\n' "$got" >&2
[[ $(grep -c 'v' <<<"$got") == 6 ]] || fail "expected 6 records back from $topic"
[[ $(cut -f1 <<<"$got" | sort -u | wc -l) == 2 ]] || fail "expected records in both partitions of $topic"
tool consumer-groups --bootstrap-server "$B" --describe --group "smoke-$sfx" >&2 2>/dev/null || true

tool topics --bootstrap-server "$B" --create --topic "$txtopic" --partitions 2 --replication-factor 1 >&2
kl_require_java
"$KL_JAVA" "${KL_TOOL_JVM[@]}" -cp "$KL_LIBS/*" "$here/TxSmoke.java" "$B" "$txtopic" ||
  fail "transactional produce/consume failed"

tool topics --bootstrap-server "$B" --delete --topic "$topic"
tool topics --bootstrap-server "$B" --delete --topic "$txtopic"
echo "smoke: OK against $B in $(kl_secs_since "$T0")s"
