# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared settings and helpers for up.sh, down.sh and tool.sh. Sourced, never run.
#
# Environment (all optional):
#   KAFKA_VERSION          Apache Kafka version to run               (default 4.3.1)
#   KAFKA_PORT             broker (PLAINTEXT) port on 127.0.0.1      (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1        (default KAFKA_PORT+1)
#   VALORA_KAFKA_HOME      cache/state root        (default $HOME/.cache/valora-kafka)
#   JAVA_HOME / JAVA       which java to use (17+)

KL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KL_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
KL_HOME=${VALORA_KAFKA_HOME:-${HOME:?HOME is not set}/.cache/valora-kafka}/$KAFKA_VERSION
KL_LIBS=$KL_HOME/libs
KL_MARKER=$KL_HOME/libs.complete
KL_RUN=$KL_HOME/run-$KAFKA_PORT
KL_PIDFILE=$KL_RUN/kafka.pid
KL_LOG=$KL_RUN/server.log
KL_PROPS=$KL_RUN/server.properties
# maven-dependency-plugin 3.8.1 is built against Maven 3.6.3 (works with the installed 3.8.x)
KL_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

if [[ -n ${JAVA:-} ]]; then
  KL_JAVA=$JAVA
elif [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
  KL_JAVA=$JAVA_HOME/bin/java
else
  KL_JAVA=java
fi

# Short-lived tool JVMs (format, probe, CLI tools): start fast, small heap.
KL_TOOL_JVM=(-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto
  "-Dlog4j2.configurationFile=$KL_DIR/log4j2-tools.properties")

kl_log() { printf 'kafka-local: %s\n' "$*" >&2; }
kl_die() { printf 'kafka-local: ERROR: %s\n' "$*" >&2; exit 1; }

# Milliseconds since the epoch (bash 5 EPOCHREALTIME; no date/awk fork).
kl_now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
kl_secs_since() { # $1 = start in ms -> "12.3"
  local d=$(($(kl_now_ms) - $1))
  printf '%d.%d' $((d / 1000)) $((d % 1000 / 100))
}

# Serialise up/down/cache work on one version (fd 9). Callers must not pass fd 9 on
# to long-lived children (the broker gets 9>&-), or the lock would live as long as the broker.
kl_lock() {
  mkdir -p "$KL_HOME"
  exec 9>"$KL_HOME/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w "${KAFKA_LOCK_TIMEOUT:-300}" 9 || kl_die "timed out waiting for $KL_HOME/.lock (another up.sh/down.sh?)"
  fi
}

kl_require_java() {
  command -v "$KL_JAVA" >/dev/null 2>&1 || kl_die "java not found (need Java 17+; set JAVA_HOME or JAVA)"
  local v major
  v=$("$KL_JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  major=${v%%.*}
  [[ $major == 1 ]] && major=$(cut -d. -f2 <<<"$v")
  [[ $major =~ ^[0-9]+$ ]] || kl_die "cannot parse the java version from '$KL_JAVA -version'"
  ((major >= 17)) || kl_die "Kafka $KAFKA_VERSION brokers need Java 17+, found $v ($KL_JAVA)"
}

# The cache is valid for one exact pom + version; editing pom.xml invalidates it.
kl_cache_key() {
  printf 'kafka=%s pom=%s\n' "$KAFKA_VERSION" "$(sha256sum "$KL_DIR/pom.xml" | cut -d' ' -f1)"
}

kl_libs_complete() {
  [[ -f $KL_MARKER && -d $KL_LIBS && "$(cat "$KL_MARKER")" == "$(kl_cache_key)" ]]
}

# Copy the runtime classpath into $KL_LIBS once. copy-dependencies never deletes stale
# jars, so always start from an empty directory, copy into a temp dir, then swap it in.
kl_ensure_libs() {
  kl_libs_complete && return 0
  command -v mvn >/dev/null 2>&1 || kl_die "mvn not found: needed once to fetch the Kafka jars from Maven Central"
  local tmp=$KL_HOME/libs.tmp.$$ t0
  t0=$(kl_now_ms)
  kl_log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KL_LIBS ..."
  rm -rf "$KL_LIBS" "$KL_MARKER" "$tmp"
  if ! mvn -q -B -ntp -f "$KL_DIR/pom.xml" "-Dkafka.version=$KAFKA_VERSION" \
    "$KL_DEP_PLUGIN:copy-dependencies" -DincludeScope=runtime "-DoutputDirectory=$tmp" \
    >"$KL_HOME/mvn.log" 2>&1; then
    rm -rf "$tmp"
    tail -n 40 "$KL_HOME/mvn.log" >&2
    kl_die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (no network to Maven Central, or version not served?)"
  fi
  [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || { rm -rf "$tmp"; kl_die "kafka_2.13-$KAFKA_VERSION.jar missing after copy-dependencies"; }
  mv "$tmp" "$KL_LIBS"
  kl_cache_key >"$KL_MARKER"
  kl_log "jars ready in $(kl_secs_since "$t0")s ($(du -sh "$KL_LIBS" | cut -f1), $(find "$KL_LIBS" -name '*.jar' | wc -l) jars)"
}

# Succeeds if something accepts TCP connections on 127.0.0.1:$1.
kl_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Succeeds if $1 is a live broker started by up.sh for this version+port.
kl_is_our_broker() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $KL_PROPS"
}

# SIGKILL $1 and wait (up to 10 s) until it is gone, so its ports are free again.
kl_kill_wait() {
  local pid=$1 i
  kill -KILL "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

kl_read_pid() { [[ -f $KL_PIDFILE ]] && tr -dc '0-9' <"$KL_PIDFILE"; }

# Run a Kafka CLI tool (main class $1) against the cached jars.
kl_tool() {
  local main=$1
  shift
  "$KL_JAVA" "${KL_TOOL_JVM[@]}" -cp "$KL_LIBS/*" "$main" "$@"
}

# A real protocol round trip: Metadata (to find the brokers) then ApiVersions to each.
# Prints the tool's output; succeeds when broker id 1 answered.
kl_probe() {
  local out
  out=$(timeout "${1:-30}" "$KL_JAVA" "${KL_TOOL_JVM[@]}" -cp "$KL_LIBS/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$KL_BOOTSTRAP" \
    --command-config "$KL_RUN/probe.properties" 2>&1) || { printf '%s\n' "$out"; return 1; }
  printf '%s\n' "$out"
  grep -q "^$KL_BOOTSTRAP (id: 1 rack" <<<"$out"
}
