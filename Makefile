# Gatehouse: `make demo` runs the product on a simulated school, `make test`
# runs every test. Both need root for network namespaces (see README.md).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/gatehouse
# nomsgpack: gin without its MessagePack binding (github.com/ugorji/go, 6 MB
# of the binary), which nothing here uses. Every build of the product
# passes $(TAGS).
TAGS     ?= nomsgpack
# Fuzz each target briefly; `make fuzz FUZZTIME=10m` for a longer run.
FUZZTIME ?= 10s

.PHONY: all build deps test test-short demo bench bench-memory fuzz lint clean

all: build

# Stripped and trimmed: the binary goes on routers with little flash.
build:
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '-s -w $(LDFLAGS)' -o $(BIN) ./cmd/gatehouse
	@echo "$(BIN): $$(( $$(stat -c %s $(BIN)) / 1048576 )) MiB ($$(stat -c %s $(BIN)) bytes)"

# The Debian packages the tests, the demo and the benchmarks drive; the list
# lives in build/deps alone, which installs only what is missing.
deps:
	./build/deps

# Packages run one at a time (-p 1) because the end-to-end tests share the
# machine's two cores with real DHCP/RADIUS peers; -timeout bounds a hang.
test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 -timeout 15m ./...

test-short:
	$(GO) test -short -count=1 ./...

demo: deps build
	./$(BIN) demo

bench: deps
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
