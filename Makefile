# posgate — see README.md. mattn/go-sqlite3 needs cgo: CGO_ENABLED=1 and a
# C compiler (gcc; for ARM store hardware a cross gcc, e.g.
# CC=aarch64-linux-gnu-gcc GOARCH=arm64).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
export CGO_ENABLED := 1

# Seconds of fuzzing per target for `make fuzz`.
FUZZTIME ?= 10s

.PHONY: all build run test fmt-check vet lint bench fuzz sim-terminal sim-printer sim-taxservice clean release release-deps faults demo

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/posgate ./cmd/posgate

# Starts posgate against simulated devices with a dev config under ./data.
# An empty store gets an admin key, printed once with a curl line to try.
run: build
	@mkdir -p data && chmod 700 data
	@test -f data/posgate.toml || cp configs/dev.toml data/posgate.toml
	./bin/posgate serve --dev --simulate --config data/posgate.toml

# go test's own ok/FAIL lines, plus a line every 30 s naming the packages
# still running (internal/testprogress), so a slow package shows.
test: fmt-check vet
	$(GO) run ./internal/testprogress $(GO) test -json -race -shuffle=on -timeout 12m ./...

# The power-cut soak: 1,000 seeds of each power-cut test, invoices and
# money (docs/durability.md); each prints its summary line.
FAULT_SEEDS ?= 1000
faults:
	POWERCUT_REQUIRED=1 POWERCUT_SEEDS=$(FAULT_SEEDS) $(GO) run ./internal/testprogress \
		$(GO) test -json -run '^TestPowerCut(Money)?$$' -timeout 90m ./internal/powerfs

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# staticcheck comes from the Go module proxy at a pinned version.
lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Every benchmark prints its figure beside a baseline from the same run
# (raw loopback HTTP, raw SQLite commit); see README "Performance".
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...

# Runs each fuzz target for FUZZTIME.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# A scripted sale on simulated devices, payment to verified webhook,
# printed step by step (cmd/posgate-demo; the daemon is ended by its pid).
demo: build
	$(GO) run ./cmd/posgate-demo -bin ./bin/posgate

sim-terminal: build
	./bin/posgate sim terminal --pty

sim-printer: build
	./bin/posgate sim printer --pty

# Release: static-ish binaries for the store boxes (linux/amd64, linux/arm64;
# cgo for SQLite, so arm64 uses Debian's cross gcc) and a .deb for each, made
# by nfpm from packaging/nfpm.yaml, then checked by packaging's release test.
# A Debian version must start with a digit: untagged trees get 0.0.0~git<sha>.
NFPM        ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DEB_VERSION ?= $(shell sh packaging/deb-version.sh)
ARM64_CC    ?= aarch64-linux-gnu-gcc

release: release-deps
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" -o bin/linux-amd64/posgate ./cmd/posgate
	GOOS=linux GOARCH=arm64 CC=$(ARM64_CC) $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" -o bin/linux-arm64/posgate ./cmd/posgate
	rm -f bin/posgate_*.deb
	for a in amd64 arm64; do mkdir -p bin/stage && cp bin/linux-$$a/posgate bin/stage/posgate && \
		ARCH=$$a VERSION=$(DEB_VERSION) $(NFPM) package -f packaging/nfpm.yaml -p deb -t bin/ || exit 1; done
	$(GO) test -count=1 -tags release ./packaging/
	@ls -l bin/linux-*/posgate bin/posgate_*.deb

# The cross compiler comes from Debian's packages when it is missing.
release-deps:
	@command -v $(ARM64_CC) >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross; }
# The Montenegrin tax service on https://127.0.0.1:8443 (configs/dev.toml).
sim-taxservice: build
	@mkdir -p data
	./bin/posgate sim taxservice --addr 127.0.0.1:8443 --ca-out data/taxservice-ca.pem --control

clean:
	rm -rf bin

.PHONY: sim-escpos
sim-escpos: build
	./bin/posgate sim printer --protocol escpos --pty --control
