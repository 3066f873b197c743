#!/usr/bin/env bash
# Run an Apache Kafka CLI tool from the cached jars (what bin/kafka-*.sh would run).
#   tool.sh NAME [ARGS...]      e.g.
#   tool.sh topics --bootstrap-server 127.0.0.1:19092 --create --topic t --partitions 2
# NAME is one of the short names below or a fully qualified main class.
# Uses the same KAFKA_VERSION / VALORA_KAFKA_HOME as up.sh (fetches the jars if needed).
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat >&2 <<'USAGE'
usage: tool.sh NAME [ARGS...]
  topics               org.apache.kafka.tools.TopicCommand              (kafka-topics.sh)
  console-producer     org.apache.kafka.tools.ConsoleProducer           (kafka-console-producer.sh)
  console-consumer     org.apache.kafka.tools.consumer.ConsoleConsumer  (kafka-console-consumer.sh)
  consumer-groups      org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
  get-offsets          org.apache.kafka.tools.GetOffsetShell
  transactions         org.apache.kafka.tools.TransactionsCommand
  broker-api-versions  org.apache.kafka.tools.BrokerApiVersionsCommand
  metadata-quorum      org.apache.kafka.tools.MetadataQuorumCommand
  configs              kafka.admin.ConfigCommand
  producer-perf-test   org.apache.kafka.tools.ProducerPerformance
  consumer-perf-test   org.apache.kafka.tools.ConsumerPerformance
  storage              kafka.tools.StorageTool
  <fully.qualified.MainClass>
USAGE
  exit 2
}

(($# >= 1)) || usage
case $1 in
  topics) main=org.apache.kafka.tools.TopicCommand ;;
  console-producer) main=org.apache.kafka.tools.ConsoleProducer ;;
  console-consumer) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  consumer-groups) main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  get-offsets) main=org.apache.kafka.tools.GetOffsetShell ;;
  transactions) main=org.apache.kafka.tools.TransactionsCommand ;;
  broker-api-versions) main=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  metadata-quorum) main=org.apache.kafka.tools.MetadataQuorumCommand ;;
  configs) main=kafka.admin.ConfigCommand ;;
  producer-perf-test) main=org.apache.kafka.tools.ProducerPerformance ;;
  consumer-perf-test) main=org.apache.kafka.tools.ConsumerPerformance ;;
  storage) main=kafka.tools.StorageTool ;;
  -h | --help | help) usage ;;
  *.*) main=$1 ;;
  *) usage ;;
esac
shift

if ! kl_libs_complete; then
  kl_require_java
  kl_lock
  kl_ensure_libs
  exec 9>&-
fi
exec "$KL_JAVA" "${KL_TOOL_JVM[@]}" -cp "$KL_LIBS/*" "$main" "$@"
