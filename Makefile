# Ferry. `make` builds, `make test` runs every test tier, `make demo` shows an install.
# Every target installs what it needs (scripts/install-deps.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := build

.PHONY: build deps test test-unit test-integration test-vm typecheck clean demo installer sample-image

deps:
	scripts/install-deps.sh

build: deps
	node scripts/bundle.mjs

typecheck: deps
	npx tsc --noEmit -p .

# The vm tier boots the real boot environment and installs the sample image: build both first
# (cached, quick when unchanged).
test: build typecheck initrd sample-image
	scripts/run-tests.sh

test-unit: build
	TIERS=unit scripts/run-tests.sh

test-integration: build
	TIERS=integration scripts/run-tests.sh

test-vm: build initrd sample-image
	TIERS=vm scripts/run-tests.sh

clean:
	rm -rf build

# The sample Debian image of the vm tests and the demo (cached in ${FERRY_CACHE:-/var/cache/ferry}/e2e).
sample-image: deps
	scripts/make-sample-image

demo: build initrd sample-image
	scripts/demo

# The installer as one file with no node_modules: build/ferry-installer (Node single executable).
installer: deps
	scripts/make-installer.sh

# Regenerate the golden disk plans (test/fixtures/golden) after an intended planner change; review the diff.
.PHONY: golden
golden:
	UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/layout-golden.test.ts

# The boot environment: build/boot/vmlinuz and build/boot/initrd-$(DRIVERS).img (initrd.img
# points at it), from Debian packages cached in $${FERRY_CACHE:-/var/cache/ferry}/bootenv.
# DRIVERS=virtual (VMs, small) or generic (real hardware); ZSTD_LEVEL trades build time for size.
DRIVERS ?= virtual
ZSTD_LEVEL ?= 19
.PHONY: initrd initrd-generic
initrd: build installer
	node build/initrd-build.mjs --drivers $(DRIVERS) --level $(ZSTD_LEVEL)

initrd-generic: build installer
	node build/initrd-build.mjs --drivers generic --level $(ZSTD_LEVEL) --no-default
