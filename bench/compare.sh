#!/usr/bin/env bash
# Side-by-side read throughput of two server binaries on the same data, alternating
# A, B, A, B so drift on the machine hits both alike.
# Usage: bench/compare.sh BINARY_A BINARY_B [seconds]   (needs bench/results/bench.db
# from bench/run.sh, whose bench user owns 50 agents)
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 DURATION=${3:-8}
PORT=8097 BASE="http://127.0.0.1:8097"
DB=bench/results/bench.db
[ -f "$DB" ] || { echo "run bench/run.sh first"; exit 1; }
EMAIL=$(python3 -c "import sqlite3; print(sqlite3.connect('$DB').execute('select email from users order by id limit 1').fetchone()[0])")
SERVER=""
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; wait 2>/dev/null || true' EXIT

rps() { # binary path
    cp "$DB" /tmp/compare.db
    DATABASE_URL=sqlite:///tmp/compare.db PORT=$PORT HOST=127.0.0.1 RUST_LOG=warn \
        RATE_LIMIT_AUTH_PER_MINUTE=0 DATABASE_MAX_CONNECTIONS=16 "$1" serve >/dev/null 2>&1 &
    SERVER=$!
    for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done
    local token
    token=$(curl -sf -X POST "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$EMAIL\",\"password\":\"benchmark password\"}" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['data']['access_token'])")
    local out=""
    for path in /api/v1/agents /api/v1/user/me; do
        out+=" $(wrk -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $token" "$BASE$path" | awk '/Requests\/sec/ {print $2}')"
    done
    kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=""
    echo "$out"
}

echo "run  binary  agents(50)-rps  user/me-rps"
for round in 1 2; do
    echo "$round    A      $(rps "$A")"
    echo "$round    B      $(rps "$B")"
done
