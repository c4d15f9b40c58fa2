#!/usr/bin/env python3
"""What one user's code upload costs everyone else (release server, loopback only, bounded).

For each server binary given, on SQLite then PostgreSQL, on a fresh server:
  1. a zip of 1,000 central-directory entries sharing one deflated block (58 KB): its
     status and the server's RSS growth;
  2. one large upload (the ~5,000-file corpus of bench/codebase.sh, or BENCH_CORPUS) while
     five other users create projects in a loop: the upload's time, and the others'
     POST /projects count, non-2xx answers and p50/p99/max latency;
  3. five such uploads at once: their statuses, and the server's peak RSS (VmHWM).

Usage: python3 bench/upload_contention.py BIN [BIN ...]   (BIN: a release codesherpa)
Environment: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres),
BENCH_FILES (5000), BENCH_CORPUS (a directory of source files).
"""
import glob
import http.client
import io
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib

PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
FILES = int(os.environ.get("BENCH_FILES", "5000"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def corpus_tarball():
    root = os.environ.get("BENCH_CORPUS") or sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/")))[0]
    paths = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.endswith(".rs"):
                full = os.path.join(dirpath, name)
                if os.path.getsize(full) < 1 << 20:
                    paths.append(full)
    paths = sorted(paths)[:FILES]
    buffer = io.BytesIO()
    size = 0
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in paths:
            tar.add(path, arcname=os.path.relpath(path, root))
            size += os.path.getsize(path)
    return buffer.getvalue(), len(paths), size


def overlapping_zip(entries=1000, block_bytes=1 << 20):
    """`entries` central-directory records all pointing at one local header + deflate block."""
    data = b"A" * block_bytes
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = compressor.compress(data) + compressor.flush()
    crc = zlib.crc32(data)
    name = b"a.txt"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), len(data), len(name), 0) + name
    body = local + deflated
    central = b""
    for i in range(entries):
        entry_name = f"f{i}.txt".encode()
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(deflated),
                               len(data), len(entry_name), 0, 0, 0, 0, 0, 0) + entry_name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(central), len(body), 0)
    return body + central + end


class Server:
    def __init__(self, binary, database_url, workdir):
        self.port = free_port()
        env = {
            "PATH": os.environ["PATH"], "HOME": workdir, "HOST": "127.0.0.1", "PORT": str(self.port),
            "DATABASE_URL": database_url, "DEBUG": "false", "LOG_FORMAT": "json", "RUST_LOG": "warn",
            "SECRET_KEY": os.urandom(32).hex(), "RATE_LIMIT_AUTH_PER_MINUTE": "0",
            "RATE_LIMIT_AI_PER_MINUTE": "0", "BCRYPT_ROUNDS": "4", "DATABASE_MAX_CONNECTIONS": "16",
            "UPLOAD_LIMIT_BYTES": str(50 << 20),
        }
        self.log = open(os.path.join(workdir, "server.log"), "wb")
        self.process = subprocess.Popen([binary, "serve"], cwd=workdir, env=env, stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("the server did not start")

    def request(self, method, path, body=None, token=None, content_type="application/json", timeout=120):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = content_type
            if not isinstance(body, (bytes, bytearray)):
                body = json.dumps(body).encode()
        try:
            try:
                connection.request(method, path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                # The server answered early (a 429 before the body) and closed: read it.
                pass
            response = connection.getresponse()
            data = response.read()
            return response.status, data
        finally:
            connection.close()

    def user(self, n):
        email = f"bench-{n}-{os.urandom(4).hex()}@example.com"
        self.request("POST", "/api/v1/auth/register", {"name": "Bench", "email": email, "password": "benchmark password"})
        _, data = self.request("POST", "/api/v1/auth/login", {"email": email, "password": "benchmark password"})
        return json.loads(data)["data"]["access_token"]

    def project(self, token):
        _, data = self.request("POST", "/api/v1/projects", {"name": "corpus"}, token)
        return json.loads(data)["data"]["id"]

    def rss_kib(self, field):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def upload(server, token, project_id, archive, results, index):
    started = time.monotonic()
    status, _ = server.request("PUT", f"/api/v1/projects/{project_id}/files", archive, token, "application/gzip", timeout=600)
    results[index] = (status, time.monotonic() - started)


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(binary, backend, archive, zip_bomb):
    workdir = tempfile.mkdtemp()
    database = None
    if backend == "sqlite":
        url = f"sqlite://{workdir}/bench.db"
    else:
        database = f"codesherpa_upload_{os.getpid()}"
        subprocess.run(["psql", "-q", PG_ADMIN, "-c", f"CREATE DATABASE {database}"], check=True)
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + database
    server = Server(binary, url, workdir)
    try:
        owner = server.user(0)
        before = server.rss_kib("VmRSS")
        bomb = server.project(owner)
        started = time.monotonic()
        status, body = server.request("PUT", f"/api/v1/projects/{bomb}/files", zip_bomb, owner, "application/zip")
        print(f"  {backend}: {len(zip_bomb) // 1024} KB zip of 1,000 overlapping entries → {status} in "
              f"{(time.monotonic() - started) * 1000:.0f} ms; RSS {before // 1024} → {server.rss_kib('VmRSS') // 1024} MiB "
              f"(peak {server.rss_kib('VmHWM') // 1024} MiB)")
        target = server.project(owner)
        others = [server.user(n) for n in range(1, 6)]
        latencies, failures = [], []
        done = threading.Event()

        def create_projects(token):
            while not done.is_set():
                started = time.monotonic()
                status, _ = server.request("POST", "/api/v1/projects", {"name": "other"}, token, timeout=60)
                latencies.append(time.monotonic() - started)
                if status >= 300:
                    failures.append(status)
                time.sleep(0.05)

        workers = [threading.Thread(target=create_projects, args=(t,)) for t in others]
        for w in workers:
            w.start()
        time.sleep(0.5)
        results = [None]
        upload(server, owner, target, archive, results, 0)
        done.set()
        for w in workers:
            w.join()
        print(f"  {backend}: one upload {results[0][0]} in {results[0][1]:.1f} s; meanwhile {len(latencies)} "
              f"POST /projects by 5 other users, {len(failures)} non-2xx {sorted(set(failures))}, "
              f"p50 {percentile(latencies, 50) * 1000:.0f} ms, p99 {percentile(latencies, 99) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms")

        projects = [server.project(owner) for _ in range(5)]
        results = [None] * 5
        threads = [threading.Thread(target=upload, args=(server, owner, p, archive, results, i)) for i, p in enumerate(projects)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r[0] for r in results)
        print(f"  {backend}: five uploads at once → {statuses}; peak RSS {server.rss_kib('VmHWM') // 1024} MiB")

    finally:
        server.stop()
        if database:
            subprocess.run(["psql", "-q", PG_ADMIN, "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"], check=False)


def main():
    binaries = sys.argv[1:]
    if not binaries:
        raise SystemExit(__doc__)
    archive, files, size = corpus_tarball()
    zip_bomb = overlapping_zip()
    print(f"corpus: {files} files, {size / 1e6:.1f} MB unpacked, {len(archive) / 1e6:.1f} MB gzipped; "
          f"load average {os.getloadavg()[0]:.2f}")
    for binary in binaries:
        print(binary)
        for backend in ("sqlite", "postgres"):
            run(binary, backend, archive, zip_bomb)


if __name__ == "__main__":
    main()
