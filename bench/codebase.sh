#!/usr/bin/env bash
# Benchmarks the codebase index (release server, loopback only, bounded runs): upload and
# index a ~5,000-file code base, its index size, a re-index of 10 changed files, then
# search, 2-character search and symbol lookups p50/p99 under 32 concurrent queries, and
# what retrieval adds to a chat — on SQLite then PostgreSQL.
# Usage: bench/codebase.sh [seconds-per-run]   (default 10)
#        BIN=path/to/codesherpa bench/codebase.sh 10   (an existing build, e.g. a "before")
# Corpus: the first BENCH_FILES (5000) `.rs` files under ~/.cargo/registry/src (vendored
# crates, sorted by path, files under 1 MiB), or BENCH_CORPUS=/path/to/dir.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10}"
PORT="${BENCH_PORT:-8098}"
BASE="http://127.0.0.1:$PORT"
PG_ADMIN="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
FILES="${BENCH_FILES:-5000}"
OUT="bench/results"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }

# BENCH_PROFILE=debug measures the debug build (no release build needed; much slower).
PROFILE="${BENCH_PROFILE:-release}"
if [ -z "${BIN:-}" ]; then
    if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin codesherpa; else cargo build --quiet --bin codesherpa; fi
    BIN="${CARGO_TARGET_DIR:-target}/$PROFILE/codesherpa"
fi
echo "binary: $BIN; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# awk, not head: head exits early and pipefail would end the script on the writer's SIGPIPE.
CORPUS="${BENCH_CORPUS:-$(ls -d ~/.cargo/registry/src/*/ | awk 'NR == 1')}"
(cd "$CORPUS" && find . -name '*.rs' -size -1024k | sort | awk -v n="$FILES" 'NR <= n') > "$WORK/list"
tar czf "$WORK/corpus.tar.gz" -C "$CORPUS" -T "$WORK/list"
SOURCE_BYTES=$(cd "$CORPUS" && xargs -a "$WORK/list" cat | wc -c)
echo "corpus: $(wc -l < "$WORK/list") files, $(du -k "$WORK/corpus.tar.gz" | cut -f1) KiB gzipped, \
$SOURCE_BYTES bytes, $(cd "$CORPUS" && xargs -a "$WORK/list" cat | wc -l) lines"
# The same corpus with 10 files changed (a line appended), for the incremental re-index.
mkdir -p "$WORK/changed"
(cd "$CORPUS" && tar cf - -T "$WORK/list") | tar xf - -C "$WORK/changed"
awk 'NR % 500 == 1' "$WORK/list" | awk 'NR <= 10' | while read -r f; do
    echo "// changed for the benchmark" >> "$WORK/changed/$f"
done
tar czf "$WORK/changed.tar.gz" -C "$WORK/changed" -T "$WORK/list"

cat > "$WORK/symbols.lua" <<'LUA'
local prefixes = {"new", "poll_next", "Hash", "from_utf8", "deserialize", "Error", "fmt",
  "with_capacity", "Visitor", "as_ref", "read", "drop"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", wrk.path .. "?q=" .. prefixes[(i % #prefixes) + 1] .. "&limit=20")
end
LUA


start_server() { # database-url
    DATABASE_URL="$1" PORT="$PORT" HOST=127.0.0.1 DEBUG=false LOG_FORMAT=json RUST_LOG=warn \
        SECRET_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" \
        RATE_LIMIT_AUTH_PER_MINUTE=0 RATE_LIMIT_AI_PER_MINUTE=0 BCRYPT_ROUNDS=4 \
        DATABASE_MAX_CONNECTIONS=16 "$BIN" serve > "$OUT/codebase-$BACKEND-server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && return; sleep 0.1; done
    echo "server did not start"; cat "$OUT/codebase-$BACKEND-server.log"; exit 1
}

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

run_backend() { # backend database-url index-size-command
    BACKEND=$1
    start_server "$2"
    local email="bench-$RANDOM@example.com" password="benchmark password"
    curl -sf -X POST "$BASE/api/v1/auth/register" -H 'Content-Type: application/json' \
        -d "{\"name\":\"Bench\",\"email\":\"$email\",\"password\":\"$password\"}" >/dev/null
    TOKEN=$(curl -sf -X POST "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" | json "['data']['access_token']")
    local id
    id=$(curl -sf -X POST "$BASE/api/v1/projects" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -d '{"name":"corpus"}' | json "['data']['id']")
    local seconds
    seconds=$(curl -s -o "$WORK/sync.json" -w '%{time_total}' -X PUT \
        "$BASE/api/v1/projects/$id/files" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/gzip' --data-binary "@$WORK/corpus.tar.gz")
    echo "$BACKEND upload+index: ${seconds}s, files indexed: $(json "['data']['files']" < "$WORK/sync.json"), skipped: $(python3 -c "import json,sys; print(len(json.load(sys.stdin)['data']['skipped']))" < "$WORK/sync.json")"
    echo "$BACKEND indexing: $(python3 -c "print(f'{$SOURCE_BYTES / $seconds / 1e6:.1f}')") MB of source a second"
    echo "$BACKEND index size: $($3)"
    curl -s -o /dev/null -w "$BACKEND re-index, the same files again: %{time_total}s\n" -X PUT \
        "$BASE/api/v1/projects/$id/files" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/gzip' --data-binary "@$WORK/corpus.tar.gz"
    curl -s -o /dev/null -w "$BACKEND re-index, 10 files changed (upload to searchable): %{time_total}s\n" -X PUT \
        "$BASE/api/v1/projects/$id/files" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/gzip' --data-binary "@$WORK/changed.tar.gz"
    curl -s "$BASE/api/v1/projects/$id/search?q=changed%20for%20the%20benchmark" -H "Authorization: Bearer $TOKEN" |
        python3 -c "import json,sys; print('$BACKEND the 10 changed lines found:', json.load(sys.stdin)['data']['total'])"
    for q in poll_next "fn%20new" self; do
        curl -s "$BASE/api/v1/projects/$id/search?q=$q" -H "Authorization: Bearer $TOKEN" |
            python3 -c "import json,sys; print('$BACKEND q=$q total', json.load(sys.stdin)['data']['total'])"
    done
    local report="$OUT/codebase-$BACKEND-search.txt"
    wrk -t2 -c32 -d"${DURATION}s" --latency -s bench/wrk-search.lua \
        -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/projects/$id/search" > "$report" 2>&1 || true
    awk -v b="$BACKEND" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {e=$NF}
        END {printf "%s search, 32 concurrent: %s rps, p50 %s, p99 %s%s\n", b, rps, p50, p99, (e ? ", non-2xx " e : "")}' "$report"
    local short="$OUT/codebase-$BACKEND-short.txt"
    wrk -t2 -c32 -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" \
        "$BASE/api/v1/projects/$id/search?q=fn" > "$short" 2>&1 || true
    awk -v b="$BACKEND" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
        END {printf "%s 2-character query, 32 concurrent: %s rps, p50 %s, p99 %s\n", b, rps, p50, p99}' "$short"
    local symbols="$OUT/codebase-$BACKEND-symbols.txt"
    wrk -t2 -c32 -d"${DURATION}s" --latency -s "$WORK/symbols.lua" -H "Authorization: Bearer $TOKEN" \
        "$BASE/api/v1/projects/$id/symbols" > "$symbols" 2>&1 || true
    awk -v b="$BACKEND" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {e=$NF}
        END {printf "%s symbol lookups, 32 concurrent: %s rps, p50 %s, p99 %s%s\n", b, rps, p50, p99, (e ? ", non-2xx " e : "")}' "$symbols"
    # What retrieval adds before a chat's answer: the same question with and without the
    # project (the local engine answers at once), one client at a time.
    for with in no yes; do
        local body='{"message":"Where is poll_next defined and what uses HashMap?"}'
        [ "$with" = yes ] && body="{\"message\":\"Where is poll_next defined and what uses HashMap?\",\"project_id\":$id}"
        BODY="$body" TOKEN="$TOKEN" wrk -t1 -c1 -d"${DURATION}s" --latency -s bench/wrk-post.lua \
            "$BASE/api/v1/chat" > "$OUT/codebase-$BACKEND-chat-$with.txt" 2>&1 || true
        awk -v b="$BACKEND" -v w="$with" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {e=$NF}
            END {printf "%s chat, project %s: p50 %s, p99 %s%s\n", b, w, p50, p99, (e ? ", non-2xx " e : "")}' \
            "$OUT/codebase-$BACKEND-chat-$with.txt"
    done
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

ratio() { python3 -c "print(f'{$1 / $SOURCE_BYTES:.2f}')"; }
sqlite_size() {
    local kib
    kib=$(du -ck "$WORK"/bench.db* | tail -1 | cut -f1)
    echo "$((kib / 1024)) MiB (database file + WAL), $(ratio $((kib * 1024)))x the source"
}
run_backend sqlite "sqlite://$WORK/bench.db" sqlite_size

DB="codesherpa_bench_codebase_$RANDOM"
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" >/dev/null
PG_URL="${PG_ADMIN%/*}/$DB"
pg_size() {
    local bytes
    bytes=$(psql "$PG_URL" -tAc "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(ARRAY['project_files', 'project_contents',
        'project_symbols', 'project_lines']) t WHERE to_regclass(t) IS NOT NULL")
    echo "$((bytes / 1048576)) MiB (files, symbols, lines where kept, with their indexes), $(ratio "$bytes")x the source"
}
run_backend postgres "$PG_URL" pg_size
psql "$PG_ADMIN" -qc "DROP DATABASE $DB WITH (FORCE)" >/dev/null
