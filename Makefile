# Twinpeg: the two commands are `make devnet` and `make test`.
CARGO ?= cargo

.PHONY: all build test lint fmt devnet bench clean

all: build

build:
	$(CARGO) build --workspace --bins

## Build everything and run every test, end-to-end ones included.
test:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Build release binaries and start a local network (one node per chain for now).
devnet:
	$(CARGO) build --release --bins
	deploy/devnet.sh

bench:
	@echo "make bench: the benchmark suite arrives with the benchmarks issue" >&2
	@exit 1

clean:
	$(CARGO) clean
	rm -rf devnet
