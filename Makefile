# oak — build, test, lint. Every target does real work; see README.md.

GO        ?= go
BIN       := bin
FUZZTIME  ?= 5s
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

# package:FuzzTarget pairs run for FUZZTIME each by `make test`;
# run one for longer with e.g. `make fuzz FUZZTIME=10m`.
FUZZ_TARGETS := \
	./catalog:FuzzParseLabels \
	./catalog:FuzzBuild \
	./plugin/marathon:FuzzServeDNS \
	./watcher:FuzzLeanDecode \
	./watcher:FuzzFingerprint

.PHONY: build test unit fuzz lint demo bench bench-go bench-dns

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## test: all tests with the race detector, then each fuzz target for FUZZTIME.
test: unit fuzz

unit:
	$(GO) test -race -count=1 ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## demo: the seed's environments on the Marathon simulator, CoreDNS with the
## marathon plugin, real queries from each env, then the fallback. Ctrl-C stops.
demo: build
	$(BIN)/oak-demo -bin $(BIN)

## bench: every figure in BENCHMARKS.md: Go benchmarks, then bench-dns.
bench: bench-go bench-dns

## bench-go: catalog build/apply/resolve, watcher change latency and full
## resync, plugin handler; each against nothing but itself (see BENCHMARKS.md).
bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem ./catalog ./watcher ./plugin/marathon

## bench-dns: dnsperf against bin/coredns, marathon plugin vs stock hosts
## (10,000 names, same binary, same run), then the plugin under churn.
bench-dns: build
	$(GO) run ./test/benchdns -bin $(BIN) -out $(BIN)/bench-dns.md
