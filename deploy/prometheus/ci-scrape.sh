#!/usr/bin/env bash
# Scrapes a running valora with a real Prometheus server: builds valora, starts
# `valora dev` (embedded broker, generated traffic, the scorer) on free ports,
# starts Prometheus with a 1 s scrape interval and the alert rules of
# deploy/prometheus/alerts.yml, and polls Prometheus' HTTP API until records
# are being applied and customers are counted per tier. Prints the results and
# stops everything it started.
#
# Needs Go, python3, curl and the prometheus server (Debian package
# `prometheus`). CI_SCRAPE_TIMEOUT (seconds, default 90) bounds the wait.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout_s=${CI_SCRAPE_TIMEOUT:-90}
prometheus_bin=${PROMETHEUS:-prometheus}
for tool in go python3 curl "$prometheus_bin"; do
  command -v "$tool" >/dev/null || { echo "ci-scrape: $tool not found" >&2; exit 1; }
done

tmp=$(mktemp -d)
dev_pid=
prom_pid=
stop() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$prom_pid"
  stop "$dev_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "ci-scrape: $*" >&2
  for f in dev.out dev.err prometheus.log; do
    [ -f "$tmp/$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$tmp/$f" >&2; }
  done
  exit 1
}
# The same build as deploy/Dockerfile (deploy/deploy_test.go checks it).
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/valora" ./cmd/valora
start=$SECONDS
deadline=$((start + timeout_s))

# valora dev on free ports: the broker on any port, HTTP on any port of
# 127.0.0.1 (it prints the address it got), state under $tmp.
"$tmp/valora" dev --kafka-port 0 --http-addr 127.0.0.1:0 --state-dir "$tmp/state" \
  --customers 500 --speed 96h --summary-interval 1h </dev/null >"$tmp/dev.out" 2>"$tmp/dev.err" &
dev_pid=$!
metrics_addr=
until [ -n "$metrics_addr" ]; do
  kill -0 "$dev_pid" 2>/dev/null || fail "valora dev exited"
  [ $SECONDS -lt $deadline ] || fail "valora dev printed no HTTP address within ${timeout_s}s"
  metrics_addr=$(sed -n 's|^http: *http://\([^/]*\)/metrics$|\1|p' "$tmp/dev.out")
  [ -n "$metrics_addr" ] || sleep 0.2
done
echo "valora dev: metrics at http://$metrics_addr/metrics"

prom_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: valora
    static_configs:
      - targets: ["$metrics_addr"]
EOF
"$prometheus_bin" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
api="http://127.0.0.1:$prom_port/api/v1"

# query EXPR prints "labels value" lines of an instant query's result, and
# nothing when the result is empty or Prometheus is not answering yet.
query() {
  curl -fsS --max-time 5 --get --data-urlencode "query=$1" "$api/query" 2>/dev/null |
    python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]["result"]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(r["metric"].items())) or "{}"
    print(labels, r["value"][1])
' 2>/dev/null || true
}

applied_q='sum(rate(valora_records_applied_total[15s])) > 0'
tiers_q='sum(valora_customers) > 0'
while :; do
  kill -0 "$dev_pid" 2>/dev/null || fail "valora dev exited"
  kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited"
  applied=$(query "$applied_q")
  tiers=$(query "$tiers_q")
  [ -n "$applied" ] && [ -n "$tiers" ] && break
  [ $SECONDS -lt $deadline ] || fail "no answer to '$applied_q' and '$tiers_q' within ${timeout_s}s"
  sleep 1
done

rules=$(curl -fsS --max-time 5 "$api/rules" |
  python3 -c 'import json, sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
[ "$rules" -gt 0 ] || fail "prometheus loaded no alert rules"
echo "prometheus $("$prometheus_bin" --version 2>&1 | head -n 1 | awk '{print $3}') on 127.0.0.1:$prom_port, $rules alert rules loaded"
echo "$applied_q  =>  ${applied#* }"
echo "$tiers_q  =>  ${tiers#* }"
echo "sum by (tier) (valora_customers):"
query 'sort_desc(sum by (tier) (valora_customers))' | sed 's/^/  /'
echo "up{job=\"valora\"}: $(query 'up{job="valora"}' | awk '{print $2}')"
echo "ci-scrape: ok, $((SECONDS - start)) s after starting valora dev"
