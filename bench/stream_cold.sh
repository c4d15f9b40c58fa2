#!/usr/bin/env bash
# Where a freshly started server's first wave of streams loses its time: `/chat/stream`
# first delta at 50 concurrent streams (`sse_bench load`, two rounds of 1,000) on a new
# server and a new mock provider, after a warm-up that touches one part of the path.
#
# Usage: bench/stream_cold.sh [BINARY] [WARM-UP ...]
# Warm-ups (each run starts everything afresh; default: all, in turn):
#   none      nothing
#   mock      50 requests straight to the mock provider (its own first connections)
#   me        50 concurrent GET /user/me on new connections (accept, auth, the HTTP stack)
#   projects  50 concurrent POST /projects (the database's write path)
#   chat      50 concurrent POST /chat (the whole path, provider connections included)
#   streams   one wave of 50 streams (everything the rounds use)
#   streams-new-mock  the same, then the mock restarted (its connections cold, the rest warm)
# Each round prints the CPU time the server, the mock and PostgreSQL spent in it.
# Optional: STREAM_BACKEND=postgres (a new database per run; default SQLite), ROUNDS (2),
# SERVER_CPUS and LOAD_CPUS (`taskset` CPU lists for the server, and for the mock and the
# load generator, e.g. 0 and 1). Results in bench/results/stream-cold-*.log.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-}"
shift || true
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(none mock me projects chat)
cargo build --release --quiet --example sse_bench
if [ -z "$BIN" ]; then
    cargo build --release --quiet --bin codesherpa
    BIN="${CARGO_TARGET_DIR:-target}/release/codesherpa"
fi
SSE="${CARGO_TARGET_DIR:-target}/release/examples/sse_bench"
OUT="bench/results"
mkdir -p "$OUT"
MOCK="127.0.0.1:${BENCH_MOCK_PORT:-9931}"
BASE="http://127.0.0.1:${BENCH_PORT:-8198}"
PG_ADMIN="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_DB="codesherpa_stream_cold"
PIDS=()
SERVER_PIN=()
LOAD_PIN=()
[ -z "${SERVER_CPUS:-}" ] || SERVER_PIN=(taskset -c "$SERVER_CPUS")
[ -z "${LOAD_CPUS:-}" ] || LOAD_PIN=(taskset -c "$LOAD_CPUS")
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
fresh_database() { # prints the DATABASE_URL of an empty database
    if [ "${STREAM_BACKEND:-sqlite}" = postgres ]; then
        PGOPTIONS=--client-min-messages=warning psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" >/dev/null
        echo "${PG_ADMIN%/*}/$PG_DB"
    else
        rm -f "$OUT"/stream-cold.db*
        echo "sqlite://$OUT/stream-cold.db?mode=rwc"
    fi
}
trap cleanup EXIT
start_mock() {
    "${LOAD_PIN[@]}" "$SSE" mock "$MOCK" 20 20 >> "$OUT/stream-cold-mock.log" 2>&1 &
    MOCK_PID=$!
    PIDS+=("$MOCK_PID")
    for _ in $(seq 1 50); do (echo > "/dev/tcp/${MOCK%:*}/${MOCK#*:}") 2>/dev/null && break; sleep 0.1; done
}
cpu_seconds() { # PID ... → user + system CPU seconds, summed
    local ticks=0 pid
    for pid in "$@"; do
        ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$ticks $(getconf CLK_TCK)" | awk '{printf "%.2f", $1 / $2}'
}
postgres_pids() { pgrep -u postgres postgres || true; }

# 50 concurrent requests of one kind, each on a connection of its own.
warm_up() { # mode
    python3 - "$BASE" "$1" "$MOCK" <<'EOF'
import json, sys, threading, urllib.request, uuid
base, mode = sys.argv[1], sys.argv[2]
def call(method, url, body=None, token=None):
    request = urllib.request.Request(url, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()
token = None
if mode != "mock":
    account = {"name": "Warm", "email": f"warm-{uuid.uuid4().hex[:8]}@example.com",
               "password": "warm-up password"}
    call("POST", base + "/api/v1/auth/register", account)
    login = call("POST", base + "/api/v1/auth/login",
                 {"email": account["email"], "password": account["password"]})
    token = json.loads(login)["data"]["access_token"]
one = {
    "mock": lambda: call("POST", "http://" + sys.argv[3] + "/v1/chat/completions", {}),
    "me": lambda: call("GET", base + "/api/v1/user/me", token=token),
    "projects": lambda: call("POST", base + "/api/v1/projects", {"name": "warm"}, token),
    "chat": lambda: call("POST", base + "/api/v1/chat", {"message": "warm"}, token),
}[mode]
threads = [threading.Thread(target=one) for _ in range(50)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
EOF
}

for mode in "${MODES[@]}"; do
    DATABASE_URL="$(fresh_database)"
    PIDS=()
    start_mock
    "${SERVER_PIN[@]}" env DATABASE_URL="$DATABASE_URL" PORT="${BASE##*:}" HOST=127.0.0.1 \
        RUST_LOG=warn SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        RATE_LIMIT_AUTH_PER_MINUTE=0 RATE_LIMIT_AI_PER_MINUTE=0 BCRYPT_ROUNDS=4 \
        DATABASE_MAX_CONNECTIONS=16 LLM_PROVIDER=openai OPENAI_BASE_URL="http://$MOCK/v1" \
        OPENAI_API_KEY=bench OPENAI_MODEL=mock "$BIN" serve > "$OUT/stream-cold-$mode.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done
    case "$mode" in
        none) ;;
        streams | streams-new-mock)
            "${LOAD_PIN[@]}" "$SSE" load "$BASE" 50 50 20 > /dev/null
            if [ "$mode" = streams-new-mock ]; then
                kill "$MOCK_PID"
                wait "$MOCK_PID" 2>/dev/null || true
                start_mock
            fi ;;
        *) warm_up "$mode" ;;
    esac
    sleep 1
    for round in $(seq 1 "${ROUNDS:-2}"); do
        before=("$(cpu_seconds "$SERVER_PID")" "$(cpu_seconds "$MOCK_PID")" "$(cpu_seconds $(postgres_pids))")
        result="$("${LOAD_PIN[@]}" "$SSE" load "$BASE" 50 1000 20)"
        after=("$(cpu_seconds "$SERVER_PID")" "$(cpu_seconds "$MOCK_PID")" "$(cpu_seconds $(postgres_pids))")
        cpu="$(echo "${before[*]} ${after[*]}" | awk '{printf "server %.2f s, mock %.2f s, postgres %.2f s", $4 - $1, $5 - $2, $6 - $3}')"
        echo "${STREAM_BACKEND:-sqlite}, $mode, round $round: $result; CPU $cpu"
    done
    cleanup
done
rm -f "$OUT"/stream-cold.db*
[ "${STREAM_BACKEND:-sqlite}" != postgres ] || PGOPTIONS=--client-min-messages=warning psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
