# Ferry. `make` builds, `make test` runs every test tier, `make demo` shows an install.
# Every target installs what it needs (scripts/install-deps.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := build

.PHONY: build deps test test-unit test-integration test-vm typecheck clean demo sample-image

deps:
	scripts/install-deps.sh

build: deps
	node scripts/bundle.mjs

typecheck: deps
	npx tsc --noEmit -p .

test: build typecheck sample-image
	scripts/run-tests.sh

test-unit: build
	TIERS=unit scripts/run-tests.sh

test-integration: build
	TIERS=integration scripts/run-tests.sh

test-vm: build sample-image
	TIERS=vm scripts/run-tests.sh

clean:
	rm -rf build

# The sample Debian image of the vm tests and the demo (cached in ${FERRY_CACHE:-/var/cache/ferry}/e2e).
sample-image: deps
	scripts/make-sample-image

demo: build sample-image
	scripts/demo
