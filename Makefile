# Twinpeg: the two commands are `make devnet` and `make test`.
CARGO ?= cargo
# Where cargo puts its output (honours CARGO_TARGET_DIR like cargo does).
TARGET ?= $(or $(CARGO_TARGET_DIR),target)

.PHONY: all build test lint fmt devnet docker bench microbench fuzz chaos clean

all: build

build:
	$(CARGO) build --workspace --bins

## Build everything and run every test, end-to-end ones included.
## Installs the Ethereum clients the e2e tests drive (cast, from npm) first: cached, idempotent.
test:
	tests/tools/install.sh $(TARGET)
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Build release binaries and start the local network (4 authority nodes per chain) with the launcher.
## Extra launcher flags: make devnet ARGS="--fresh --side-block-time-ms 500".
ARGS ?=
devnet:
	$(CARGO) build --release --bins
	$(TARGET)/release/devnet up $(ARGS)

## Faults against the peg (needs root: one network namespace per process): release binaries,
## then the full profile, about 60 minutes (docs/chaos.md). Replay or resize it with e.g.
## make chaos CHAOS_ARGS="--seed 7" or CHAOS_ARGS="--profile short".
CHAOS_ARGS ?=
chaos:
	$(CARGO) build --release --bins
	$(TARGET)/release/chaos $(CHAOS_ARGS)

## Build the container image (needs a Docker daemon); deploy/compose.yaml runs it.
docker:
	docker build -t twinpeg .

## Release build, the criterion micro-benchmarks, then the benchmark suite on loopback: one
## table with every figure and its goal, also in target/bench/results.json.
bench:
	tests/tools/install.sh $(TARGET)
	$(CARGO) build --release --bins
	$(CARGO) bench -p twinpeg-bench --bench micro
	$(TARGET)/release/bench --criterion-dir $(TARGET)/criterion --out-dir $(TARGET)/bench $(ARGS)

## Criterion micro-benchmarks of the hot paths (tx decode + recovery, block execution, redb
## commit); about a minute. Compares with the previous run kept under target/criterion.
microbench:
	$(CARGO) bench -p twinpeg-bench --bench micro

## Every fuzz target (fuzzing/src/lib.rs) under libFuzzer for FUZZ_SECONDS each (default 60;
## FUZZ_TARGETS="block signed_tx" for some); needs nightly and cargo-fuzz. Prints runs per
## target and fails on a crash. `make test` replays the seeds and corpus without nightly.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

clean:
	$(CARGO) clean
	rm -rf devnet
