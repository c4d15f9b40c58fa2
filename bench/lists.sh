#!/usr/bin/env bash
# List endpoints (and concurrent writes) against the HTTP stack's ceiling, on SQLite then
# PostgreSQL.
#
# Usage: bench/lists.sh [seconds-per-run] [BINARY ...]
# Optional: LISTS_BACKENDS ("sqlite postgres"), LISTS_CONNECTIONS for the read rows ("64
# 256"), LISTS_WRITE_CONNECTIONS for the POST rows ("64 256"; empty for none).
#
# With no binary it builds and measures the release server. With several (e.g. the
# binary of main and the binary of a change), every one serves the same database at once
# on its own port and each row is measured binary after binary, so the figures of a row
# are side by side in one run and drift on the machine hits them alike.
#
# Data: one user with 50 agents (4 built-in + 46, each with a ~600-byte system prompt),
# 50 projects and 50 chats with ~1 KB responses and a small structured `result`.
# Rows: GET /health (no auth, no database: the ceiling), /agents/{id} (one row by its key),
# then /user/me, /agents, /projects, /chat?limit=50 at 64 and 256 connections, then POST
# /projects (one INSERT each: writers queue for SQLite's one write lock), `wrk -t2
# --latency` on the same two cores.
# Every row prints requests/s, p50, p99 and the ratio to /health's requests/s measured
# in the same run by the same binary. RSS of each server: idle, right after everything,
# and 3 s later; on SQLite the sizes of the database and its write-ahead log after the load.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10}"
shift || true
PG_ADMIN="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="bench/results"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }

if [ $# -eq 0 ]; then
    cargo build --release --quiet --bin codesherpa
    set -- "${CARGO_TARGET_DIR:-target}/release/codesherpa"
fi
BINS=("$@")
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
port_of() { echo $((8110 + $1)); }

# Prints "rps p50 p99 non2xx" from a wrk --latency report (latencies in ms).
summarise() {
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                          if (v ~ /s$/) return v * 1000; return v }
         /Requests\/sec/ {rps=$2}
         /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)}
         /Non-2xx/ {errors=$NF}
         END {printf "%d %.2f %.2f %d\n", rps, p50, p99, errors}'
}

start_servers() { # database-url
    PIDS=()
    for i in "${!BINS[@]}"; do
        local port
        port=$(port_of "$i")
        DATABASE_URL="$1" PORT="$port" HOST=127.0.0.1 LOG_FORMAT=json RUST_LOG=warn \
            SECRET_KEY="$SECRET" RATE_LIMIT_AUTH_PER_MINUTE=0 RATE_LIMIT_AI_PER_MINUTE=0 \
            BCRYPT_ROUNDS=4 DATABASE_MAX_CONNECTIONS=16 "${BINS[$i]}" serve \
            > "$OUT/lists-$BACKEND-$i.log" 2>&1 &
        PIDS+=($!)
        for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
        curl -sf "http://127.0.0.1:$port/health" >/dev/null || { cat "$OUT/lists-$BACKEND-$i.log"; exit 1; }
    done
}

api() { # method path [body]
    curl -sf -X "$1" "http://127.0.0.1:$(port_of 0)/api/v1$2" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' ${3:+-d "$3"}
}

seed() { # sql-runner
    local base="http://127.0.0.1:$(port_of 0)/api/v1" email="lists-$RANDOM@example.com"
    curl -sf -X POST "$base/auth/register" -H 'Content-Type: application/json' \
        -d "{\"name\":\"Bench\",\"email\":\"$email\",\"password\":\"benchmark password\"}" >/dev/null
    TOKEN=$(curl -sf -X POST "$base/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"benchmark password\"}" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['data']['access_token'])")
    local prompt
    prompt=$(python3 -c "print(('You review Rust services for correctness and clarity. ' * 11)[:600])")
    for i in $(seq 1 46); do
        api POST /agents "{\"name\":\"agent $i\",\"description\":\"bench agent $i\",\"system_prompt\":\"$prompt\"}" >/dev/null
    done
    for i in $(seq 1 50); do
        api POST /projects "{\"name\":\"project $i\",\"description\":\"bench project $i\",\"repo_url\":\"https://github.com/acme/p$i\"}" >/dev/null
    done
    local user_id
    user_id=$(api GET /user/me | python3 -c "import json,sys; print(json.load(sys.stdin)['data']['id'])")
    # Chats straight into the table: the answers need a fixed size, which no engine gives.
    python3 - "$user_id" <<'EOF' | "$@"
import datetime, json, sys
user = int(sys.argv[1])
response = ("The function `parse_config` reads the file once and validates every key; "
            "errors name the key and the line. ") * 8
result = json.dumps({"summary": "ok", "issues": [{"line": 12, "severity": "minor"}]})
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=123456)
for i in range(50):
    at = (now + datetime.timedelta(seconds=i)).isoformat()
    print("INSERT INTO chats (user_id, session_id, message, response, result, agent, provider, "
          "model, prompt_tokens, completion_tokens, latency_ms, complete, created_at) VALUES "
          f"({user}, 'bench-{i % 5}', 'Explain parse_config number {i}', '{response[:1024]}', "
          f"'{result}', 'Codebase Sherpa', 'local', 'local', 120, 240, 35, TRUE, '{at}');")
EOF
}

measure() { # name connections path [auth [wrk options…]]
    local name=$1 conns=$2 path=$3 auth=${4:-}
    local options=("${@:5}")
    for i in "${!BINS[@]}"; do
        local report="$OUT/lists-$BACKEND-$i-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')-c$conns.txt"
        local headers=()
        [ -n "$auth" ] && headers=(-H "Authorization: Bearer $TOKEN")
        wrk -t2 -c"$conns" -d"${DURATION}s" --latency "${headers[@]}" "${options[@]}" \
            "http://127.0.0.1:$(port_of "$i")$path" > "$report"
        read -r rps p50 p99 errors < <(summarise < "$report")
        [ "$name" = "health" ] && CEILING[$i]=$rps
        printf "%-9s bin%-2s %-10s c=%-4s %7s rps %5s%% of /health  p50 %6s ms  p99 %7s ms%s\n" \
            "$BACKEND" "$i" "$name" "$conns" "$rps" \
            "$(awk -v a="$rps" -v b="${CEILING[$i]}" 'BEGIN {printf "%.1f", 100 * a / b}')" \
            "$p50" "$p99" "$([ "$errors" -gt 0 ] && echo "  non-2xx $errors")"
    done
}

run_backend() { # backend database-url sql-runner...
    BACKEND=$1 url=$2
    shift 2
    start_servers "$url"
    sleep 1
    for i in "${!BINS[@]}"; do echo "$BACKEND bin$i ${BINS[$i]} idle RSS $(rss_kb "${PIDS[$i]}") KiB"; done
    seed "$@"
    declare -ga CEILING=()
    measure health 64 /health
    # One row by its key (and serde): what any request that asks the database costs at least.
    local agent_id
    agent_id=$(api GET "/agents?limit=1" | python3 -c "import json,sys; print(json.load(sys.stdin)['data']['items'][0]['id'])")
    measure "agent/{id}" 64 "/api/v1/agents/$agent_id" auth
    for conns in ${LISTS_CONNECTIONS-64 256}; do
        measure user/me "$conns" /api/v1/user/me auth
        measure agents "$conns" /api/v1/agents auth
        measure projects "$conns" /api/v1/projects auth
        measure chats "$conns" "/api/v1/chat?limit=50" auth
    done
    for conns in ${LISTS_WRITE_CONNECTIONS-64 256}; do
        TOKEN="$TOKEN" BODY='{"name":"bench write","repo_url":"https://github.com/acme/w"}' \
            measure "POST projects" "$conns" /api/v1/projects "" -s bench/wrk-post.lua
    done
    for i in "${!BINS[@]}"; do echo "$BACKEND bin$i loaded RSS $(rss_kb "${PIDS[$i]}") KiB"; done
    if [ "$BACKEND" = sqlite ]; then # src/db/wal.rs keeps the log near 64 MB
        echo "sqlite database $(stat -c %s "$OUT/lists.db") bytes, write-ahead log $(stat -c %s "$OUT/lists.db-wal") bytes"
    fi
    # The server gives freed memory back once a burst is over (src/memory.rs).
    sleep 3
    for i in "${!BINS[@]}"; do echo "$BACKEND bin$i RSS 3 s after the load $(rss_kb "${PIDS[$i]}") KiB"; done
    cleanup
    PIDS=()
}

BACKENDS="${LISTS_BACKENDS:-sqlite postgres}"
if [[ " $BACKENDS " == *" sqlite "* ]]; then
    rm -f "$OUT"/lists.db*
    run_backend sqlite "sqlite://$OUT/lists.db" python3 -c \
        "import sqlite3,sys; c=sqlite3.connect('$OUT/lists.db'); c.executescript(sys.stdin.read()); c.commit()"
    rm -f "$OUT"/lists.db*
fi

if [[ " $BACKENDS " == *" postgres "* ]]; then
    PG_DB="codesherpa_lists_$$"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB" >/dev/null
    run_backend postgres "${PG_ADMIN%/*}/$PG_DB" psql -q "${PG_ADMIN%/*}/$PG_DB"
    psql "$PG_ADMIN" -qc "DROP DATABASE $PG_DB WITH (FORCE)" >/dev/null
fi
