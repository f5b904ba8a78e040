# Twinpeg: every binary (mainchain, sidechain, bridge, devnet, wallet) in one small runtime image.
# Build: `make docker` (docker build -t twinpeg .). Run the devnet topology: deploy/compose.yaml.
# (Written without a Docker daemon at hand: see docs/deploy.md.)

# --- build stage: the Rust toolchain and the whole workspace ---
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
    && mkdir -p /out \
    && for b in mainchain sidechain bridge devnet wallet; do \
         if [ -f "target/release/$b" ]; then cp "target/release/$b" /out/; fi; \
       done \
    && strip /out/*

# --- runtime stage: the binaries, the example configs, an unprivileged user ---
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/twinpeg twinpeg \
    && mkdir -p /devnet \
    && chown twinpeg:twinpeg /devnet
COPY --from=build /out/ /usr/local/bin/
# Annotated example configs (node, genesis, bridge member, devnet topology) for operators to copy.
COPY deploy/*.toml /etc/twinpeg/
USER twinpeg
WORKDIR /var/lib/twinpeg
# JSON-RPC (HTTP + WebSocket, /health, /metrics) and peer-to-peer, mainchain then sidechain;
# node i of a chain takes the first port + i (deploy/devnet.toml: 2 authorities + 1 follower);
# then the bridge members' status servers and attestation gossip (member i: first port + i).
EXPOSE 8545-8547 9545-9547 30333-30335 30433-30435 7545-7547 31333-31335
CMD ["devnet", "--help"]
