# Ferry. `make` builds, `make test` runs every test tier, `make demo` shows an install.
# Every target installs what it needs (scripts/install-deps.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := build

.PHONY: build deps test test-unit test-integration test-vm typecheck clean demo installer

deps:
	scripts/install-deps.sh

build: deps
	node scripts/bundle.mjs

typecheck: deps
	npx tsc --noEmit -p .

test: build typecheck
	scripts/run-tests.sh

test-unit: build
	TIERS=unit scripts/run-tests.sh

test-integration: build
	TIERS=integration scripts/run-tests.sh

test-vm: build
	TIERS=vm scripts/run-tests.sh

clean:
	rm -rf build

<<<<<<< HEAD
# The installer as one file with no node_modules: build/ferry-installer (Node single executable).
installer: deps
	scripts/make-installer.sh
=======
# Regenerate the golden disk plans (test/fixtures/golden) after an intended planner change; review the diff.
.PHONY: golden
golden:
	UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/layout-golden.test.ts
>>>>>>> main
