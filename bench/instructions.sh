#!/usr/bin/env bash
# CPU instructions one request costs the server, counted by valgrind's callgrind: the same
# for the same binary and requests whatever else the machine does, so two builds compare
# without the run-to-run noise of a throughput figure (the kernel's share is not counted).
#
# Usage: bench/instructions.sh BINARY [PATH ...]   (default: /health /api/v1/user/me)
# Each path is served by a fresh server under callgrind (SQLite, one user logged in) twice,
# to 400 then 4,400 GETs on 4 keep-alive connections after a warm-up of 400; the difference
# of the two totals over 4,000 is the figure, so start-up and warm-up cancel out.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind"; exit 1; }
BIN="$1"
shift
PATHS=("$@")
[ ${#PATHS[@]} -gt 0 ] || PATHS=(/health /api/v1/user/me)
OUT="bench/results"
mkdir -p "$OUT"
PORT="${BENCH_PORT:-8395}"

total() { # path requests -> instructions of the whole run
    rm -f "$OUT"/instructions.db* "$OUT/instructions.out"
    DATABASE_URL="sqlite://$OUT/instructions.db?mode=rwc" PORT="$PORT" HOST=127.0.0.1 \
        RUST_LOG=warn SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
        RATE_LIMIT_AUTH_PER_MINUTE=0 BCRYPT_ROUNDS=4 \
        valgrind --tool=callgrind --callgrind-out-file="$OUT/instructions.out" "$BIN" serve \
        > "$OUT/instructions.log" 2>&1 &
    local server=$!
    for _ in $(seq 1 200); do curl -sf "127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
    python3 - "$PORT" "$1" "$2" <<'PY'
import http.client, json, sys, threading
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def call(conn, method, url, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    conn.request(method, url, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    return response.status, response.read()
setup = http.client.HTTPConnection("127.0.0.1", port)
account = {"name": "Bench", "email": "bench@example.com", "password": "bench password 1"}
call(setup, "POST", "/api/v1/auth/register", account)
token = json.loads(call(setup, "POST", "/api/v1/auth/login", account)[1])["data"]["access_token"]
def load(count):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(count):
        status, _ = call(conn, "GET", path, token=token)
        assert status == 200, f"{path}: {status}"
def wave(count):
    threads = [threading.Thread(target=load, args=(count // 4,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
wave(400)
wave(n)
PY
    sleep 1
    kill "$server"
    wait "$server" 2>/dev/null || true
    awk '/^totals:/ {print $2}' "$OUT/instructions.out"
}

for path in "${PATHS[@]}"; do
    small=$(total "$path" 400)
    large=$(total "$path" 4400)
    echo "$path: $(( (large - small) / 4000 )) instructions a request ($BIN)"
done
rm -f "$OUT"/instructions.*
