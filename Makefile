# valora: common tasks. `make test` is the test command; `make ci` runs what CI runs.
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test test-race test-kafka crash faults lint bench bench-e2e bench-live fuzz dev ci clean

# The release build is static (as in deploy/Dockerfile): without cgo, Pebble's
# cache and memtables live in the Go heap, under the Go memory limit.
build:
	CGO_ENABLED=0 $(GO) build -o bin/valora ./cmd/valora

test:
	$(GO) test ./...

test-race:
	$(GO) test -race -short ./...

# The integration suite against a real single-node Apache Kafka (Maven jars).
test-kafka:
	@set -e; eval "$$(deploy/kafka-local/up.sh)"; export VALORA_TEST_BROKERS; \
	trap 'deploy/kafka-local/down.sh' EXIT; \
	$(GO) test -count=1 ./processor/... ./internal/... ./cmd/...

# The crash and scale-out tests over more seeds (CRASH_SEEDS each, both
# guarantees); against a real broker when VALORA_TEST_BROKERS is set.
CRASH_SEEDS ?= 10
crash:
	VALORA_CRASH_SEEDS=$(CRASH_SEEDS) $(GO) test -count=1 -timeout 2h -run 'TestScaleOutCrashes|TestCrashRestartSameState|TestCrashKafkaAheadOfStore|TestCrashRealProcesses' ./processor ./cmd/valora

# The fault suite: a real Apache Kafka broker of its own (deploy/kafka-local,
# port 19392) paused, killed and restarted under a `valora run` process.
faults:
	VALORA_FAULTS=1 $(GO) test -count=1 -timeout 30m -run 'TestFaultsRealBroker' -v ./cmd/valora

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(STATICCHECK) ./...

# Microbenchmarks (decode, score, state, cache, generator), with allocations.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./schemas ./state ./processor/... ./internal/gen

# The end-to-end benchmark of BENCHMARKS.md: 10M events, 1M customers, 12 partitions.
bench-e2e: build
	/usr/bin/time -v bin/valora bench

# Live traffic against a real Apache Kafka (deploy/kafka-local, started and
# stopped here): LIVE_RATE events/s for LIVE_DURATION into fresh topics of
# LIVE_PARTITIONS partitions, LIVE_GUARANTEE, latency per 10 s window.
LIVE_RATE ?= 5000
LIVE_DURATION ?= 60s
LIVE_PARTITIONS ?= 12
LIVE_GUARANTEE ?= exactly_once
LIVE_ARGS ?=
bench-live: build
	@set -e; eval "$$(deploy/kafka-local/up.sh)"; \
	trap 'deploy/kafka-local/down.sh' EXIT; \
	pid=$$(cat "$${VALORA_KAFKA_HOME:-$$HOME/.cache/valora-kafka}/$${KAFKA_VERSION:-4.3.1}/run-$${KAFKA_PORT:-19092}/kafka.pid"); \
	bin/valora bench --live --brokers "$$VALORA_TEST_BROKERS" --broker-pid "$$pid" \
	  --rate $(LIVE_RATE) --duration $(LIVE_DURATION) --partitions $(LIVE_PARTITIONS) \
	  --guarantee $(LIVE_GUARANTEE) $(LIVE_ARGS)

# Fuzzing, FUZZTIME per target: executions (Nx) rather than a duration,
# see .ci/fuzz (go test runs only the seed corpora; CI runs 20000x each).
FUZZTIME ?= 500000x
fuzz:
	FUZZTIME=$(FUZZTIME) .ci/fuzz

dev: build
	bin/valora dev

ci:
	bash .ci/run

clean:
	rm -rf bin
