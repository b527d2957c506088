# Fledge: `make test` on a fresh Debian machine installs what it needs, builds, runs every test;
# `make demo` builds the release products and upgrades a local fleet of agents.
SWIFT      ?= swift
SUDO       := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# C libraries the package links (libcurl with OpenSSL, OpenSSL, hiredis) and the tools the
# tests and benches start for real (python3 runs the hostile peer, Tests/Fixtures, and
# scripts/supervise; systemd brings systemd-analyze, which checks the units in deploy/; the
# dashboard is tested in a headless chromium driven by Selenium).
BUILD_DEPS := pkg-config libcurl4-openssl-dev libssl-dev libhiredis-dev
TEST_DEPS  := $(BUILD_DEPS) curl openssl redis-server nginx-light python3 systemd chromium chromium-driver python3-selenium
BENCH_DEPS := $(TEST_DEPS) wrk redis-server
# The demo runs only this package's products (and python3 for scripts/supervise); curl and
# openssl are there to poke at the fleet by hand.
DEMO_DEPS  := $(BUILD_DEPS) curl openssl python3
DEMO_PRODUCTS := fledge-agent fledge-hbs fledge-seeder fledgectl fledge-demo
# Release products carry the Swift runtime and Foundation inside: a host runs fledge-agent with
# no Swift installed, and the idle agent maps less (bench/README.md, `agent`).
RELEASE    := $(SWIFT) build -c release --static-swift-stdlib

.PHONY: all build test bench demo install deps-build deps-test deps-bench deps-demo clean

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
deps-demo:  ; $(call install_missing,$(DEMO_DEPS))

build: deps-build
	$(SWIFT) build

# Builds every target (bench included, so it cannot rot), then runs the whole suite.
test: deps-test
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Release build of the benches; see bench/README.md for each one.
bench: deps-bench
	$(RELEASE) --product fledge-bench
	$(RELEASE) --product fledge-seeder
	$(RELEASE) --product fledge-hbs
	$(RELEASE) --product fledge-agent
	@echo "run: .build/release/fledge-bench --help"

# A whole fleet upgrade on this machine: fledge-hbs, an origin and 16 agents on 1.0.0, 1.1.0
# rolled out with a canary and batches, peers allowed (Sources/fledge-demo). Ctrl-C stops it all.
demo: deps-demo
	@for p in $(DEMO_PRODUCTS); do $(RELEASE) --product $$p || exit 1; done
	"$$($(RELEASE) --show-bin-path)/fledge-demo"

# The release products to PREFIX/bin, the scripts they start (scripts/supervise,
# scripts/fledge-guard) to PREFIX/share/fledge/scripts and the units to PREFIX/share/fledge/deploy,
# where they look for them.
PREFIX ?= /usr/local
install: deps-build
	@for p in $(DEMO_PRODUCTS); do $(RELEASE) --product $$p || exit 1; done
	@bin="$$($(RELEASE) --show-bin-path)"; \
	for p in $(DEMO_PRODUCTS); do install -D -m 0755 "$$bin/$$p" "$(DESTDIR)$(PREFIX)/bin/$$p" || exit 1; done
	@for s in scripts/*; do install -D -m 0755 "$$s" "$(DESTDIR)$(PREFIX)/share/fledge/scripts/$$(basename $$s)" || exit 1; done
	@for u in deploy/*; do install -D -m 0644 "$$u" "$(DESTDIR)$(PREFIX)/share/fledge/deploy/$$(basename $$u)" || exit 1; done
	@echo "installed under $(DESTDIR)$(PREFIX): bin/{$(DEMO_PRODUCTS)}, share/fledge/scripts, share/fledge/deploy"

clean:
	rm -rf .build
