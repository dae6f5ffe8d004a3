# voicebridge — build, run and test.
#
# cgo is mandatory: the media path links libopus (github.com/hraban/opus) and
# libsoxr (github.com/zaf/resample). Builds use -tags nolibopusfile so that only
# libopus itself is needed, not libopusfile.
#
# Pins that matter (see README "Dependencies"):
#   github.com/pion/webrtc/v4 v4.2.20 — v4.2.21+ need pion/transport/v5, which
#   the module proxy used here refuses (403), so `go get -u` breaks the build.
#   github.com/zaf/resample v1.5.0 — its version listing is refused; name it.

GO          ?= go
TAGS        := nolibopusfile
GOFLAGS_ALL := -tags $(TAGS)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin/voicebridge
export CGO_ENABLED := 1

# Debian packages: to build and run, and (in addition) to test.
DEPS_RUN  := gcc pkg-config libopus-dev libsoxr-dev espeak-ng
DEPS_TEST := $(DEPS_RUN) chromium sip-tester baresip janus redis-server haproxy kamailio
# bench: the peers (ffmpeg, GStreamer), sox to prepare their input speech, perf
# to see where the bridge's CPU goes.
DEPS_BENCH := $(DEPS_RUN) sox ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good linux-perf

.PHONY: all deps deps-test deps-bench build run test test-cluster vet staticcheck fmt fmt-check unit bench clean

all: build

# install_pkgs installs the Debian packages in $(1) that are missing: quietly,
# idempotently, refreshing the package lists first only when something is
# missing. Root uses apt-get directly, anyone else sudo.
define install_pkgs
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "voicebridge: not a Debian-like system. Install by hand:$$missing"; \
	    echo "  (libopus and libsoxr development files, pkg-config, a C compiler, espeak-ng; chromium for tests)"; exit 1; fi; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "voicebridge: installing$$missing"; \
	  $$sudo apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
endef

deps:
	$(call install_pkgs,$(DEPS_RUN))

deps-test:
	$(call install_pkgs,$(DEPS_TEST))

deps-bench:
	$(call install_pkgs,$(DEPS_BENCH))

build: deps
	$(GO) build $(GOFLAGS_ALL) -o $(BIN) ./cmd/voicebridge

run: build
	@echo "voicebridge: demo page at http://$${VOICEBRIDGE_LISTEN:-127.0.0.1:8080}/"
	./$(BIN) $(ARGS)

vet:
	$(GO) vet $(GOFLAGS_ALL) ./...

staticcheck:
	$(GO) run $(STATICCHECK) -tags $(TAGS) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# unit: one test binary at a time (-p 1). Several packages hold real-time
# receiver-side tests (media, bridge) and real peers (Janus, baresip, a
# three-node fleet); run side by side on 2 cores they starve each other's
# pacers and TTS, which is not what those tests measure. About 7 minutes
# warm; more from cold caches (packages then also build one at a time).
unit:
	$(GO) test $(GOFLAGS_ALL) -race -count=1 -p 1 -timeout 20m ./...

test: deps-test fmt-check vet staticcheck unit

# test-cluster: the fleet alone (redis-server, three voicebridge processes,
# HAProxy; the Kamailio config check). make test runs it too, inside unit.
# More calls: make test-cluster VOICEBRIDGE_FLEET_CALLS=300
test-cluster: deps-test
	VOICEBRIDGE_FLEET_CALLS=$(VOICEBRIDGE_FLEET_CALLS) $(GO) test $(GOFLAGS_ALL) -race -count=1 -timeout 5m -v \
	  -run 'TestFleet|TestKamailioConfig|TestParseConfigClusterFlags' ./cmd/voicebridge/
	$(GO) test $(GOFLAGS_ALL) -race -count=1 -timeout 5m ./bridge/cluster/...
	$(GO) test $(GOFLAGS_ALL) -race -count=1 -timeout 5m -run 'TestCluster' ./bridge/

# bench: the Go micro-benchmarks, then the peers (ffmpeg, GStreamer: peers.sh,
# on the still quiet machine), then the load/pacing/cost report of
# cmd/voicebridge-load (table on stdout, JSON in bench-results/): the search
# for the largest N, its 60 s final run, the same N again with G.711 (PCMU)
# and two-way calls (caller audio, bots listening), idle calls and continuous
# speech. It compares with cmd/voicebridge-load/last-result.json and rewrites
# it (commit it with a full run). About 12–20 minutes on 2 cores. Knobs:
#   BENCH_FLAGS='-window 60s -final-window 300s -timeout 90m'   (go run ./cmd/voicebridge-load -h)
#   PEER_SECONDS=300   GOBENCH='^$' (no micro-benchmarks)
BENCH_FLAGS  ?=
PEER_SECONDS ?= 60
GOBENCH      ?= .
LOAD         := cmd/voicebridge-load
bench: deps-bench
	@mkdir -p bench-results
	@$(GO) test $(GOFLAGS_ALL) -run '^$$' -bench '$(GOBENCH)' -benchmem ./... > bench-results/gobench-latest.txt 2>&1; rc=$$?; \
	  cat bench-results/gobench-latest.txt; exit $$rc
	$(GO) run $(GOFLAGS_ALL) ./$(LOAD) -encoder > bench-results/encoder.env
	bash $(LOAD)/peers.sh peers bench-results/encoder.env bench-results/peers.txt $(PEER_SECONDS)
	$(GO) run $(GOFLAGS_ALL) ./$(LOAD) -out bench-results -peers bench-results/peers.txt \
	  -perf 'bash $(LOAD)/peers.sh perf' -last $(LOAD)/last-result.json $(BENCH_FLAGS)

clean:
	rm -rf bin artifacts
