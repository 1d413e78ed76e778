# Troupe's entry points. `make help` lists them.
GO ?= go
PKGS := ./...

.PHONY: help test bench lint run build

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

test: ## every test, with the race detector
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

bench: ## the benchmarks (figures, not pass/fail)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m $(PKGS)

run: ## the server with its defaults: Badger in ./data, 127.0.0.1:8080, demo handlers
	$(GO) run ./cmd/troupe serve

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet $(PKGS)

build: ## the troupe binary in bin/
	$(GO) build -o bin/troupe ./cmd/troupe
