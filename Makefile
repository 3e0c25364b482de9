# Quality gates of hasura-auth-proxy.
#
#   make check   everything CI runs (.ci/run): formatting, vet, staticcheck,
#                go.mod tidiness, the race-enabled tests, a short run of every
#                fuzz target, and the end-to-end suite
#   make test    the Go tests with the race detector
#   make fuzz    the fuzz smoke runs only (FUZZTIME=1m make fuzz for longer)
#   make check-loaded
#                the suite on a busy machine: LOADED_TARGETS (default: test
#                e2e, the steps that could depend on timing; LOADED_TARGETS=
#                check for every gate) LOADED_RUNS times in a row (default 3)
#                while LOAD_JOBS CPU-bound loops (default: one per core) keep
#                every core busy. Stops at the first failing run; the load is
#                always killed.
#   make install go install . : hasura-auth-proxy in $(go env GOPATH)/bin
#
# Tools are installed into ./bin at pinned versions; nothing else is needed
# beyond Go and (for e2e) Node.js with npm and Chromium (/usr/bin/chromium
# or CHROMIUM_PATH; the driver never downloads one).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := check

GO       ?= go
BIN      := $(CURDIR)/bin
FUZZTIME ?= 10s

# staticcheck 2026.2.2; the 2026.1 line (v0.7.x) is the first that supports
# Go 1.26.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(BIN)/staticcheck-$(STATICCHECK_VERSION)

# Every fuzz target, as <package dir>:<FuzzName>. fuzz-list fails when a
# Fuzz function in the tree is missing here, so a new target cannot be
# forgotten by CI.
FUZZ_TARGETS := \
	.:FuzzParseConfig \
	./auth:FuzzAuthenticate \
	./auth:FuzzClaimSet \
	./auth:FuzzClaimsExtract \
	./auth:FuzzDecodeToken \
	./auth:FuzzExtractTokens \
	./auth:FuzzJSONPath \
	./auth:FuzzParseJWKS \
	./auth:FuzzPostgresArray \
	./auth:FuzzRefreshAfter \
	./auth:FuzzSecretEqual \
	./limits:FuzzAnalyse \
	./limits:FuzzParseBody \
	./proxy:FuzzAllowList \
	./proxy:FuzzConnectionInit \
	./proxy:FuzzCORSOrigin \
	./proxy:FuzzProxyHeaders \
	./proxy:FuzzStreamedRelay \
	./proxy:FuzzTypeScanner \
	./revocation:FuzzWebhook

# Packages whose tests must have run (not "[no test files]") for the test
# step to pass: a green run that tested nothing is a failure.
REQUIRED_TEST_PKGS := \
	github.com/hasura-auth-proxy/hasura-auth-proxy \
	github.com/hasura-auth-proxy/hasura-auth-proxy/auth \
	github.com/hasura-auth-proxy/hasura-auth-proxy/proxy \
	github.com/hasura-auth-proxy/hasura-auth-proxy/metrics \
	github.com/hasura-auth-proxy/hasura-auth-proxy/limits \
	github.com/hasura-auth-proxy/hasura-auth-proxy/store \
	github.com/hasura-auth-proxy/hasura-auth-proxy/revocation \
	github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config

GO_FILES = $(shell find . -name '*.go' -not -path './e2e/node_modules/*' -not -path './bin/*' -not -path './.git/*')

.PHONY: check test fmt vet staticcheck tidy fuzz fuzz-list e2e tools clean

check: fmt vet staticcheck tidy test fuzz-list fuzz e2e
	@echo "make check: all gates passed"

fmt:
	@echo "== gofmt"
	@unformatted="$$(gofmt -l $(GO_FILES))"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (gofmt -w):"; echo "$$unformatted"; exit 1; \
	fi

vet:
	@echo "== go vet"
	$(GO) vet ./...

tools: $(STATICCHECK)

$(STATICCHECK):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $@

staticcheck: $(STATICCHECK)
	@echo "== staticcheck $(STATICCHECK_VERSION)"
	$(STATICCHECK) ./...

tidy:
	@echo "== go mod tidy -diff"
	$(GO) mod tidy -diff

test:
	@echo "== go test -race"
	@log="$$(mktemp)"; trap 'rm -f "$$log"' EXIT; \
	$(GO) test -race -count=1 ./... 2>&1 | tee "$$log"; \
	for pkg in $(REQUIRED_TEST_PKGS); do \
		if ! grep -qE "^ok[[:space:]]+$$pkg[[:space:]]" "$$log"; then \
			echo "go test: no passing tests reported for $$pkg"; exit 1; \
		fi; \
	done

fuzz-list:
	@echo "== every fuzz target is in FUZZ_TARGETS"
	@found="$$(grep -rHoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' --exclude-dir=node_modules --exclude-dir=bench . \
		| sed -E 's#^\./([^:]*)/[^/:]+\.go:func #./\1:#; s#^\./[^/:]+\.go:func #.:#' | sort -u)"; \
	listed="$$(printf '%s\n' $(FUZZ_TARGETS) | sort -u)"; \
	missing="$$(comm -23 <(echo "$$found") <(echo "$$listed"))"; \
	stale="$$(comm -13 <(echo "$$found") <(echo "$$listed"))"; \
	if [ -n "$$missing" ]; then echo "Makefile FUZZ_TARGETS lacks: $$missing"; exit 1; fi; \
	if [ -n "$$stale" ]; then echo "Makefile FUZZ_TARGETS names targets that do not exist: $$stale"; exit 1; fi

fuzz: fuzz-list
	@for t in $(FUZZ_TARGETS); do \
		pkg="$${t%%:*}"; name="$${t##*:}"; \
		echo "== fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
	done

e2e:
	@if [ -f e2e/package-lock.json ]; then \
		echo "== e2e (npm ci && npm test)"; \
		cd e2e && npm ci --no-audit --no-fund && npm test; \
	else \
		echo "== e2e skipped: no e2e/package-lock.json"; \
	fi

clean:
	rm -rf $(BIN)

# make bench: the loopback benchmark of issue 6 (bench/, a separate Go module
# so vegeta stays out of go.mod): the proxy against a bare ReverseProxy, a
# few minutes, results in bench/results/. Not part of check or test.
# BENCHFLAGS passes options, e.g. BENCHFLAGS='-rounds 1 -subs 0'.
BENCHFLAGS ?=

.PHONY: bench
bench:
	cd bench && $(GO) run . -repo .. $(BENCHFLAGS)

# make check-loaded: see the header. The tests must not depend on the
# machine being idle (issue 14): a test that needs an idle machine is a
# defect, and this is how to catch one before CI does.
LOADED_RUNS    ?= 3
LOADED_TARGETS ?= test e2e
LOAD_JOBS      ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: check-loaded
check-loaded:
	@pids=(); \
	stop_load() { for p in "$${pids[@]}"; do kill "$$p" 2>/dev/null || true; done; \
		wait "$${pids[@]}" 2>/dev/null || true; }; \
	trap stop_load EXIT; trap 'exit 130' INT TERM HUP; \
	for _ in $$(seq 1 $(LOAD_JOBS)); do (while :; do :; done) & pids+=($$!); done; \
	echo "== check-loaded: $(LOAD_JOBS) CPU-bound loops (pids $${pids[*]}); $(LOADED_RUNS) runs of: $(LOADED_TARGETS)"; \
	for run in $$(seq 1 $(LOADED_RUNS)); do \
		echo "== check-loaded: run $$run of $(LOADED_RUNS) ($$(date -u +%H:%M:%S) UTC)"; \
		if ! $(MAKE) --no-print-directory $(LOADED_TARGETS); then \
			echo "check-loaded: run $$run of $(LOADED_RUNS) failed under load"; exit 1; \
		fi; \
	done; \
	echo "check-loaded: $(LOADED_RUNS) of $(LOADED_RUNS) runs passed under load ($$(date -u +%H:%M:%S) UTC)"
# make install: the binary on PATH (in $(go env GOBIN), else $(go env
# GOPATH)/bin), so the README's Quickstart commands exist.
.PHONY: install
install:
	$(GO) install .
