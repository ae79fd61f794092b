# kea-lease-monitor. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
BIN := dist/kea-lease-monitor
SOURCES := $(shell find src migrations -type f 2>/dev/null) scripts/build.mjs package.json

.PHONY: help setup deps build typecheck test demo clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

setup: ## install the missing Debian packages (postgresql-15, kea-admin, ansible, ...) and npm packages; cache Kea 2.6/3.0 schemas
	scripts/install-deps.sh
	scripts/kea-schemas.sh

deps: node_modules/.package-lock.json ## install npm packages (npm ci)

build: $(BIN) ## build the single-file executable dist/kea-lease-monitor (esbuild + Node SEA)

$(BIN): node_modules/.package-lock.json $(SOURCES)
	node scripts/build.mjs

typecheck: deps ## tsc --noEmit over src, test, bench
	npx tsc --noEmit

test: build typecheck ## the default suite: real PostgreSQL with the real Kea schema, plus the built binary
	node --import tsx --test --test-reporter=spec test/*.test.ts

demo: build ## throwaway PostgreSQL with the Kea schema, a few leases, the monitor in database mode
	scripts/demo.sh

clean: ## remove build output
	rm -rf dist

-include mk/*.mk
