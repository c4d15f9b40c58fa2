#!/usr/bin/env bash
# Benchmarks the release server with wrk on SQLite and PostgreSQL. Loopback only; every
# load run is bounded in time. Usage: bench/run.sh [seconds-per-run]   (default 10)
# Needs: wrk (apt-get install wrk), a local PostgreSQL for the postgres half
# (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10}"
PORT="${BENCH_PORT:-8099}"
BASE="http://127.0.0.1:$PORT"
PG_ADMIN="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="bench/results"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }

cargo build --release --quiet --bin codesherpa --example hash_rate
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/codesherpa"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['data']['$1'])"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Prints "requests/s p50 p99" from a wrk --latency report.
summarise() {
    awk '/Requests\/sec/ {rps=$2}
         /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
         /Non-2xx/ {errors=$NF}
         END {printf "%s rps, p50 %s, p99 %s%s\n", rps, p50, p99, (errors ? ", non-2xx " errors : "")}'
}

load() { # name connections url [wrk args...]
    local name=$1 conns=$2 url=$3; shift 3
    local report="$OUT/$BACKEND-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')-c$conns.txt"
    wrk -t2 -c"$conns" -d"${DURATION}s" --latency "$@" "$url" > "$report"
    printf "%-10s %-28s c=%-4s %s\n" "$BACKEND" "$name" "$conns" "$(summarise < "$report")"
}

start_server() { # database-url
    DATABASE_URL="$1" PORT="$PORT" HOST=127.0.0.1 DEBUG=false LOG_FORMAT=json RUST_LOG=warn \
        SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        RATE_LIMIT_AUTH_PER_MINUTE=0 RATE_LIMIT_AI_PER_MINUTE=0 BCRYPT_ROUNDS=12 \
        DATABASE_MAX_CONNECTIONS=16 "$BIN" serve > "$OUT/$BACKEND-server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && return; sleep 0.1; done
    echo "server did not start"; cat "$OUT/$BACKEND-server.log"; exit 1
}

run_backend() { # backend database-url
    BACKEND=$1
    start_server "$2"
    sleep 1
    echo "$BACKEND idle RSS: $(rss_kb "$SERVER_PID") KiB"

    local email="bench-$RANDOM@example.com" password="benchmark password"
    curl -sf -X POST "$BASE/api/v1/auth/register" -H 'Content-Type: application/json' \
        -d "{\"name\":\"Bench\",\"email\":\"$email\",\"password\":\"$password\"}" >/dev/null
    TOKEN=$(curl -sf -X POST "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" | json_field access_token)
    # 4 built-in agents + 46 = 50 agents.
    for i in $(seq 1 46); do
        curl -sf -X POST "$BASE/api/v1/agents" -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/json' -d "{\"name\":\"agent $i\"}" >/dev/null
    done
    local auth=(-H "Authorization: Bearer $TOKEN")

    load "GET /health (no auth, no DB)" 64 "$BASE/health"
    for conns in 64 256; do
        load "GET /user/me" "$conns" "$BASE/api/v1/user/me" "${auth[@]}"
        load "GET /agents (50)" "$conns" "$BASE/api/v1/agents" "${auth[@]}"
    done
    TOKEN="$TOKEN" BODY='{"name":"bench project","repo_url":"https://github.com/acme/x"}' \
        load "POST /projects" 64 "$BASE/api/v1/projects" -s bench/wrk-post.lua
    # Logins queue behind bcrypt: allow long waits rather than count them as errors.
    TOKEN="" BODY="{\"email\":\"$email\",\"password\":\"$password\"}" \
        load "POST /auth/login" 64 "$BASE/api/v1/auth/login" -s bench/wrk-post.lua --timeout 30s

    # Login storm and reads at once: do reads stay fast while every core hashes?
    TOKEN="" BODY="{\"email\":\"$email\",\"password\":\"$password\"}" \
        wrk -t1 -c64 -d"$((DURATION + 2))s" --timeout 30s -s bench/wrk-post.lua "$BASE/api/v1/auth/login" \
        > "$OUT/$BACKEND-storm-login.txt" &
    local storm=$!
    sleep 1
    load "GET /user/me during storm" 64 "$BASE/api/v1/user/me" "${auth[@]}"
    wait "$storm"
    echo "$BACKEND loaded RSS: $(rss_kb "$SERVER_PID") KiB"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

echo "bcrypt cost 12 capacity on $(nproc) cores: $("$TARGET/release/examples/hash_rate" 12 5) hashes/s"

rm -f "$OUT"/bench.db*
run_backend sqlite "sqlite://$OUT/bench.db"

PG_DB="codesherpa_bench_$$"
psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB" >/dev/null
run_backend postgres "${PG_ADMIN%/*}/$PG_DB"
psql "$PG_ADMIN" -qc "DROP DATABASE $PG_DB WITH (FORCE)" >/dev/null
