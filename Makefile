# drover's Makefile. `make test` and `make demo` do all their own set-up on a
# fresh Debian bookworm machine with Go: they apt-get what is missing and
# fetch Go modules through the module proxy.

GO        ?= go
BIN       := bin/drover
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Debian packages the tests, the demo and the benchmarks need.
# etcd-server: the real etcd members of the HA tests (issue 22).
DEB_PKGS  := openssh-server openssh-client debootstrap systemd-container nftables \
             iproute2 prometheus zookeeper etcd-server etcd-client default-jre-headless curl util-linux ca-certificates busybox unzip \
             chromium fonts-dejavu-core
BENCH_PKGS := ansible pssh
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_TIMEOUT ?= 70m
# make test fuzzes each target for FUZZTIME; make fuzz for FUZZTIME_LONG.
FUZZTIME  ?= 20s
FUZZTIME_LONG ?= 5m

# The Debian package: a version dpkg accepts (v1.2.3 -> 1.2.3; a bare
# commit -> 0.0.0~git<commit>), for the Go architecture (amd64 and arm64
# are Debian's names too), built with nfpm at a pinned version.
PKG_VERSION := $(shell echo '$(VERSION)' | sed -E 's/^v([0-9]+\.)/\1/; /^[0-9]+\./!s/^/0.0.0~git/; s/-/./g')
PKG_ARCH    := $(shell $(GO) env GOARCH)
NFPM        := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
DEB         := bin/drover_$(PKG_VERSION)_$(PKG_ARCH).deb

.PHONY: all build test unit e2e demo bench bench-scale lint deps clean package fuzz

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/drover

# package builds $(DEB): the static binary, drover.service, /etc/drover,
# man pages and shell completions made from the commands' own help, and
# maintainer scripts (packaging/).
package:
	rm -rf bin/pkg && mkdir -p bin/pkg/completions
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/pkg/drover ./cmd/drover
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) bin/pkg/drover man bin/pkg/man
	gzip -9n bin/pkg/man/*.1
	bin/pkg/drover completion bash > bin/pkg/completions/drover.bash
	bin/pkg/drover completion zsh > bin/pkg/completions/_drover
	bin/pkg/drover completion fish > bin/pkg/completions/drover.fish
	VERSION='$(PKG_VERSION)' ARCH='$(PKG_ARCH)' $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p deb -t $(DEB)

# deps installs the Debian packages the tests need, only when missing.
deps:
	@./test/deps.sh $(DEB_PKGS)

# test runs everything: vet, unit, integration and end-to-end tests (the
# latter need root and boot real systemd-nspawn nodes), then a short fuzz.
test: deps
	$(GO) vet ./...
	@# The node image and the artifacts are built once and cached; building
	@# them here keeps a cold build (minutes) out of any test's timeout.
	$(GO) run ./test/harness/cmd/drover-nodes image
	$(GO) run ./test/harness/cmd/drover-nodes artifacts
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME_LONG=$(FUZZTIME)

# fuzz runs every fuzz target (the manifest parser, the probe output
# parser) for FUZZTIME_LONG each; go test fuzzes one target at a time.
fuzz:
	$(GO) test -count=1 -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME_LONG) ./manifests
	$(GO) test -count=1 -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME_LONG) ./probes

# unit runs only the tests that need no root and no test nodes.
unit:
	$(GO) test -count=1 -short ./...

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# demo boots three local systemd nodes and runs the daemon against them.
# A built binary rather than go run: go run exits 1 when Ctrl-C reaches
# it, however cleanly the demo then stops.
demo: deps build
	$(GO) build -o bin/drover-demo ./test/demo
	bin/drover-demo

# bench measures drover against Ansible and parallel-ssh on the same nodes
# and rewrites docs/BENCHMARKS.md.
bench: deps build
	@./test/deps.sh $(BENCH_PKGS)
	$(GO) run ./test/bench -out docs/BENCHMARKS.md

# bench-scale runs the daemon binary against simulated fleets of 1k to
# 10k nodes (test/fleetsim, in-process SSH endpoints on 127.1-127.4.x.y
# port 22: needs root for the port and the open files limit) and rewrites
# docs/BENCHMARKS-SCALE.md and its plot, docs/bench-scale.png: medians of
# SCALE_RUNS runs, a whole rolling change each, the daemon with Go's memory
# defaults (as docs/SCALING.md advises; add -gomemlimit to SCALE_FLAGS to
# see a limit's cost), the console in Chromium. About 40 minutes with the
# defaults.
SCALE_NODES ?= 1000,2000,5000,10000
SCALE_RUNS  ?= 3
SCALE_FLAGS ?= -steady 60s -stream 40s -rollout 10m
bench-scale: build
	@./test/deps.sh chromium
	$(GO) run ./test/fleetsim/cmd/fleetbench -nodes $(SCALE_NODES) -runs $(SCALE_RUNS) -out docs/BENCHMARKS-SCALE.md -plot docs/bench-scale.png $(SCALE_FLAGS)

clean:
	rm -rf bin
