# Everything a developer or CI runs goes through these targets.
GO       ?= go
# bash, for pipefail: a failing benchmark must fail make bench, not vanish into tee.
SHELL    := /bin/bash
TOOLS    := $(CURDIR)/.tools
OCB_VERSION := v0.160.0
OCB      := $(TOOLS)/builder

# The distribution binary ocb builds from builder-config.yaml.
BINARY   := $(CURDIR)/_build/otelcol-copilotstudio

# The binary depends on the configs and on the Go sources of this module that
# its components compile in (their own packages and what they import from
# internal/). go list finds exactly those, so editing a test, a stand-in or
# cmd/localrun does not trigger an ocb rebuild (minutes on a cold cache).
# Every component directory is listed by pattern: a new component needs no edit here.
COMPONENT_DIRS := $(shell $(GO) list -e -deps -f '{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}' \
	$(foreach d,receiver processor exporter extension,$(if $(wildcard $(d)),./$(d)/...)) 2>/dev/null)
COMPONENT_SRCS := $(foreach d,$(COMPONENT_DIRS),$(filter-out %_test.go,$(wildcard $(d)/*.go)))

.PHONY: all build run test bench faults fuzz lint generate clean tools

all: lint test

# ocb is pinned and installed into the repo so every machine builds with the same one.
$(OCB):
	GOBIN=$(TOOLS) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

tools: $(OCB)

# Incremental: ocb runs only when the config, go.mod/go.sum or a component
# source changed; the Go build cache then recompiles only what changed.
$(BINARY): builder-config.yaml go.mod go.sum $(COMPONENT_SRCS) | $(OCB)
	$(OCB) --config builder-config.yaml --skip-strict-versioning=false
	@touch $@

build: $(BINARY)

# The whole pipeline on local stand-ins (or on Azure when AZURE_CLIENT_SECRET
# and APPINSIGHTS_APP_ID are set); see README.md. Ctrl-C stops everything.
# AKTO=http delivers to Akto's data ingestion service (a local stand-in unless
# AKTO_INGESTION_URL is set) instead of Kafka. On stand-ins every source runs;
# SOURCES=appinsights,transcripts,webhook (any of them) picks some.
AKTO ?= kafka
SOURCES ?=
run: build
	@# Built, not `go run`: go run exits 1 on Ctrl-C even when the program stops cleanly.
	$(GO) build -o _build/localrun ./cmd/localrun
	OTELCOL_BINARY=$(BINARY) _build/localrun -akto $(AKTO) -sources "$(SOURCES)"

# The end-to-end test runs the binary built above; it finds it through
# OTELCOL_BINARY and fails (does not skip) under CI=true when it is missing.
test: build
	OTELCOL_BINARY=$(BINARY) $(GO) test ./...

# Rounds of the pairing benchmarks that BENCHMARKS.md compares (see bench).
PAIR_ROUNDS ?= 5

# Component benchmarks, then the whole distribution on 1,000,000 generated rows
# (stand-in -> collector binary -> kfake), written up in BENCHMARKS.md with the
# machine; the hand-written "## Notes" section there is kept.
bench: build
	@mkdir -p _build
	@# One decode of the 100 MB response takes about a second: three of them, so warm-up does not dominate.
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./receiver/copilotstudioreceiver ./internal/appinsights | tee _build/bench.txt
	@# Transcript decoding: one 1 MB transcript and a page of 50, MB/s per CPU-second.
	set -o pipefail; $(GO) test -run '^$$' -bench TranscriptDecoding -benchmem -benchtime 5x ./receiver/copilotstudiotranscriptsreceiver/internal/transcript | tee -a _build/bench.txt
	@# The pairing benchmarks the notes compare with the stock batch processor run in
	@# $(PAIR_ROUNDS) interleaved rounds (benchreport shows each one's median and its CPU time's
	@# range): a single run on a shared VM varies by 10-30%.
	$(GO) test -c -o _build/activitypair.test ./processor/activitypairprocessor
	set -o pipefail; cd processor/activitypairprocessor && for round in $$(seq $(PAIR_ROUNDS)); do \
		../../_build/activitypair.test -test.run '^$$' -test.bench 'Pairing/open=1000$$|PairingFormats|BatchProcessor' -test.benchmem || exit 1; \
	done | tee -a ../../_build/bench.txt
	set -o pipefail; cd processor/activitypairprocessor && ../../_build/activitypair.test -test.run '^$$' -test.bench 'Pairing/open=10000+$$|OpenTurnMemory|BodyMemory|PairingSteps|ToolCalls' -test.benchmem | tee -a ../../_build/bench.txt
	@# 1,000,000 one-message conversations under max_buffered_bytes 64 MiB: the peak live heap and,
	@# in a process of its own, the peak RSS.
	set -o pipefail; cd processor/activitypairprocessor && ../../_build/activitypair.test -test.run '^$$' -test.bench 'Flood' -test.benchtime 1x | tee -a ../../_build/bench.txt
	@# Twenty saves after the warm-up cover a few snapshot cycles.
	set -o pipefail; $(GO) test -run '^$$' -bench Persist -benchtime 20x ./processor/activitypairprocessor | tee -a _build/bench.txt
	@# The akto exporter against the ingestion stand-in over loopback, in three
	@# rounds like the pairing benchmarks (the table shows the median round).
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -count 3 ./exporter/aktoexporter | tee -a _build/bench.txt
	set -o pipefail; $(GO) test -run '^$$' -bench ShippedProcessors -benchtime 5x ./internal/testing/e2e | tee -a _build/bench.txt
	@# Masking per MB of text. MASKING_BASELINE_CONFIG=<an earlier collector-config.yaml> measures
	@# its masking beside the shipped one's, in three rounds (one process each, both in every round).
	set -o pipefail; for round in $$(seq $(if $(MASKING_BASELINE_CONFIG),3,1)); do \
		MASKING_BASELINE_CONFIG=$(MASKING_BASELINE_CONFIG) $(GO) test -run '^$$' -bench MaskingCost -benchtime 5x ./internal/testing/e2e || exit 1; \
	done | tee -a _build/bench.txt
	@# Freshness of the Application Insights path per profile and of the transcripts path, and
	@# the late-ingestion check, in simulated time (the same figures on any machine; about half a
	@# minute of real time; after the e2e package's benchmarks, so that they stay one table).
	set -o pipefail; $(GO) test -run '^$$' -bench 'Freshness|LateIngestion' -benchtime 1x -timeout 20m ./internal/testing/freshness | tee -a _build/bench.txt
	@# The threat-detection webhook at 200 calls/s for a minute through the built collector
	@# (answer latency, call to Kafka, CPU per call; the webhook row of the freshness table).
	set -o pipefail; OTELCOL_BINARY=$(BINARY) $(GO) test -run '^$$' -bench 'Webhook|Freshness' -benchtime 1x -timeout 20m ./internal/testing/e2ebench | tee -a _build/bench.txt
	set -o pipefail; OTELCOL_BINARY=$(BINARY) $(GO) test -run '^$$' -bench BenchmarkDistribution -benchtime 1x -timeout 30m ./internal/testing/e2ebench | tee -a _build/bench.txt
	$(GO) run ./cmd/benchreport -out BENCHMARKS.md < _build/bench.txt

# Fault-injection suite at full size (10,000 conversations per scenario)
# against the real binary; writes internal/testing/faults/RESULTS.md, which the
# README's "Guarantees" quotes. `make test` runs the same scenarios small.
faults: build
	OTELCOL_BINARY=$(BINARY) FAULTS_FULL=1 FAULTS_RESULTS=$(CURDIR)/internal/testing/faults/RESULTS.md \
		$(GO) test -count=1 -timeout 90m -run '^TestFaults$$' -v ./internal/testing/faults

# Each fuzz target briefly beyond its checked-in seed corpus (testdata/fuzz),
# which go test already replays on every run. FUZZTIME=2000000x (or 5m) for a
# longer hunt. The default is a count of inputs, not a duration: with a
# duration, Go 1.26's fuzz coordinator can fail a target with "context
# deadline exceeded" as the time runs out, without any failing input
# (golang/go#75804, fixed in Go 1.27). 20,000 inputs take 1-20 s a target here.
FUZZTIME ?= 20000x
FUZZ_TARGETS := internal/appinsights:FuzzDecodeResponse internal/appinsights:FuzzScannerString receiver/copilotstudioreceiver:FuzzBuildWindow \
	receiver/copilotstudiotranscriptsreceiver/internal/transcript:FuzzParse \
	receiver/copilotstudiowebhookreceiver:FuzzDecodeToolCall \
	processor/activitypairprocessor/internal/pairing:FuzzPairing processor/activitypairprocessor:FuzzRestore
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./$$pkg; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

generate:
	@set -e; for m in $$(git ls-files '*/metadata.yaml'); do echo "mdatagen $$m"; (cd $$(dirname $$m) && $(GO) tool mdatagen metadata.yaml); done

clean:
	rm -rf _build
