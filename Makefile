# Gatehouse: `make demo` runs the product on a simulated school, `make test`
# runs every test. Both need root for network namespaces (see README.md).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/gatehouse
# Build tags; every build of the product passes $(TAGS) (none by default).
TAGS     ?=
# Fuzz each target briefly; `make fuzz FUZZTIME=10m` for a longer run.
FUZZTIME ?= 10s

.PHONY: all build deps test test-short demo bench bench-memory fuzz lint clean cross cross-test deb deb-security ipk boot-test record-corpus e2e-full

all: build

# Stripped and trimmed: the binary goes on routers with little flash. The
# size is printed against the budget of issue 17 (25 MB for amd64).
SIZE_BUDGET := 25000000
build:
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '-s -w $(LDFLAGS)' -o $(BIN) ./cmd/gatehouse
	@n=$$(stat -c %s $(BIN)); \
	v=PASS; [ $$n -le $(SIZE_BUDGET) ] || v="OVER BUDGET"; \
	printf '%s: %d bytes (%d.%d MB), budget %d bytes: %s\n' $(BIN) $$n $$((n / 1000000)) $$((n % 1000000 / 100000)) $(SIZE_BUDGET) "$$v"

# The Debian packages the tests, the demo and the benchmarks drive; the list
# lives in build/deps alone, which installs only what is missing.
deps:
	./build/deps
	./build/axe >/dev/null

# Two packages at a time (-p 2): cmd/gatehouse's end-to-end tests alone
# take most of the run, and every testbed test has namespaces of its own,
# so the other packages run beside it. The alert end-to-end test measures
# 5 VPN alerts and a 30 s mail outage here; `make e2e-full` (run by CI)
# measures the issue's 20 alerts and 2-minute outage. -timeout bounds a hang;
# it is per test binary, and cmd/gatehouse's alone took 882 s (of a
# 25-minute .ci/run) on the 2-core development machine, so 25m leaves room
# for a slower CI machine without letting a hang run on.
test: deps build
	$(GO) vet ./...
	GATEHOUSE_ALERT_RUNS=5 GATEHOUSE_SMTP_OUTAGE=30s $(GO) test -count=1 -p 2 -timeout 25m ./...

# The alert pipeline's full measurement (issue 12): 20 VPN alerts to the
# DSL's mailbox and a 2-minute SMTP outage, about 6 minutes.
e2e-full: deps
	$(GO) test -count=1 -timeout 15m -run 'TestPupilVPNEmailsTheDSL' -v ./cmd/gatehouse/

test-short:
	$(GO) test -short -count=1 ./...

# Re-records inspect/testdata/recorded from the real tools in the testbed
# (root, namespaces; a few minutes). Not part of `make test`, which replays
# the committed captures. RECORD_ONLY=regexp re-records some files only.
record-corpus: deps
	./build/deps record
	GATEHOUSE_RECORD=1 GATEHOUSE_RECORD_ONLY='$(RECORD_ONLY)' $(GO) test -count=1 -timeout 20m -run TestRecordCorpus -v ./inspect/e2e/

demo: deps build
	./$(BIN) demo

bench: deps
	./build/deps bench
	./bench/run

# The memory budget of issue 17 on the real daemon (also part of bench).
bench-memory: deps
	./bench/memory.sh

# Every fuzz target, each for FUZZTIME.
fuzz:
	./build/fuzz-all $(FUZZTIME)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin

# The router builds: amd64, arm64 and armv7 (cgo SQLite through Debian's
# cross compilers) into bin/cross/; cross-test runs the pure packages' tests,
# `version` and `inspect replay` for arm64 and armv7 under qemu-user.
cross: deps
	VERSION=$(VERSION) TAGS=$(TAGS) ./build/cross build

cross-test: cross
	VERSION=$(VERSION) ./build/cross test

# The Debian packages (amd64, arm64, armhf) into bin/deb/, lintian on the
# amd64 one (failing on any tag not overridden with a reason), and the
# unit's systemd-analyze exposure (failing above 3.0).
deb: cross
	VERSION=$(VERSION) ./build/deb
	./build/deb --lint
	./build/deb --security

deb-security:
	./build/deb --security

# OpenWrt packages for aarch64 and arm into bin/ipk/, built without the SDK
# from static cross builds, each unpacked and run under qemu-user.
ipk: deps
	VERSION=$(VERSION) ./build/cross static arm64 armv7
	VERSION=$(VERSION) ./build/ipk

# Boots the .deb on a debootstrapped Debian 12 under qemu and plays a
# visitor's arrival (build/boot-test); hard-bounded, transcript in
# bin/artefacts/boot-test/.
boot-test: deb
	timeout --kill-after=30s 25m ./build/boot-test
