# Troupe's entry points. `make help` lists them.
GO ?= go
PKGS := ./...

.PHONY: help test bench lint run build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

test: ## every test, with the race detector, then a bounded fuzz of the HTTP API
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(MAKE) --no-print-directory fuzz

# FUZZTIME bounds `make fuzz`; make test runs it with this default. The
# fuzzer minimises each input that reaches new code; 5 s each keeps it from
# spending the run on the seeds of several megabytes.
FUZZTIME ?= 30s

.PHONY: fuzz

fuzz: ## fuzz the HTTP API for FUZZTIME (30s); a failing input is saved under http/testdata/fuzz/FuzzAPI
	$(GO) test -run '^$$' -fuzz '^FuzzAPI$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s -timeout 10m ./http/

bench: ## the benchmarks (figures, not pass/fail)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m $(PKGS)

.PHONY: bench-troupe bench-burndown bench-steady bench-http bench-http-batch

bench-troupe: ## the four troupe bench runs below, one after the other (never at once: they would skew each other)
	$(MAKE) --no-print-directory -j1 bench-burndown bench-steady bench-http bench-http-batch

bench-burndown: ## troupe bench: insert 100,000 jobs into Badger, then burn them down
	$(GO) run ./cmd/troupe bench burndown -n 100000 --store badger

bench-steady: ## troupe bench: 1,000 jobs/s for 10s on Badger, enqueue-to-start/done latency
	$(GO) run ./cmd/troupe bench steady --rate 1000 --duration 10s --store badger

bench-http: ## troupe bench: 32 clients POST /jobs for 10s to an in-process server
	$(GO) run ./cmd/troupe bench http --concurrency 32 --duration 10s

bench-http-batch: ## troupe bench: 32 clients POST /jobs/batch, 100 jobs each, for 10s
	$(GO) run ./cmd/troupe bench http --concurrency 32 --duration 10s --batch 100

run: ## the server with its defaults: Badger in ./data, 127.0.0.1:8080, demo handlers
	$(GO) run ./cmd/troupe serve

.PHONY: run-external worker-python

run-external: ## the server with word_count run by external workers (TROUPE_EXTERNAL_TYPES=word_count)
	TROUPE_EXTERNAL_TYPES=word_count $(GO) run ./cmd/troupe serve

worker-python: ## the example Python worker (examples/workers/python) against the server at TROUPE_URL, default 127.0.0.1:8080
	python3 examples/workers/python/worker.py

lint: ## gofmt, go vet, and golangci-lint with .golangci.yaml (the version pinned in go.mod)
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet $(PKGS)
	$(GO) tool golangci-lint run $(PKGS)

build: ## the troupe binary in bin/
	$(GO) build -o bin/troupe ./cmd/troupe

.PHONY: screenshot

screenshot: ## docs/dashboard*.png: the dashboard with demo jobs, in headless Chromium
	DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(GO) test -count=1 -run '^TestDashboardScreenshot$$' -v ./cmd/troupe

.PHONY: image
IMAGE ?= troupe:dev
DOCKER ?= docker

image: ## the container image troupe:dev (IMAGE=name:tag to change), with Docker
	@command -v $(DOCKER) >/dev/null 2>&1 || { echo "make image: $(DOCKER) is not installed; install Docker to build the image (cmd/troupe/Dockerfile)" >&2; exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { echo "make image: the Docker daemon is not reachable ($(DOCKER) info failed); start it and run make image again" >&2; exit 1; }
	$(DOCKER) build -f cmd/troupe/Dockerfile -t $(IMAGE) .
