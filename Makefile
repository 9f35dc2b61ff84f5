# posgate — see README.md. mattn/go-sqlite3 needs cgo: CGO_ENABLED=1 and a
# C compiler (gcc; for ARM store hardware a cross gcc, e.g.
# CC=aarch64-linux-gnu-gcc GOARCH=arm64).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
export CGO_ENABLED := 1

# Seconds of fuzzing per target for `make fuzz`.
FUZZTIME ?= 10s

.PHONY: all build run test fmt-check vet lint bench fuzz sim-terminal sim-printer clean demo

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/posgate ./cmd/posgate

# Starts posgate against simulated devices with a dev config under ./data.
# An empty store gets an admin key, printed once with a curl line to try.
run: build
	@mkdir -p data && chmod 700 data
	@test -f data/posgate.toml || cp configs/dev.toml data/posgate.toml
	./bin/posgate serve --dev --simulate --config data/posgate.toml

test: fmt-check vet
	$(GO) test -race -shuffle=on -timeout 12m ./...

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

clean:
	rm -rf bin
