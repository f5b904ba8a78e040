#!/usr/bin/env bash
# A minimal local devnet: one mainchain and one sidechain node (each its own process, own data
# dir, own log), prefunded with the well-known development accounts. Resumes existing chains;
# FRESH=1 wipes them. Ctrl-C stops both. The full launcher (several nodes per chain, the
# federation) replaces this script with the devnet issue.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
DIR=${DEVNET_DIR:-devnet}
MAIN_PORT=${MAIN_PORT:-8545}
SIDE_PORT=${SIDE_PORT:-9545}
MAIN_BLOCK_MS=${MAIN_BLOCK_MS:-6000}
SIDE_BLOCK_MS=${SIDE_BLOCK_MS:-1000}

# Development accounts of the mnemonic "test test test test test test test test test test test
# junk" at m/44'/60'/0'/0/i: public test keys, never for real funds.
DEV_ACCOUNTS=(
  "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
  "0x70997970C51812dc3A010C7d01b50e0d17dc79C8 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
  "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC 0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
  "0x90F79bf6EB2c4f870365E785982E1f101E93b906 0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
  "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65 0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"
  "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc 0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"
  "0x976EA74026E726554dB657fA54763abd0C3a0aa9 0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"
  "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955 0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"
  "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f 0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"
  "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720 0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
)
BALANCE="10000000000000000000000" # 10,000 coins

[ "${FRESH:-0}" = 1 ] && rm -rf "$DIR"
mkdir -p "$DIR"

genesis() { # name chain_id block_ms authority fee_section
  local f="$DIR/$1/genesis.toml"
  {
    echo "chain_id = $2"
    echo "block_time_ms = $3"
    echo "authorities = [\"$4\"]"
    echo "max_block_weight = 8000000"
    echo "max_tx_size = 16384"
    echo
    echo "$5"
    for entry in "${DEV_ACCOUNTS[@]}"; do
      echo
      echo "[[accounts]]"
      echo "address = \"${entry%% *}\""
      echo "balance = \"$BALANCE\""
    done
  } >"$f"
}

setup() { # name chain_id block_ms fee_section
  local name=$1
  if [ ! -f "$DIR/$name/data/chain.redb" ]; then
    mkdir -p "$DIR/$name"
    rm -f "$DIR/$name/authority.key"
    local addr
    addr=$("$BIN/$name" keygen --out "$DIR/$name/authority.key")
    genesis "$name" "$2" "$3" "$addr" "$4"
    "$BIN/$name" init --genesis "$DIR/$name/genesis.toml" --data-dir "$DIR/$name/data" >/dev/null
  fi
}

setup mainchain 1001 "$MAIN_BLOCK_MS" $'[fee]\nrule = "fee-rate"\nmin_fee_rate = "1000000000"'
setup sidechain 2002 "$SIDE_BLOCK_MS" $'[fee]\nrule = "base-fee"\ninitial_base_fee = "1000000000"\nmin_base_fee = "1000000"'

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "devnet stopped"
  exit 0
}
trap cleanup INT TERM EXIT

start() { # name port
  rm -f "$DIR/$1/data/endpoints.json"
  "$BIN/$1" run --data-dir "$DIR/$1/data" --rpc-addr "127.0.0.1:$2" \
    --authority-key "$DIR/$1/authority.key" >>"$DIR/$1/node.log" 2>&1 &
  pids+=($!)
}
start mainchain "$MAIN_PORT"
start sidechain "$SIDE_PORT"

for name in mainchain sidechain; do
  for _ in $(seq 1 300); do
    [ -f "$DIR/$name/data/endpoints.json" ] && break
    sleep 0.1
  done
  [ -f "$DIR/$name/data/endpoints.json" ] || { echo "$name failed to start; see $DIR/$name/node.log" >&2; exit 1; }
done

cat <<TABLE

Twinpeg devnet is up.

  chain       chain id  block time  JSON-RPC (HTTP)           WebSocket               health / metrics
  mainchain   1001      ${MAIN_BLOCK_MS} ms     http://127.0.0.1:$MAIN_PORT     ws://127.0.0.1:$MAIN_PORT   /health  /metrics
  sidechain   2002      ${SIDE_BLOCK_MS} ms     http://127.0.0.1:$SIDE_PORT     ws://127.0.0.1:$SIDE_PORT   /health  /metrics

Prefunded development accounts (10,000 coins on each chain; public keys, never use for real funds):
TABLE
i=0
for entry in "${DEV_ACCOUNTS[@]}"; do
  printf '  (%d) %s  %s\n' "$i" "${entry%% *}" "${entry##* }"
  i=$((i + 1))
done
cat <<TABLE

Logs: $DIR/mainchain/node.log, $DIR/sidechain/node.log   Data: $DIR/*/data
Try:  curl -s http://127.0.0.1:$MAIN_PORT -H 'content-type: application/json' \\
        -d '{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["${DEV_ACCOUNTS[0]%% *}","latest"]}'
Ctrl-C stops the devnet; run make devnet again to resume it (FRESH=1 starts over).
TABLE

wait -n "${pids[@]}" || true
echo "a node exited; see the logs above" >&2
