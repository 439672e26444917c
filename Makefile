# doublehop — see README.md. Two commands matter: `make lab-up` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/doublehop
export TESTCONTAINERS_RYUK_DISABLED := true
export CGO_ENABLED := 0

# Debian packages the tests use as third-party peers: MIT krb5 clients and KDC,
# curl with GSS-API, FreeTDS tsql built with Kerberos, tshark.
DEB_PACKAGES := krb5-user krb5-kdc curl freetds-bin tshark
DEB_BINARIES := kinit klist kvno krb5kdc kdb5_util kadmin.local curl tsql tshark

.PHONY: all build test deps vet fuzz bench soak clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/doublehop

# deps installs the Debian peers when one is missing (needs root and apt).
deps:
	@missing=""; for b in $(DEB_BINARIES); do command -v $$b >/dev/null 2>&1 || [ -x /usr/sbin/$$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing $(DEB_PACKAGES) (missing:$$missing)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES) >/dev/null; \
	else echo "deps: all peers present"; fi

vet:
	$(GO) vet ./...

test: vet
	$(GO) test -count=1 -timeout 14m ./...

# Fuzz every decoder for FUZZTIME each (default 10m, as the issue asks when run by hand).
FUZZTIME ?= 10m
FUZZ_TARGETS := \
	./kdc:FuzzHandle ./krb:FuzzAccept ./webtier:FuzzNegotiateHeader \
	./krb:FuzzParsePAC ./krb:FuzzFindPAC ./krb:FuzzParseCCache ./krb:FuzzParseKeytab \
	./sqltier/tds:FuzzReader ./sqltier/tds:FuzzPrelogin ./sqltier/tds:FuzzLogin7 \
	./sqltier/tds:FuzzSQLBatch ./sqltier/tds:FuzzRPC ./sqltier/tds:FuzzTokens
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "== fuzz $$name ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) || exit 1; done

# Side by side with MIT's krb5kdc in one run, plus the full flow and start-up.
# Results are printed as tables with our/MIT ratios (BENCHMARKS.md explains them).
bench: build
	$(BIN) bench
	$(GO) test -run '^$$' -bench . -benchtime 2s ./kdc ./sqltier

# 64 users doing the full flow for SOAKTIME, then each tier killed (SIGKILL) and restarted under load.
SOAKTIME ?= 60s
soak: build
	$(BIN) soak --users 64 --duration $(SOAKTIME)

clean:
	rm -rf bin build
