#!/usr/bin/env bash
# What pruning costs serving (SPEC §6.1, retention): a fresh server and database per
# backend, ROWS finished jobs 30 days old written in one statement, then `GET
# /api/v1/user/me` at a fixed concurrency for a baseline window and again while the
# server's own retention job deletes them (`examples/retention_bench.rs` queues the run
# and drives the load). Prints p50 / p99 / max of both windows and how long the prune ran.
#
# Usage: bench/retention.sh [baseline-seconds] [BINARY]
# Optional: RETENTION_ROWS (1000000), RETENTION_CONNECTIONS (16), RETENTION_BACKENDS
# ("sqlite postgres"), RETENTION_PROFILE (release; `debug` for a quick check of the
# script with a small RETENTION_ROWS), BENCH_POSTGRES_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-20}"
shift || true
ROWS="${RETENTION_ROWS:-1000000}"
CONNECTIONS="${RETENTION_CONNECTIONS:-16}"
PROFILE="${RETENTION_PROFILE:-release}"
PG_ADMIN="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="bench/results"
PORT=8520
mkdir -p "$OUT"

PROFILE_FLAG=$([ "$PROFILE" = release ] && echo --release || true)
cargo build $PROFILE_FLAG --quiet --example retention_bench
if [ $# -eq 0 ]; then
    cargo build $PROFILE_FLAG --quiet --bin codesherpa
    set -- "${CARGO_TARGET_DIR:-target}/$PROFILE/codesherpa"
fi
BIN="$1"
CLIENT="${CARGO_TARGET_DIR:-target}/$PROFILE/examples/retention_bench"
SERVER=""
cleanup() { [ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

run_backend() { # name database-url
    echo "== $1: $ROWS old finished jobs, /user/me at c=$CONNECTIONS, $(uptime | sed 's/.*load/load/')"
    DATABASE_URL="$2" PORT="$PORT" HOST=127.0.0.1 LOG_FORMAT=json RUST_LOG=warn,codesherpa::jobs=info \
        SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" BCRYPT_ROUNDS=4 \
        RATE_LIMIT_AUTH_PER_MINUTE=0 DATABASE_MAX_CONNECTIONS=16 JOB_POLL_INTERVAL_MS=100 \
        "$BIN" serve > "$OUT/retention-$1.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { cat "$OUT/retention-$1.log"; exit 1; }
    "$CLIENT" "http://127.0.0.1:$PORT" "$2" "$ROWS" "$CONNECTIONS" "$DURATION"
    grep -h "old rows pruned" "$OUT/retention-$1.log" || true
    cleanup
    SERVER=""
}

BACKENDS="${RETENTION_BACKENDS:-sqlite postgres}"
if [[ " $BACKENDS " == *" sqlite "* ]]; then
    rm -f "$OUT"/retention.db*
    run_backend sqlite "sqlite://$OUT/retention.db"
    ls -l "$OUT"/retention.db* | awk '{print "sqlite file after the prune:", $5, $NF}'
    rm -f "$OUT"/retention.db*
fi

if [[ " $BACKENDS " == *" postgres "* ]]; then
    PG_DB="codesherpa_retention_$$"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB" >/dev/null
    run_backend postgres "${PG_ADMIN%/*}/$PG_DB"
    psql "$PG_ADMIN" -qc "DROP DATABASE $PG_DB WITH (FORCE)" >/dev/null
fi
