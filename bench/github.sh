#!/usr/bin/env bash
# Benchmarks GitHub reviews: webhook acceptance under load (wrk, 64 connections, signed
# deliveries each with its own id) and review-job throughput against a fast local GitHub
# mock (bench/github_mock.py), on SQLite and PostgreSQL; then two instances sharing one
# PostgreSQL queue, checking that every pull request got exactly one comment and no job
# ran twice. Loopback only; every load run is bounded in time.
# Usage: bench/github.sh [seconds] [reviews]   (defaults 10 and 300)
#   BIN=target/debug/codesherpa bench/github.sh   to bench an existing build.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10}"
REVIEWS="${2:-300}"
PORT=8098
PORT2=8096
MOCK_PORT=8097
PG_ADMIN="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PGOPTIONS="--client-min-messages=warning"
OUT="bench/results"
SECRET="bench-webhook-secret"
KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --bin codesherpa
    BIN="${CARGO_TARGET_DIR:-target}/release/codesherpa"
fi
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

python3 bench/github_mock.py "$MOCK_PORT" & PIDS+=($!)

start_server() { # port database-url
    DATABASE_URL="$2" PORT="$1" HOST=127.0.0.1 DEBUG=false LOG_FORMAT=json RUST_LOG=warn \
        SECRET_KEY="$KEY" BCRYPT_ROUNDS=4 RATE_LIMIT_AUTH_PER_MINUTE=0 RATE_LIMIT_AI_PER_MINUTE=0 \
        DATABASE_MAX_CONNECTIONS=16 JOB_POLL_INTERVAL_MS=200 \
        GITHUB_WEBHOOK_SECRET="$SECRET" GITHUB_API_URL="http://127.0.0.1:$MOCK_PORT" \
        GITHUB_TOKEN=bench-token GITHUB_REVIEW_CONCURRENCY=8 \
        "$BIN" serve > "$OUT/github-$1.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return; sleep 0.1; done
    echo "server did not start"; cat "$OUT/github-$1.log"; exit 1
}

stop_servers() { # keeps the mock
    for pid in "${PIDS[@]:1}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    PIDS=("${PIDS[0]}")
}

# Marks every project verified, as GitHub's access check does once the owner connected an
# account with push permission (`POST /projects/{id}/repo-access`). The OAuth connection
# is outside this benchmark, and without the proof every delivery is ignored (200).
verify_projects() { # database-url
    local sql="UPDATE projects SET repo_access_status = 'verified', repo_access_login = 'bench', \
        repo_access_reason = NULL, repo_access_checked_at = CURRENT_TIMESTAMP, \
        repo_verified_at = CURRENT_TIMESTAMP"
    case "$1" in
        sqlite://*) python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2].replace('CURRENT_TIMESTAMP', \"strftime('%Y-%m-%dT%H:%M:%fZ')\")); c.commit()" "${1#sqlite://}" "$sql" ;;
        *) psql "$1" -qc "$sql" >/dev/null ;;
    esac
}

link_project() { # base
    local email="bench-$RANDOM$RANDOM@example.com" token
    curl -sf -X POST "$1/api/v1/auth/register" -H 'Content-Type: application/json' \
        -d "{\"name\":\"Bench\",\"email\":\"$email\",\"password\":\"benchmark password\"}" >/dev/null
    token=$(curl -sf -X POST "$1/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"benchmark password\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["access_token"])')
    curl -sf -X POST "$1/api/v1/projects" -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $token" \
        -d '{"name":"bench","repo_url":"https://github.com/bench/repo"}' >/dev/null
}

jobs_left() { # base → queued+running review jobs
    curl -sf "$1/metrics" | awk '/^codesherpa_jobs\{kind="github.review",state="(queued|running)"\}/ {n+=$2} END {print n+0}'
}

jobs_failed() {
    curl -sf "$1/metrics" | awk '/^codesherpa_jobs\{kind="github.review",state="failed"\}/ {n+=$2} END {print n+0}'
}

drain() { # base began → seconds from `began` until no review job is queued or running
    local began=$2
    for _ in $(seq 1 6000); do  # bounded: 600 s
        [ "$(jobs_left "$1")" = 0 ] && break
        sleep 0.1
    done
    python3 -c "import time; print(f'{time.time() - $began:.2f}')"
}

acceptance() { # backend database-url
    local base="http://127.0.0.1:$PORT"
    start_server "$PORT" "$2"
    link_project "$base"
    verify_projects "$2"
    local body='{"action":"opened","number":1,"pull_request":{"number":1,"draft":false,"head":{"sha":"1111111111111111111111111111111111111111"}},"repository":{"full_name":"bench/repo"},"sender":{"login":"octocat","type":"User"}}'
    local signature
    signature="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')"
    BODY="$body" SIGNATURE="$signature" wrk -t2 -c64 -d"${DURATION}s" --latency -s bench/webhook.lua \
        "$base/api/v1/integrations/github/webhook" > "$OUT/github-$1-webhook.txt"
    awk -v b="$1" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {e=$NF}
        END {printf "%-9s webhook 202s, c=64: %s deliveries/s, p50 %s, p99 %s%s\n", b, rps, p50, p99, (e ? ", non-2xx " e : "")}' \
        "$OUT/github-$1-webhook.txt"
    stop_servers
}

throughput() { # backend database-url
    local base="http://127.0.0.1:$PORT"
    start_server "$PORT" "$2"
    link_project "$base"
    verify_projects "$2"
    local began seconds
    began=$(date +%s.%N)
    python3 bench/github_send.py "$SECRET" "$REVIEWS" "$3" "$base" > /dev/null
    seconds=$(drain "$base" "$began")
    python3 -c "print(f'%-9s reviews: $REVIEWS in $seconds s from the first delivery = {$REVIEWS / $seconds:.1f} reviews/s, failed: $(jobs_failed "$base")' % '$1')"
    stop_servers
}

fresh_postgres() { # name → url
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
    psql "$PG_ADMIN" -qc "CREATE DATABASE $1" >/dev/null
    echo "${PG_ADMIN%/*}/$1"
}

SQLITE_DIR="$(mktemp -d)"
acceptance sqlite "sqlite://$SQLITE_DIR/webhook.db"
acceptance postgres "$(fresh_postgres codesherpa_bench_webhook)"
throughput sqlite "sqlite://$SQLITE_DIR/reviews.db" 1000
throughput postgres "$(fresh_postgres codesherpa_bench_reviews)" 2000

# Two instances, one PostgreSQL queue.
SHARED="$(fresh_postgres codesherpa_bench_shared)"
start_server "$PORT" "$SHARED"
start_server "$PORT2" "$SHARED"
link_project "http://127.0.0.1:$PORT"
verify_projects "$SHARED"
began=$(date +%s.%N)
python3 bench/github_send.py "$SECRET" "$REVIEWS" 5000 "http://127.0.0.1:$PORT" "http://127.0.0.1:$PORT2" > /dev/null
seconds=$(drain "http://127.0.0.1:$PORT" "$began")
# A job that ran more than once has attempts > 1; one not run yet (a periodic job, say)
# has 0 and is not counted.
rerun=$(psql "$SHARED" -tAc "SELECT COUNT(*) FROM jobs WHERE attempts > 1")
psql "$SHARED" -tAc "SELECT 'not run once: ' || kind || ' ' || status || ', attempts ' || attempts \
    FROM jobs WHERE attempts <> 1 LIMIT 5"
curl -sf "http://127.0.0.1:$MOCK_PORT/_stats" | python3 -c "
import json, sys
stats = json.load(sys.stdin)['per_pull']
mine = {k: v for k, v in stats.items() if 5000 <= int(k.split('#')[1]) < 5000 + $REVIEWS}
print(f'two instances: $REVIEWS reviews in $seconds s = {$REVIEWS / $seconds:.1f} reviews/s; '
      f'pull requests with exactly one comment: {sum(1 for v in mine.values() if v == 1)}/$REVIEWS; '
      f'jobs run more than once: $rerun')"
stop_servers
for db in codesherpa_bench_webhook codesherpa_bench_reviews codesherpa_bench_shared; do
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done
rm -rf "$SQLITE_DIR"
