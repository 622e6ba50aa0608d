# release — build, test and benchmark entry points. `make test` is what CI runs.
GO       ?= go
GOFLAGS  ?=
BIN      := bin/release
PKGS     := ./...
FUZZTIME ?= 30s

.PHONY: all build test test-cancel test-short lint vet fmt-check race demo bench bench-base bench-tools fuzz clean tools

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/release

## test: formatting, vet (linux and windows), lint, unit + end-to-end tests, race detector on the concurrent core
test: fmt-check vet lint
	$(GO) test -count=1 $(PKGS)
	$(GO) test -count=1 -race ./pipeline/... ./modules/...
	$(MAKE) --no-print-directory test-cancel

## test-cancel: cancelled builds, publishes and applies leave nothing, and an input changed after planning is never stored, 200 times over (their races were one in twenty)
CANCEL_TESTS := TestWriterCloseCancelled|TestBuildCancelled|TestApplyCancelledBeforeStart|TestCancelLeavesNothingHalfWritten|TestPublishCancelled|TestLocalRunCancelledIsAnError
test-cancel:
	$(GO) test -short -count=200 -run 'TestBuildErrorsLeaveNothing/cancelled' ./modules/delta
	$(GO) test -short -count=200 -run '$(CANCEL_TESTS)' ./modules/pkgzip ./modules/nodepkg ./modules/apply ./pipeline/sched ./pipeline/dist ./pipeline/engine
	$(GO) test -short -count=200 -run 'TestInputChangedAfterPlanning' ./modules/all

test-short: fmt-check vet
	$(GO) test -short -count=1 $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	GOOS=windows $(GO) vet $(PKGS)

## lint: staticcheck (linux and windows) and deadcode; any finding fails. Every function must be
## reachable from a binary (cmd/release, bench/cmd/releasebench); in the packages that exist for
## the tests (TEST_HELPERS) and in _test.go files, from a test. deadcode runs for linux only (the
## benchmarks build nowhere else). `make tools` builds both.
RELEASE_TOOLS ?= $(HOME)/.cache/release-tools
STATICCHECK   ?= $(RELEASE_TOOLS)/bin/staticcheck
DEADCODE      ?= $(RELEASE_TOOLS)/bin/deadcode
TEST_HELPERS  := internal/k8sschema|modules/pkgzip/ziptest|internal/peers|pipeline/config/configtest|modules/codesign/codesigntest|modules/delta/deltatest|modules/nodepkg/nodepkgtest|internal/winetest|internal/netx/netxtest
lint:
	@for t in $(STATICCHECK) $(DEADCODE); do \
	  [ -x "$$t" ] || { echo "$$t is missing: run make tools"; exit 1; }; done
	$(STATICCHECK) $(PKGS)
	GOOS=windows $(STATICCHECK) $(PKGS)
	@bins=$$($(DEADCODE) $(PKGS)) && tests=$$($(DEADCODE) -test $(PKGS)) || exit 1; \
	dead=$$( { printf '%s\n' "$$bins" | grep -Ev '^($(TEST_HELPERS))/[^/]+:'; printf '%s\n' "$$tests"; } | sed '/^$$/d' | sort -u); \
	if [ -n "$$dead" ]; then printf 'deadcode: nothing reaches these functions; remove them or use them:\n%s\n' "$$dead"; exit 1; fi

## demo: build the bundled sample with the embedded engine
demo:
	$(GO) run ./cmd/release build -C fixtures/sample

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## bench: benchmarks against their baselines; writes docs/BENCHMARKS.md
## BENCH_BASE: the commit whose binary is the incremental section's baseline (before fingerprints); "" skips it
BENCH_BASE ?= 0853d56
bench: build bench-tools bench-base
	$(GO) run ./bench/cmd/releasebench -release $(BIN) $(if $(BENCH_BASE),-baseline bin/release-base) -out docs/BENCHMARKS.md

## bench-base: build BENCH_BASE's binary from git into bin/release-base (a throwaway worktree)
bench-base:
	@if [ -n "$(BENCH_BASE)" ]; then \
	  tree=$$(mktemp -d) && git worktree add -q --detach "$$tree" $(BENCH_BASE) && \
	  (cd "$$tree" && CGO_ENABLED=0 $(GO) build -trimpath -o "$(CURDIR)/bin/release-base" ./cmd/release); rc=$$?; \
	  git worktree remove --force "$$tree"; exit $$rc; \
	fi

## bench-tools: the baselines the benchmarks run (Debian packages)
bench-tools:
	@need=""; for pair in zip:zip unzip:unzip zstd:zstd xdelta3:xdelta3 bsdiff:bsdiff docker-registry:docker-registry osslsigncode:osslsigncode /usr/bin/time:time \
	  wine:wine wineserver:wine /usr/lib/wine/wine64:wine64 x86_64-w64-mingw32-gcc:gcc-mingw-w64-x86-64-win32; do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || need="$$need $${pair##*:}"; done; \
	if [ -n "$$need" ]; then echo "installing:$$need"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; fi
	bash .ci/tools oras

clean:
	rm -rf bin fixtures/sample/dist

## tools: build the pinned Go tools the tests use as peers (oras, crane, kubeconform, actionlint, ...) and lint runs (staticcheck, deadcode)
tools:
	bash .ci/tools
