#!/usr/bin/env bash
# Installs the standard Ethereum clients the end-to-end tests drive (`tests/tests/eth.rs`)
# into <target>/tools, from the npm registry: foundry's `cast` at a pinned version. Idempotent
# and cached: a second run with the same versions does nothing. `make test` calls it first.
set -euo pipefail
TARGET="${1:-target}"
DIR="$TARGET/tools"
CAST_VERSION="1.7.1"
STAMP="$DIR/.installed-cast-$CAST_VERSION"
if [ -f "$STAMP" ] && [ -x "$DIR/node_modules/@foundry-rs/cast-linux-amd64/bin/cast" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "tests/tools/install.sh: npm is needed to install cast" >&2; exit 1; }
mkdir -p "$DIR"
echo "installing cast $CAST_VERSION from npm into $DIR"
npm install --prefix "$DIR" --no-audit --no-fund --no-save --loglevel=error \
  "@foundry-rs/cast-linux-amd64@$CAST_VERSION"
"$DIR/node_modules/@foundry-rs/cast-linux-amd64/bin/cast" --version | head -1
touch "$STAMP"
