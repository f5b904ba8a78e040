#!/usr/bin/env bash
# Installs the standard Ethereum clients the end-to-end tests drive (`tests/tests/eth.rs`) into
# <target>/tools, from the package registries, at pinned versions: foundry's `cast` and viem
# from npm (and `anvil`, which `make bench` compares with), web3.py and eth-account from PyPI (in a venv). Idempotent and cached: a second run
# with the same versions does nothing. `make test` calls it first.
set -euo pipefail
TARGET="${1:-target}"
DIR="$TARGET/tools"
CAST_VERSION="1.7.1"
ANVIL_VERSION="1.7.1"
VIEM_VERSION="2.57.20"
WEB3_VERSION="8.0.0"
ETH_ACCOUNT_VERSION="0.14.0"
STAMP="$DIR/.installed-cast-$CAST_VERSION-anvil-$ANVIL_VERSION-viem-$VIEM_VERSION-web3-$WEB3_VERSION-eth-account-$ETH_ACCOUNT_VERSION"
if [ -f "$STAMP" ]; then
  exit 0
fi
for tool in npm python3; do
  command -v "$tool" >/dev/null || { echo "tests/tools/install.sh: $tool is needed" >&2; exit 1; }
done
mkdir -p "$DIR"
echo "installing cast $CAST_VERSION, anvil $ANVIL_VERSION (for make bench) and viem $VIEM_VERSION from npm into $DIR"
npm install --prefix "$DIR" --no-audit --no-fund --no-save --loglevel=error \
  "@foundry-rs/cast-linux-amd64@$CAST_VERSION" "@foundry-rs/anvil-linux-amd64@$ANVIL_VERSION" \
  "viem@$VIEM_VERSION"
"$DIR/node_modules/@foundry-rs/cast-linux-amd64/bin/cast" --version | head -1
echo "installing web3 $WEB3_VERSION and eth-account $ETH_ACCOUNT_VERSION from PyPI into $DIR/venv"
python3 -m venv "$DIR/venv"
"$DIR/venv/bin/pip" install --quiet --disable-pip-version-check \
  "web3==$WEB3_VERSION" "eth-account==$ETH_ACCOUNT_VERSION"
"$DIR/venv/bin/python" -c "import web3, eth_account; print('web3', web3.__version__)"
touch "$STAMP"
