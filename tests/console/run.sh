#!/usr/bin/env bash
# Browser tests of the web console: installs Debian's chromium and the pinned npm
# packages when missing, builds the debug server, and runs console.test.mjs against it
# (the test starts the server on a free port with a temporary SQLite database).
# UPDATE_SCREENSHOTS=1 copies the screenshots to docs/screenshots/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v chromium >/dev/null; then
    echo "installing chromium (Debian package)"
    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
        || { echo "FAIL: chromium is required for the console browser tests"; exit 1; }
fi
command -v node >/dev/null || { echo "FAIL: Node.js is required for the console browser tests"; exit 1; }

cd "$here"
npm ci --no-audit --no-fund --loglevel=error

target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --locked --quiet --bin codesherpa)

export CODESHERPA_BIN="$target/debug/codesherpa"
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
export SCREENSHOT_DIR="$here/artifacts"
rm -rf "$SCREENSHOT_DIR"
# Bounded: a hung browser or server must not hold CI.
timeout 300 node console.test.mjs

if [ "${UPDATE_SCREENSHOTS:-0}" = 1 ]; then
    mkdir -p "$root/docs/screenshots"
    cp "$SCREENSHOT_DIR"/*.png "$root/docs/screenshots/"
fi
