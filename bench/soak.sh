#!/usr/bin/env bash
# Memory over a bounded mixed soak of the release server (SQLite, then PostgreSQL unless
# SOAK_BACKENDS says otherwise). Usage: bench/soak.sh [minutes] [BINARY]   (default 10)
#
# Idle RSS after start, then `wrk -t2 -c64` with bench/soak.lua (lists, /user/me, project
# create + delete, chats with the local engine) for the whole time, sampling the server's
# RSS every 30 s; then 10 s idle and a last sample. It prints the samples and two
# ratios: last / idle (target <= 2) and the growth from the first loaded minute, and over
# the second half, to the end (target: flat).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-10}"
PG_ADMIN="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PORT=8121 BASE="http://127.0.0.1:8121"
OUT="bench/results"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
if [ -n "${2:-}" ]; then BIN=$2; else
    cargo build --release --quiet --bin codesherpa
    BIN="${CARGO_TARGET_DIR:-target}/release/codesherpa"
fi
SERVER=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true' EXIT
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }

soak() { # backend database-url
    DATABASE_URL="$2" PORT=$PORT HOST=127.0.0.1 RUST_LOG=warn LOG_FORMAT=json \
        SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" BCRYPT_ROUNDS=4 \
        RATE_LIMIT_AUTH_PER_MINUTE=0 RATE_LIMIT_AI_PER_MINUTE=0 DATABASE_MAX_CONNECTIONS=16 \
        "$BIN" serve > "$OUT/soak-$1.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done
    curl -sf -X POST "$BASE/api/v1/auth/register" -H 'Content-Type: application/json' \
        -d '{"name":"Soak","email":"soak@example.com","password":"soak password 1"}' >/dev/null
    TOKEN=$(curl -sf -X POST "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d '{"email":"soak@example.com","password":"soak password 1"}' |
        python3 -c "import json,sys; print(json.load(sys.stdin)['data']['access_token'])")
    for i in $(seq 1 46); do
        curl -sf -X POST "$BASE/api/v1/agents" -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/json' -d "{\"name\":\"agent $i\",\"system_prompt\":\"$(printf 'x%.0s' $(seq 1 500))\"}" >/dev/null
    done
    sleep 1
    local idle samples=() seconds=$((MINUTES * 60))
    idle=$(rss)
    # Access tokens live 30 minutes by default: longer soaks need ACCESS_TOKEN_EXPIRE_MINUTES.
    TOKEN="$TOKEN" wrk -t2 -c64 -d"${seconds}s" --timeout 10s -s bench/soak.lua "$BASE" > "$OUT/soak-$1-wrk.txt" &
    local load=$!
    for _ in $(seq 1 $((seconds / 30))); do sleep 30; samples+=("$(rss)"); done
    wait "$load"
    sleep 10
    local last
    last=$(rss)
    echo "$1: idle ${idle} KiB; every 30 s under load: ${samples[*]} KiB; 10 s after: ${last} KiB"
    # Caches (SQLite's page cache per connection, prepared statements) fill in the first
    # minutes; a leak keeps growing after, so the second half is the test of flatness.
    awk -v i="$idle" -v f="${samples[1]:-${samples[0]}}" -v m="${samples[$(( ${#samples[@]} / 2 ))]}" \
        -v e="${samples[-1]}" -v l="$last" 'BEGIN {
        printf "%s: after/idle %.2f (target <= 2); growth from the first loaded minute %+.1f %%, over the second half %+.1f %%\n",
               "'"$1"'", l / i, 100 * (e - f) / f, 100 * (e - m) / m }'
    awk '/Requests\/sec/ {print "'"$1"': " $2 " requests/s"} /Non-2xx/ {print "'"$1"': non-2xx " $NF}' "$OUT/soak-$1-wrk.txt"
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}

for backend in ${SOAK_BACKENDS:-sqlite postgres}; do
    case $backend in
    sqlite) rm -f "$OUT"/soak.db*; soak sqlite "sqlite://$OUT/soak.db" ;;
    postgres)
        db="codesherpa_soak_$$"
        psql "$PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
        soak postgres "${PG_ADMIN%/*}/$db"
        psql "$PG_ADMIN" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null ;;
    esac
done
