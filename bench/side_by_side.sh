#!/usr/bin/env bash
# Two builds side by side on the codebase index, so that a machine whose speed drifts
# hits both alike: each indexes the corpus of bench/codebase.sh on its own server and
# database, then 8-second `wrk -c32` runs of the search rotation alternate between them.
# With COLD=1, instead: for each build, one instance indexes and a second one on the same
# database answers its first searches (one client), as after a restart.
# Usage: bench/side_by_side.sh sqlite|postgres BIN_A BIN_B [rounds]   (default 3)
#        COLD=1 bench/side_by_side.sh postgres BIN_A BIN_B
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND=$1 A=$2 B=$3 ROUNDS=${4:-3}
PG_ADMIN="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
FILES="${BENCH_FILES:-5000}"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
WORK="$(mktemp -d)"
PIDS=()
DBS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for db in "${DBS[@]}"; do psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

CORPUS="${BENCH_CORPUS:-$(ls -d ~/.cargo/registry/src/*/ | awk 'NR == 1')}"
(cd "$CORPUS" && find . -name '*.rs' -size -1024k | sort | awk -v n="$FILES" 'NR <= n') > "$WORK/list"
tar czf "$WORK/corpus.tar.gz" -C "$CORPUS" -T "$WORK/list"
echo "corpus: $(wc -l < "$WORK/list") files; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

database() { # name -> URL
    if [ "$BACKEND" = sqlite ]; then
        echo "sqlite://$WORK/$1.db"
    else
        psql "$PG_ADMIN" -qc "CREATE DATABASE $1" >/dev/null
        DBS+=("$1")
        echo "${PG_ADMIN%/*}/$1"
    fi
}

serve() { # binary database-url port
    DATABASE_URL="$2" PORT="$3" HOST=127.0.0.1 LOG_FORMAT=json RUST_LOG=warn \
        SECRET_KEY=side-by-side-benchmark-key-0123456789abcdef RATE_LIMIT_AUTH_PER_MINUTE=0 \
        RATE_LIMIT_AI_PER_MINUTE=0 BCRYPT_ROUNDS=4 DATABASE_MAX_CONNECTIONS=16 \
        "$1" serve > "$WORK/server-$3.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$3/health" >/dev/null && return; sleep 0.1; done
    echo "server on $3 did not start"; cat "$WORK/server-$3.log"; exit 1
}

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

index() { # port -> "token project-id"; indexes the corpus
    local base="http://127.0.0.1:$1" token id
    curl -sf -X POST "$base/api/v1/auth/register" -H 'Content-Type: application/json' \
        -d '{"name":"Bench","email":"bench@example.com","password":"benchmark password"}' >/dev/null
    token=$(curl -sf -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d '{"email":"bench@example.com","password":"benchmark password"}' | json "['data']['access_token']")
    id=$(curl -sf -X POST "$base/api/v1/projects" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d '{"name":"corpus"}' | json "['data']['id']")
    curl -sf -o /dev/null -X PUT "$base/api/v1/projects/$id/files" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/gzip' --data-binary "@$WORK/corpus.tar.gz"
    echo "$token $id"
}

if [ "${COLD:-0}" = 1 ]; then
    port=8111
    for bin in "$A" "$B"; do
        url=$(database "cold_$port")
        serve "$bin" "$url" "$port"
        read -r token id <<< "$(index "$port")"
        serve "$bin" "$url" $((port + 1))
        echo "$bin, a second instance's first searches:"
        for q in fn%20new HashMap self fn%20new ParseError; do
            curl -s -w ' %{time_total}' "http://127.0.0.1:$((port + 1))/api/v1/projects/$id/search?q=$q&limit=20" \
                -H "Authorization: Bearer $token" | python3 -c "import json,sys; body, took = sys.stdin.read().rsplit(' ', 1); \
d = json.loads(body)['data']; print(f'  $q: total {d[\"total\"]}, partial {d[\"partial\"]}, {float(took) * 1000:.1f} ms')"
        done
        port=$((port + 2))
    done
    exit 0
fi

declare -A SERVER
for port in 8121 8122; do
    bin=$([ $port = 8121 ] && echo "$A" || echo "$B")
    serve "$bin" "$(database "side_$port")" "$port"
    SERVER[$port]="$bin $(index "$port")"
done
for _ in $(seq 1 "$ROUNDS"); do
    for port in 8121 8122; do
        read -r bin token id <<< "${SERVER[$port]}"
        wrk -t2 -c32 -d8s --latency -s bench/wrk-search.lua -H "Authorization: Bearer $token" \
            "http://127.0.0.1:$port/api/v1/projects/$id/search" |
            awk -v b="$bin" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {e=$NF}
                END {printf "%s: %s rps, p50 %s, p99 %s%s\n", b, rps, p50, p99, (e ? ", non-2xx " e : "")}'
    done
done
