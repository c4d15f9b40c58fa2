#!/usr/bin/env python3
"""A fast local stand-in for GitHub's REST API for bench/github.sh: every pull request of
every repository is open at one head with a small diff and no `.codesherpa.yml`; issue
comments and pull-request reviews are kept in memory so the benchmark can check that each
pull request got exactly one comment (and at most one review).
Usage: github_mock.py PORT   (GET /_stats answers {"comments": N, "per_pull": {...}})"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEAD = "1" * 40
BASE = "2" * 40
DIFF = ("diff --git a/src/pay.py b/src/pay.py\n--- a/src/pay.py\n+++ b/src/pay.py\n"
        "@@ -1,2 +1,3 @@\n def pay(amount):\n+    print(amount)\n     return amount\n")
LOCK = threading.Lock()
COMMENTS = {}  # id -> (pull key, body)
CREATED = {}   # pull key -> comments created
REVIEWS = {}   # pull key -> [review bodies]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["_stats"]:
            with LOCK:
                return self.reply(200, {"comments": len(COMMENTS), "per_pull": CREATED,
                                        "reviews": sum(len(r) for r in REVIEWS.values())})
        # repos/{o}/{r}/pulls/{n} or repos/{o}/{r}/issues/{n}/comments
        if len(parts) == 5 and parts[3] == "pulls":
            if "diff" in (self.headers.get("Accept") or ""):
                return self.reply(200, DIFF.encode(), "application/vnd.github.diff")
            return self.reply(200, {"number": int(parts[4]), "head": {"sha": HEAD}, "base": {"sha": BASE}})
        if len(parts) == 6 and parts[3] == "pulls" and parts[5] == "reviews":
            key = "/".join(parts[1:3]) + "#" + parts[4]
            with LOCK:
                mine = [{"id": i, "body": b, "commit_id": HEAD} for i, b in enumerate(REVIEWS.get(key, []))]
            return self.reply(200, mine)
        if len(parts) == 6 and parts[3] == "issues" and parts[5] == "comments":
            key = "/".join(parts[1:3]) + "#" + parts[4]
            with LOCK:
                mine = [{"id": i, "body": b, "html_url": f"https://github.com/{key}#c{i}"}
                        for i, (k, b) in COMMENTS.items() if k == key]
            return self.reply(200, mine)
        self.reply(404, {"message": "Not Found"})

    def do_POST(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 6 and parts[3] == "issues" and parts[5] == "comments":
            key = "/".join(parts[1:3]) + "#" + parts[4]
            text = self.body()["body"]
            with LOCK:
                cid = len(COMMENTS) + 1
                COMMENTS[cid] = (key, text)
                CREATED[key] = CREATED.get(key, 0) + 1
            return self.reply(201, {"id": cid, "body": text, "html_url": f"https://github.com/{key}#c{cid}"})
        if len(parts) == 6 and parts[3] == "pulls" and parts[5] == "reviews":
            key = "/".join(parts[1:3]) + "#" + parts[4]
            text = self.body().get("body", "")
            with LOCK:
                REVIEWS.setdefault(key, []).append(text)
                rid = len(REVIEWS[key])
            return self.reply(200, {"id": rid, "body": text, "commit_id": HEAD, "state": "COMMENTED"})
        self.reply(404, {"message": "Not Found"})

    def do_PATCH(self):
        cid = int(self.path.rstrip("/").rsplit("/", 1)[-1])
        text = self.body()["body"]
        with LOCK:
            key = COMMENTS[cid][0]
            COMMENTS[cid] = (key, text)
        self.reply(200, {"id": cid, "body": text, "html_url": f"https://github.com/{key}#c{cid}"})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
