"""One client, each query of bench/codebase.sh (and `fn`) 15 times in turn: median and min
latency, total. Usage: python3 bench/perquery.py PORT TOKEN PROJECT_ID (a server with the
corpus indexed, e.g. one bench/codebase.sh started)."""
import http.client, json, sys, time, urllib.parse
port, token, pid = sys.argv[1], sys.argv[2], sys.argv[3]
qs = ["poll_next", "HashMap", "fn new", "impl Default", "unwrap_or_else",
  "deserialize_any", "as_ref", "Result<", "#[inline]", "memchr", "from_utf8", "self",
  "ParseError", "fn drop", "Vec::with_capacity", "assert_eq!", "fn"]
c = http.client.HTTPConnection("127.0.0.1", int(port))
def get(q):
    c.request("GET", f"/api/v1/projects/{pid}/search?q={urllib.parse.quote(q)}&limit=20", headers={"Authorization": "Bearer " + token})
    r = c.getresponse(); return json.loads(r.read())
for q in qs: get(q)
for q in qs:
    ts = []
    for _ in range(15):
        t = time.perf_counter(); d = get(q); ts.append(time.perf_counter() - t)
    ts.sort()
    print(f"{q:22} median {ts[7]*1000:7.2f} ms  min {ts[0]*1000:7.2f}  total {d['data']['total']} exact {d['data'].get('total_exact')}")
