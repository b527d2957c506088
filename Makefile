# Fledge: `make test` on a fresh Debian machine installs what it needs, builds, runs every test.
SWIFT      ?= swift
SUDO       := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# C libraries the package links (libcurl with OpenSSL, OpenSSL, hiredis) and the tools the
# tests and benches start for real.
BUILD_DEPS := pkg-config libcurl4-openssl-dev libssl-dev libhiredis-dev
TEST_DEPS  := $(BUILD_DEPS) curl openssl redis-server nginx-light
BENCH_DEPS := $(TEST_DEPS) wrk redis-server

.PHONY: all build test bench deps-build deps-test deps-bench clean

all: build

define install_missing
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps-build: ; $(call install_missing,$(BUILD_DEPS))
deps-test:  ; $(call install_missing,$(TEST_DEPS))
deps-bench: ; $(call install_missing,$(BENCH_DEPS))

build: deps-build
	$(SWIFT) build

# Builds every target (bench included, so it cannot rot), then runs the whole suite.
test: deps-test
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Release build of the benches; see bench/README.md for each one.
bench: deps-bench
	$(SWIFT) build -c release --product fledge-bench
	$(SWIFT) build -c release --product fledge-seeder
	$(SWIFT) build -c release --product fledge-hbs
	@echo "run: .build/release/fledge-bench --help"

clean:
	rm -rf .build
