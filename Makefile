# oak — build, test, lint. Every target does real work; see README.md.

GO        ?= go
BIN       := bin
# An execution count, not a duration: Go 1.26's fuzz coordinator can report a
# spurious "context deadline exceeded" when a duration runs out on a loaded
# machine (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline.
FUZZTIME  ?= 10000x
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

# package:FuzzTarget pairs run for FUZZTIME each by `make test`;
# run one for longer with e.g. `make fuzz FUZZTIME=10m`.
FUZZ_TARGETS := \
	./catalog:FuzzParseLabels \
	./catalog:FuzzBuild \
	./plugin/marathon:FuzzServeDNS \
	./nginxctl:FuzzSanitize \
	./nginxctl:FuzzStatusQuery \
	./watcher:FuzzSSEReader \
	./ipam:FuzzParseAppID \
	./ipam:FuzzDecodeAllocationRequest \
	./ipam:FuzzDecodeAppDefinition \
	./ipam:FuzzReadSpec \
	./watcher:FuzzLeanDecode \
	./watcher:FuzzFingerprint \
	./watcher:FuzzStatusUpdate \
	./marathonsim:FuzzPlanContainer

.PHONY: build test unit fuzz lint demo demo-docker screenshot bench bench-go bench-dns bench-nginx bench-ipam

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## test: all tests with the race detector, then each fuzz target for FUZZTIME.
test: unit fuzz

# -timeout: the ipam package took 168-231 s under the race detector in
# clean-clone CI runs (its 64 clients x 10,000 allocations, 159 s alone),
# up to 40% of go test's default 10 minutes per package; a slower machine
# must not fail CI for that.
unit:
	$(GO) test -race -count=1 -timeout 30m ./...

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

## demo-docker: the platform with real containers (needs a Docker engine and
## nginx): apps deployed through nginxctl run under marathon-sim -docker on a
## private test network; each line is what a container saw, through DNS
## and Nginx, as envs change and parts fail. Everything made is removed.
demo-docker:
	$(GO) test -count=1 -v -run '^TestPlatform$$' ./test/

## screenshot: docs/status-page.png, nginxctl's status page with the seed's
## envs as chromium shows it (the browser test writes it).
screenshot:
	cd test && OAK_STATUS_SCREENSHOT=../docs/status-page.png $(GO) test -count=1 -run='^TestStatusPageInBrowser$$' .

## bench: every figure in BENCHMARKS.md: Go benchmarks, bench-ipam, bench-dns, bench-nginx.
bench: bench-go bench-ipam bench-dns bench-nginx

## bench-go: catalog build/apply/resolve, watcher change latency and full
## resync, plugin handler; the plugin against stock hosts in one run
## (BenchmarkVersusHosts), the others against nothing but themselves (see
## BENCHMARKS.md).
bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem ./catalog ./watcher ./plugin/marathon

## bench-ipam: durable allocations/s with 64 clients, group commit vs one
## transaction per allocation (same run); restart, rebuild and reconcile
## with 10,000 allocations (see BENCHMARKS.md).
bench-ipam:
	$(GO) test -run='^$$' -bench=DurableAllocations -benchtime=20000x -count=3 ./ipam
	$(GO) test -run='^$$' -bench='Restart10k|Rebuild10k|Reconcile10k' -benchmem -count=3 ./ipam

## bench-dns: dnsperf against bin/coredns, marathon plugin vs stock hosts
## (10,000 names, same binary, same run), then both under Marathon churn
## (hosts, which follows no Marathon, as the control).
bench-dns: build
	$(GO) run ./test/benchdns -bin $(BIN) -out $(BIN)/bench-dns.md

## bench-nginx: nginxctl with a real nginx: render and nginx -t + reload of
## 10,000 vhosts in 100 envs, ours against one upstream per vhost (same
## run); a burst of 1,000 changes in 2 s; one isolated change to served;
## 20 reloads under load; the status page of 10,000 names in 100 envs
## against /v1/views. Prints one table.
NGINX_BENCH := \
	'^Benchmark(Render|Sanitize)$$':1s \
	'^BenchmarkNginxReload$$':5x \
	'^BenchmarkNginxBurst$$':2x \
	'^BenchmarkNginxIsolatedChange$$':50x \
	'^BenchmarkNginxReloadsUnderLoad$$':1x \
	'^BenchmarkStatusPage$$':1s
bench-nginx:
	@set -e; for b in $(NGINX_BENCH); do \
		$(GO) test -run='^$$' -bench="$${b%:*}" -benchtime="$${b##*:}" -benchmem ./nginxctl | grep '^Benchmark'; \
	done
