#!/usr/bin/env bash
# Streaming and WebSocket benchmarks of the release server, on loopback only, every run
# bounded. Usage: bench/realtime.sh   (results in bench/results/realtime-*.txt)
# BENCH_DATABASE_URL picks the database (default: a fresh SQLite file).
#  1. /chat/stream against a mock OpenAI-compatible provider (20 tokens, 20 ms apart):
#     time to first delta minus the mock's 20 ms, at 50 concurrent streams;
#     then 1,000 concurrent streams.
#  2. 10,000 WebSocket connections: server RSS per connection; broadcast latency to the
#     1,000 sockets of one user.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${BENCH_PORT:-8099}"
MOCK="127.0.0.1:${BENCH_MOCK_PORT:-9901}"
BASE="http://127.0.0.1:$PORT"
OUT="bench/results"
mkdir -p "$OUT"
# Raise the soft limit on open files as far as this machine allows (10,000 sockets).
ulimit -n "$(ulimit -Hn)"

cargo build --release --quiet --bin codesherpa --example sse_bench --example ws_bench
TARGET="${CARGO_TARGET_DIR:-target}/release"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$TARGET/examples/sse_bench" mock "$MOCK" 20 20 &
PIDS+=($!)

rm -f "$OUT"/realtime.db*
DATABASE_URL="${BENCH_DATABASE_URL:-sqlite://$OUT/realtime.db}" PORT="$PORT" HOST=127.0.0.1 DEBUG=false LOG_FORMAT=json RUST_LOG=warn \
    SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" BCRYPT_ROUNDS=4 \
    RATE_LIMIT_AUTH_PER_MINUTE=0 RATE_LIMIT_AI_PER_MINUTE=0 DATABASE_MAX_CONNECTIONS=16 \
    LLM_PROVIDER=openai OPENAI_BASE_URL="http://$MOCK/v1" OPENAI_API_KEY=bench OPENAI_MODEL=mock \
    "$TARGET/codesherpa" serve > "$OUT/realtime-server.log" 2>&1 &
SERVER=$!
PIDS+=($SERVER)
for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done
sleep 1
echo "idle RSS: $(awk '/VmRSS/ {print $2}' /proc/$SERVER/status) KiB" | tee "$OUT/realtime-summary.txt"

"$TARGET/examples/sse_bench" load "$BASE" 50 1000 20 | tee -a "$OUT/realtime-summary.txt"
"$TARGET/examples/sse_bench" load "$BASE" 1000 3000 20 | tee -a "$OUT/realtime-summary.txt"
"$TARGET/examples/ws_bench" "$BASE" 10000 1000 20 "$SERVER" | tee -a "$OUT/realtime-summary.txt"
