#!/usr/bin/env python3
"""PostgreSQL stopped mid-load: 503s within the acquire timeout, no hang, recovery
without a restart. Bounded (about a minute); needs only the Python standard library.

    CARGO_TARGET_DIR=... python3 bench/pg_outage.py [path/to/codesherpa]

It creates a throw-away cluster (initdb/pg_ctl from /usr/lib/postgresql/*/bin) in a temp
directory on a free port, run as the `postgres` user when started as root, never the
shared server on 5432. The server binary (default: $CARGO_TARGET_DIR/debug/codesherpa)
serves it on another free port. Writers (POST /projects) and readers (GET /projects)
run throughout; the cluster is stopped with `pg_ctl stop -m immediate` (a crash, as
far as the server can tell) for OUTAGE_SECONDS, then started again. Every request is
timed; the summary per phase is printed and the exit status says whether it held up.
"""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HEALTHY_SECONDS = 8
OUTAGE_SECONDS = 15
RECOVERY_SECONDS = 12
CLIENTS = 6
CLIENT_TIMEOUT = 20  # a request this slow counts as a hang
ACQUIRE_TIMEOUT = 5  # src/db/mod.rs ACQUIRE_TIMEOUT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(args):
    """Runs a PostgreSQL tool, as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def request(method, url, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=CLIENT_TIMEOUT) as reply:
            status, payload = reply.status, reply.read()
    except urllib.error.HTTPError as err:
        status, payload = err.code, err.read()
    except Exception:  # connection refused, reset, timeout: the server itself failed
        status, payload = 0, b""
    return status, time.monotonic() - started, payload


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "codesherpa")
    binary = os.path.abspath(binary)
    bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    work = tempfile.mkdtemp(prefix="pg-outage-")
    os.chmod(work, 0o777)
    data_dir, pg_log = os.path.join(work, "data"), os.path.join(work, "pg.log")
    pg_port, api_port = free_port(), free_port()
    pg_ctl = [f"{bindir}/pg_ctl", "-D", data_dir, "-l", pg_log, "-w"]
    pg_options = ["-o", f"-p {pg_port} -k {work} -c listen_addresses=127.0.0.1"]
    server = None
    try:
        as_postgres([f"{bindir}/initdb", "-D", data_dir, "-A", "trust", "-U", "postgres"])
        as_postgres(pg_ctl + pg_options + ["start"])
        env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/postgres",
            "HOST": "127.0.0.1", "PORT": str(api_port), "DEBUG": "true",
            "SECRET_KEY": "pg-outage-bench-secret-key-0123456789abcdef",
            "BCRYPT_ROUNDS": "4", "RATE_LIMIT_AUTH_PER_MINUTE": "0",
            "RATE_LIMIT_AI_PER_MINUTE": "0", "RUST_LOG": "warn", "LOG_FORMAT": "json",
            # No cached user rows: every request needs the database.
            "AUTH_CACHE_TTL_MS": "0",
        }
        server = subprocess.Popen([binary], env=env, cwd=work,
                                  stdout=open(os.path.join(work, "server.log"), "w"),
                                  stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{api_port}"
        for _ in range(400):
            if request("GET", f"{base}/health")[0] == 200:
                break
            time.sleep(0.05)
        credentials = {"name": "Outage", "email": "outage@example.com", "password": "password123"}
        request("POST", f"{base}/api/v1/auth/register", body=credentials)
        _, _, payload = request("POST", f"{base}/api/v1/auth/login", body=credentials)
        token = json.loads(payload)["data"]["access_token"]

        samples = []  # (phase, status, seconds)
        phase = ["healthy"]
        stop = threading.Event()

        def client(n):
            while not stop.is_set():
                label = phase[0]
                if n % 2 == 0:
                    status, took, _ = request("POST", f"{base}/api/v1/projects", token, {"name": "p"})
                else:
                    status, took, _ = request("GET", f"{base}/api/v1/projects?limit=5", token)
                samples.append((label, status, took))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(HEALTHY_SECONDS)
        phase[0] = "outage"
        as_postgres(pg_ctl + ["stop", "-m", "immediate"])
        ready_during = request("GET", f"{base}/health/ready")
        time.sleep(OUTAGE_SECONDS)
        phase[0] = "recovery"
        as_postgres(pg_ctl + pg_options + ["start"])
        restarted_at = time.monotonic()
        first_success = None
        while time.monotonic() - restarted_at < RECOVERY_SECONDS:
            status, _, _ = request("POST", f"{base}/api/v1/projects", token, {"name": "r"})
            if status == 201 and first_success is None:
                first_success = time.monotonic() - restarted_at
            time.sleep(0.1)
        ready_after = request("GET", f"{base}/health/ready")
        stop.set()
        for thread in threads:
            thread.join()

        ok = True
        print(f"server: {binary}; PostgreSQL {bindir} on port {pg_port}; {CLIENTS} clients "
              f"(half POST /projects, half GET /projects), auth cache off")
        print(f"phases: healthy {HEALTHY_SECONDS} s, outage {OUTAGE_SECONDS} s "
              f"(pg_ctl stop -m immediate), recovery {RECOVERY_SECONDS} s")
        for label in ("healthy", "outage", "recovery"):
            rows = [s for s in samples if s[0] == label]
            counts = {}
            for _, status, _ in rows:
                counts[status] = counts.get(status, 0) + 1
            slowest = max((took for _, _, took in rows), default=0.0)
            print(f"  {label:9} requests={len(rows):6}  statuses={dict(sorted(counts.items()))}  "
                  f"slowest={slowest:.2f} s")
            bad = {s for s in counts if s == 0 or (s >= 500 and s != 503)}
            if bad:
                print(f"    FAIL: answers other than 2xx/503 (0 = no answer): {sorted(bad)}")
                ok = False
            if slowest > ACQUIRE_TIMEOUT + 1.5:
                print(f"    FAIL: a request took {slowest:.2f} s (acquire timeout {ACQUIRE_TIMEOUT} s)")
                ok = False
        print(f"  /health/ready during the outage: {ready_during[0]} in {ready_during[1]:.2f} s; "
              f"after recovery: {ready_after[0]}")
        if first_success is None:
            print("  FAIL: no write succeeded after PostgreSQL came back")
            ok = False
        else:
            print(f"  first 201 after PostgreSQL restarted: {first_success:.2f} s")
        if ready_during[0] != 503 or ready_after[0] != 200:
            print("  FAIL: /health/ready did not follow the database")
            ok = False
        outage = [s for s in samples if s[0] == "outage"]
        if not any(status == 503 for _, status, _ in outage):
            print("  FAIL: no 503 during the outage")
            ok = False
        print("RESULT:", "ok" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        if server is not None:
            server.kill()
            server.wait()
        try:
            as_postgres(pg_ctl + ["stop", "-m", "immediate"])
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
