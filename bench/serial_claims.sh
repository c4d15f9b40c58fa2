#!/usr/bin/env bash
# What serial keys cost a claim (SPEC §6.1): a fresh database per backend with HELD jobs
# waiting behind one key's running job, plus as many finished jobs, then the query plan
# and time of the three statements on the claim path: the claim itself, finding a key's
# next job, and the check a new job of a key makes. Held jobs sit outside the claim's
# partial index, so none of them is read.
#
# Usage: bench/serial_claims.sh [HELD] [BINARY]   (HELD defaults to 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
HELD="${1:-200000}"
BIN="${2:-target/release/codesherpa}"
[ -x "$BIN" ] || cargo build --release --quiet --bin codesherpa
PG_ADMIN="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"; psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS serial_claims" 2>/dev/null || true' EXIT

CLAIM="SELECT id FROM jobs WHERE kind = 'whatsapp.reply' AND status = 'queued' AND NOT held AND run_at <= CURRENT_TIMESTAMP ORDER BY run_at, id LIMIT 1"
NEXT="SELECT id FROM jobs WHERE serial_key = 'whatsapp:1:555' AND status = 'queued' AND held ORDER BY id LIMIT 1"
BUSY="SELECT EXISTS (SELECT 1 FROM jobs AS other WHERE other.serial_key = 'whatsapp:1:555' AND other.status = 'queued' AND other.id <> 0) OR EXISTS (SELECT 1 FROM jobs AS other WHERE other.serial_key = 'whatsapp:1:555' AND other.status = 'running' AND other.id <> 0)"

echo "== SQLite: $HELD held jobs of one key, $HELD finished jobs"
DATABASE_URL="sqlite://$DIR/serial.db?mode=rwc" "$BIN" migrate >/dev/null 2>&1
python3 - "$DIR/serial.db" "$HELD" "$CLAIM" "$NEXT" "$BUSY" <<'PY'
import sqlite3, sys, time
db, held, *queries = sys.argv[1:]
c = sqlite3.connect(db)
c.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO jobs (kind, payload, serial_key, status, attempts, run_at, created_at, updated_at, held)
SELECT 'whatsapp.reply', '{}', 'whatsapp:1:555', CASE WHEN i = 1 THEN 'running' ELSE 'queued' END,
       0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', i > 1 FROM n""", (int(held),))
c.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO jobs (kind, payload, status, attempts, run_at, created_at, updated_at)
SELECT 'github.review', '{}', 'done', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM n""", (int(held),))
c.commit(); c.execute("ANALYZE")
for name, q in zip(["claim", "next of a key", "key busy"], queries):
    plan = "; ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN " + q))
    start = time.perf_counter()
    for _ in range(1000):
        c.execute(q).fetchall()
    print(f"{name:14} {(time.perf_counter() - start) * 1000:.3f} µs/query   {plan}")
PY

echo "== PostgreSQL: the same"
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS serial_claims" -c "CREATE DATABASE serial_claims"
PG="${PG_ADMIN%/*}/serial_claims"
DATABASE_URL="$PG" "$BIN" migrate >/dev/null 2>&1
psql "$PG" -q <<SQL
INSERT INTO jobs (kind, payload, serial_key, status, attempts, run_at, created_at, updated_at, held)
SELECT 'whatsapp.reply', '{}', 'whatsapp:1:555', CASE WHEN g = 1 THEN 'running' ELSE 'queued' END,
       0, now(), now(), now(), g > 1 FROM generate_series(1, $HELD) g;
INSERT INTO jobs (kind, payload, status, attempts, run_at, created_at, updated_at)
SELECT 'github.review', '{}', 'done', 1, now(), now(), now() FROM generate_series(1, $HELD);
ANALYZE jobs;
SQL
for q in "$CLAIM FOR UPDATE SKIP LOCKED" "$NEXT" "$BUSY"; do
    psql "$PG" -Atc "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) $q" | grep -E 'Index|Seq|Execution' | tr '\n' ' '
    echo
done
