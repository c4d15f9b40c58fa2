#!/usr/bin/env bash
# Fuzzes the running API against its own OpenAPI document with schemathesis (every check,
# every phase, stateful links included) and fails on any failure or any server error.
#
#   tests/schemathesis.sh [sqlite] [postgres]      (default: sqlite)
#
# For each backend: a debug server on a free local port with a throw-away database (a
# temp SQLite file, or a fresh PostgreSQL database on TEST_POSTGRES_URL, dropped after),
# a low bcrypt cost, rate limits high enough that the fuzzer is not throttled (429 is
# still declared and still a valid answer), webhook secrets and GitHub's OAuth client set (so unsigned deliveries
# get their 401 and OAuth callbacks their 400, not the 503 of an unconfigured server) and unreachable upstream APIs; a registered user's bearer token; then two
# bounded runs: examples, coverage and fuzzing (SCHEMATHESIS_MAX_TIME seconds, default
# 100), and the stateful phase on its own budget (SCHEMATHESIS_STATEFUL_TIME, default 60)
# so that create → read/update/delete chains always get time. Operation-specific settings
# JSON Schema cannot express live in tests/schemathesis.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-100}"
STATEFUL_TIME="${SCHEMATHESIS_STATEFUL_TIME:-60}"
SEED="${SCHEMATHESIS_SEED:-42}"
target="${CARGO_TARGET_DIR:-target}"
VENV="${SCHEMATHESIS_VENV:-$target/schemathesis-venv}"
backends=("$@")
[ "${#backends[@]}" -gt 0 ] || backends=(sqlite)

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION in $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== building the debug server"
cargo build --locked --quiet --bin codesherpa
binary="$(cd "$target/debug" && pwd)/codesherpa"
schemathesis="$(cd "$VENV/bin" && pwd)/schemathesis"
config="$PWD/tests/schemathesis.toml"

workdir="$(mktemp -d)"
server_pid=""
pg_database=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
    if [ -n "$pg_database" ]; then
        psql -q "${TEST_POSTGRES_URL:?}" -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" >/dev/null || true
        pg_database=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$workdir"
}
trap cleanup EXIT
# A CI timeout or Ctrl-C still stops the server and drops the database.
trap 'exit 143' TERM INT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts the server on $1 (a database URL); sets $url.
start_server() {
    local database_url="$1" port
    port="$(free_port)"
    url="http://127.0.0.1:$port"
    # Only what the server needs: a developer's .env or REDIS_URL must not leak in.
    (
        cd "$workdir"
        exec env -i PATH="$PATH" HOME="$workdir" \
            DEBUG=true \
            SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
            HOST=127.0.0.1 PORT="$port" \
            DATABASE_URL="$database_url" \
            BCRYPT_ROUNDS=4 \
            ACCESS_TOKEN_EXPIRE_MINUTES=60 \
            RATE_LIMIT_AUTH_PER_MINUTE=1000000 \
            RATE_LIMIT_AI_PER_MINUTE=1000000 \
            LLM_PROVIDER=local \
            GITHUB_WEBHOOK_SECRET="fuzz-github-$RANDOM$RANDOM" GITHUB_API_URL=http://127.0.0.1:9 \
            GITHUB_WEB_URL=http://127.0.0.1:9 GITHUB_CLIENT_ID=fuzz-client \
            GITHUB_CLIENT_SECRET="fuzz-client-secret-$RANDOM" \
            WHATSAPP_APP_SECRET="fuzz-whatsapp-$RANDOM$RANDOM" WHATSAPP_VERIFY_TOKEN="fuzz-$RANDOM" \
            WHATSAPP_API_URL=http://127.0.0.1:9 \
            LOG_FORMAT=json RUST_LOG=warn \
            "$binary" serve
    ) >"$workdir/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "$url/health" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.2
    done
    cat "$workdir/server.log"
    echo "FAIL: the server did not start on $url"
    exit 1
}

bearer_token() {
    local email="fuzz-$RANDOM$RANDOM@example.com" password="fuzz-password-$RANDOM$RANDOM"
    curl -fsS -X POST "$url/api/v1/auth/register" -H 'Content-Type: application/json' \
        -d "{\"name\":\"Fuzzer\",\"email\":\"$email\",\"password\":\"$password\"}" >/dev/null
    curl -fsS -X POST "$url/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["access_token"])'
}

# Runs schemathesis with the given phases and time budget; returns its exit status.
fuzz() {
    local phases="$1" seconds="$2"
    # From the temp directory: schemathesis keeps a cache (.schemathesis/) in the cwd.
    (cd "$workdir" && "$schemathesis" --config-file "$config" \
        run "$url/api/v1/openapi.json" --url "$url" \
        -H "Authorization: Bearer $token" \
        --checks all \
        --phases "$phases" \
        --max-time "$seconds" \
        --seed "$SEED" \
        --generation-database none \
        --report-dir "$workdir/report" \
        --no-color)
}

failed=0
for backend in "${backends[@]}"; do
    case "$backend" in
        sqlite) database_url="sqlite://$workdir/fuzz.db" ;;
        postgres)
            pg_database="codesherpa_fuzz_$$"
            psql -q "${TEST_POSTGRES_URL:?TEST_POSTGRES_URL names the PostgreSQL server}" \
                -c "CREATE DATABASE $pg_database" >/dev/null
            database_url="${TEST_POSTGRES_URL%/*}/$pg_database"
            ;;
        *) echo "unknown backend $backend (sqlite or postgres)"; exit 2 ;;
    esac
    start_server "$database_url"
    token="$(bearer_token)"
    echo "== schemathesis $SCHEMATHESIS_VERSION on $backend: examples, coverage, fuzzing (${MAX_TIME}s)"
    fuzz examples,coverage,fuzzing "$MAX_TIME" || failed=1
    echo "== schemathesis $SCHEMATHESIS_VERSION on $backend: stateful (${STATEFUL_TIME}s)"
    fuzz stateful "$STATEFUL_TIME" || failed=1
    # A 5xx is a failure above; an error logged without one (a broken stream, a task
    # that died) is one too.
    if grep -q '"level":"ERROR"' "$workdir/server.log"; then
        echo "== server errors on $backend:"
        grep '"level":"ERROR"' "$workdir/server.log" | head -n 20
        cp "$workdir/server.log" "$target/schemathesis-$backend-server.log"
        echo "(whole log: $target/schemathesis-$backend-server.log)"
        failed=1
    fi
    stop_server
    rm -f "$workdir"/fuzz.db*
done

[ "$failed" -eq 0 ] || { echo "FAIL: schemathesis found failures"; exit 1; }
echo "schemathesis: no failures (${backends[*]})"
