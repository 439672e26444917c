# doublehop — see README.md. Two commands matter: `make lab-up` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/doublehop
export TESTCONTAINERS_RYUK_DISABLED := true
export CGO_ENABLED := 0

# Debian packages the tests use as third-party peers (internal/peer names the
# program each provides): MIT krb5 clients, KDC and kadmin.local, curl with
# GSS-API, FreeTDS tsql built with Kerberos, tshark, Chromium and Firefox ESR
# (headless, for the page a trainer projects). Under CI (CI=true) a test
# whose peer is missing fails instead of skipping.
DEB_PACKAGES := krb5-user krb5-kdc krb5-admin-server curl freetds-bin tshark chromium firefox-esr gss-ntlmssp python3-impacket python3-gssapi ldap-utils libsasl2-modules-gssapi-mit samba samba-ad-provision samba-dsdb-modules samba-vfs-modules python3-samba python3-pyasn1 python3-cryptography

.PHONY: all build test deps vet fuzz bench soak clean explain-proof samba-krb5-tests

all: build

# Compiled as the image's binary is (dockerlab.CompileFlags: -trimpath, no
# DWARF): the two builds then share every compiled package, so make lab-up on
# a fresh machine compiles the dependency tree once, not twice.
build:
	$(GO) build -trimpath -gcflags=all=-dwarf=false -o $(BIN) ./cmd/doublehop

# deps installs the Debian peers that are missing (needs root and apt).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends$$missing >/dev/null; \
	else echo "deps: all peers present ($(DEB_PACKAGES))"; fi

# deploy/helm is a module of its own (Helm's library and the Kubernetes API
# types stay out of the lab's binaries and their cold build).
vet:
	$(GO) vet ./...
	cd deploy/helm && $(GO) vet ./...

# Every test; the summary lists failures, skips (with their reasons) and totals.
test: vet
	@set -o pipefail; { $(GO) test -count=1 -timeout 14m -json ./...; r=$$?; \
	  (cd deploy/helm && $(GO) test -count=1 -timeout 5m -json ./...) || r=1; exit $$r; } | $(GO) run ./internal/testsum

# Fuzz every decoder for FUZZTIME each (default 10m, as the issue asks when run by hand).
FUZZTIME ?= 10m
FUZZ_TARGETS := \
	./kdc:FuzzHandle ./krb/gss:FuzzAccept ./webtier:FuzzNegotiateHeader \
	./krb/pac:FuzzParsePAC ./krb/pac:FuzzFindPAC ./krb/ccache:FuzzParseCCache ./krb/keytab:FuzzParseKeytab \
	./sqltier/tds:FuzzReader ./sqltier/tds:FuzzPrelogin ./sqltier/tds:FuzzLogin7 \
	./sqltier/tds:FuzzSQLBatch ./sqltier/tds:FuzzRPC ./sqltier/tds:FuzzTokens \
	./sqltier:FuzzRequests ./sqltier:FuzzSQL ./sqltier/tsql:FuzzRun ./krb/kmsg:FuzzParseKDCReqMatchesGofork \
	./ntlm:FuzzParseMessages ./netlogon:FuzzChannel ./sqltier:FuzzNTLMLogin \
	./ldap:FuzzDecodeMessage ./dtyp:FuzzParseSecurityDescriptor ./ldapserver:FuzzConn \
	./dcerpc:FuzzConn ./drsuapi:FuzzServeRPC ./epm:FuzzServeRPC
# A finding always writes a reproducer under testdata/fuzz/NAME; a failure
# without one is Go 1.26's race at the -fuzztime deadline ("context deadline
# exceeded", golang/go#75804), reported as such and not as a finding.
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; dir=$${pkg#./}/testdata/fuzz/$$name; \
	  echo "== fuzz $$name ($$pkg) for $(FUZZTIME)"; before=$$(ls $$dir 2>/dev/null | wc -l); \
	  if ! $(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME); then \
	    if [ "$$(ls $$dir 2>/dev/null | wc -l)" != "$$before" ]; then echo "FINDING: $$name wrote a reproducer in $$dir"; exit 1; fi; \
	    echo "== $$name: no reproducer written: the fuzz-deadline race (golang/go#75804), not a finding"; fi; done

# Side by side with MIT's krb5kdc in one run, plus the full flow and start-up.
# Results are printed as tables with our/MIT ratios (BENCHMARKS.md explains them).
bench: build
	$(BIN) bench
	$(GO) test -run '^$$' -bench . -benchtime 2s ./kdc ./sqltier ./ldapserver

# explain's proof on a bigger sample of fault pairs than make test runs.
PAIRS ?= 2000
SEED ?= 7
explain-proof:
	DOUBLEHOP_PAIRS=$(PAIRS) DOUBLEHOP_SEED=$(SEED) $(GO) test ./bench -run 'TestExplainFixes' -v -timeout 60m | grep -v '^=== '

# Samba's Kerberos test suite (written against Windows DCs) against the lab's
# DC: installs the suite, runs each file, writes the table to TESTING.md.
SAMBA_PACKAGES := python3-samba samba-dsdb-modules python3-pyasn1 python3-cryptography
samba-krb5-tests: build
	@missing=""; for p in $(SAMBA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "samba-krb5-tests: installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || exit 1; fi
	$(BIN) samba-krb5-tests --logs build/samba-krb5 --write TESTING.md

# 64 users doing the full flow for SOAKTIME, then each tier killed (SIGKILL) and restarted under load.
SOAKTIME ?= 60s
soak: build
	$(BIN) soak --users 64 --duration $(SOAKTIME)

clean:
	rm -rf bin build

# --- the container lab (Docker; see docker/README.md) ------------------------
# make lab-up [LAB=name] [FRESH=1] [SCENARIO=id] [LABFILE=file]: build what is
# missing, start dc/web/sql/ws01 on network doublehop-$(LAB), run Bob's flow.
# Without a reachable Docker engine it runs the embedded lab instead.
LAB ?= default
LABS ?= 10
NAME ?= list
ARGS ?=

.PHONY: lab-up lab-down lab-status lab-client lab-scenario lab-measure images workshop-up workshop-status workshop-down

lab-up: build
	@$(BIN) lab up --name $(LAB) $(if $(FRESH),--fresh) $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(LABFILE),--lab $(LABFILE))

# make lab-down [LAB=name] [ALL=1]: containers, network and build/labs/$(LAB), by label.
lab-down: build
	@$(BIN) lab down --name $(LAB) $(if $(ALL),--all)

lab-status: build
	@$(BIN) lab status

# make lab-client ARGS="get -v http://web.lab.local/" (no ARGS: Bob's flow from ws01)
lab-client: build
	@$(BIN) lab client --name $(LAB) $(ARGS)

# make lab-scenario NAME=no-delegation | NAME=list | NAME=all | NAME=reset [STEP=1]
lab-scenario: build
	@$(BIN) lab scenario --name $(LAB) $(NAME) $(if $(STEP),--step)

# Time from no image to Bob's first flow, image size, idle memory per lab and
# how many labs fit, with LABS labs (default 10; LABS=30 to go further).
lab-measure: build
	@$(BIN) lab measure --labs $(LABS)

# A lab per seat on Docker Swarm (README "Workshops"): make workshop-up SEATS=20
# [WORKSHOP=name] [BASEPORT=30000] [PUBLICHOST=training.example.com]. On an
# engine in no swarm it makes a single-node one on 127.0.0.1;
# make workshop-down leaves that swarm again.
SEATS ?= 3
WORKSHOP ?= workshop
workshop-up: build
	@$(BIN) workshop up --init-swarm --name $(WORKSHOP) --seats $(SEATS) --dir build/workshop/$(WORKSHOP) $(if $(BASEPORT),--base-port $(BASEPORT)) $(if $(PUBLICHOST),--public-host $(PUBLICHOST))

workshop-status: build
	@$(BIN) workshop status --name $(WORKSHOP)

workshop-down: build
	@$(BIN) workshop down --name $(WORKSHOP) --leave-swarm

# The lab image (imported from build/image/doublehop) and a docker build
# context in build/image for the docker CLI.
images: build
	@$(BIN) lab image
