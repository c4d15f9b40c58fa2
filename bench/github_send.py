#!/usr/bin/env python3
"""Sends N signed `pull_request` deliveries (pull requests START..START+N-1 of
bench/repo), round-robin over the given servers, from 16 threads.
Usage: github_send.py SECRET N START BASE_URL [BASE_URL...]  → prints "sent N in S s"."""
import hashlib
import hmac
import json
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

secret, count, start, bases = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]


def send(i):
    number = start + i
    body = json.dumps({
        "action": "opened", "number": number,
        "pull_request": {"number": number, "draft": False, "head": {"sha": "1" * 40}},
        "repository": {"full_name": "bench/repo"},
        "sender": {"login": "octocat", "type": "User"},
    }).encode()
    request = urllib.request.Request(
        bases[i % len(bases)] + "/api/v1/integrations/github/webhook", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
                 "X-GitHub-Delivery": str(uuid.uuid4()),
                 "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()})
    with urllib.request.urlopen(request) as response:
        assert response.status == 202, response.status


began = time.monotonic()
with ThreadPoolExecutor(16) as pool:
    list(pool.map(send, range(count)))
print(f"sent {count} in {time.monotonic() - began:.2f} s")
