#!/usr/bin/env bash
# The floor of what this machine can measure: `examples/floor.rs` (hyper alone, answering
# `/health`'s body) next to the server's `GET /health` and `GET /user/me`, with the same
# `wrk -t2 --latency` on the same two cores, rows alternated ROUNDS times. Each row also
# gives the CPU the serving process spent per request (user + system, from /proc), which
# moves far less between runs than requests/s on this shared machine.
#
# Usage: bench/floor.sh [seconds-per-row] [BINARY ...]
# Optional: ROUNDS (3), FLOOR_CONNECTIONS ("64 256").
# With several binaries (say main's and a change's) each serves its own SQLite database
# and their rows alternate. A p99 the floor itself misses is one no route of the server
# can show on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-6}"
shift || true
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
cargo build --release --quiet --example floor
if [ $# -eq 0 ]; then
    cargo build --release --quiet --bin codesherpa
    set -- "${CARGO_TARGET_DIR:-target}/release/codesherpa"
fi
BINS=("$@")
FLOOR="${CARGO_TARGET_DIR:-target}/release/examples/floor"
OUT="bench/results"
mkdir -p "$OUT"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -f "$OUT"/floor-*.db*
}
trap cleanup EXIT
rm -f "$OUT"/floor-*.db*

"$FLOOR" 127.0.0.1:8490 > "$OUT/floor-floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")
SERVER_PIDS=()
TOKENS=()
for i in "${!BINS[@]}"; do
    port=$((8491 + i))
    DATABASE_URL="sqlite://$OUT/floor-$i.db?mode=rwc" PORT="$port" HOST=127.0.0.1 RUST_LOG=warn \
        SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" BCRYPT_ROUNDS=4 \
        "${BINS[$i]}" serve > "$OUT/floor-server-$i.log" 2>&1 &
    SERVER_PIDS+=($!)
    PIDS+=($!)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
    api="http://127.0.0.1:$port/api/v1"
    curl -sf -X POST "$api/auth/register" -H 'Content-Type: application/json' \
        -d '{"name":"Floor","email":"floor@example.com","password":"benchmark password"}' >/dev/null
    TOKENS+=("$(curl -sf -X POST "$api/auth/login" -H 'Content-Type: application/json' \
        -d '{"email":"floor@example.com","password":"benchmark password"}' |
        python3 -c "import json,sys; print(json.load(sys.stdin)['data']['access_token'])")")
done
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:8490/ >/dev/null && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

row() { # name pid connections url [header]
    local name=$1 pid=$2 conns=$3 url=$4 before report
    before=$(cpu_ticks "$pid")
    report=$(wrk -t2 -c"$conns" -d"${DURATION}s" --latency ${5:+-H "$5"} "$url")
    echo "$report" | awk -v name="$name" -v conns="$conns" -v ticks=$(($(cpu_ticks "$pid") - before)) \
        -v hz="$(getconf CLK_TCK)" '
            function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                             if (v ~ /s$/) return v * 1000; return v }
            /requests in/ {requests=$1} /Requests\/sec/ {rps=$2}
            /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)} /Non-2xx/ {errors=$NF}
            END {printf "%-26s c=%-4s %7d rps  p50 %6.2f ms  p99 %6.2f ms  %5.1f us CPU/request%s\n",
                        name, conns, rps, p50, p99, 1e6 * ticks / hz / requests,
                        errors ? "  non-2xx " errors : ""}'
}

for round in $(seq 1 "${ROUNDS:-3}"); do
    for conns in ${FLOOR_CONNECTIONS:-64 256}; do
        echo "round $round"
        row "floor (hyper alone)" "$FLOOR_PID" "$conns" http://127.0.0.1:8490/
        for i in "${!BINS[@]}"; do
            base="http://127.0.0.1:$((8491 + i))"
            row "bin$i GET /health" "${SERVER_PIDS[$i]}" "$conns" "$base/health"
            row "bin$i GET /user/me" "${SERVER_PIDS[$i]}" "$conns" "$base/api/v1/user/me" \
                "Authorization: Bearer ${TOKENS[$i]}"
        done
    done
done
