#!/usr/bin/env python3
"""The shape of src/ drawn from its own imports (ARCHITECTURE.md): files, lines, import
circles (strongly connected files), arrows from a lower layer to a higher one, and the
functions over 60 lines. `python3 tools/layers.py` prints them; `-e` adds every arrow; `--check` fails on a
circle or an arrow up a layer (CI runs it).

Imports are read from `use crate::…`/`super::…`/`self::…` trees and inline `crate::…` paths,
test modules excluded; an arrow goes to the longest module path that is a file."""
import os, re, sys
from collections import defaultdict

args = [a for a in sys.argv[1:] if not a.startswith('-')]
root = args[0] if args else 'src'
mods = {}  # module path tuple -> file
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root)[:-3].split(os.sep)
        if rel[-1] == 'mod': rel = rel[:-1]
        if rel in (['main'], ['lib']): rel = []
        mods[tuple(rel)] = p

def strip_tests(src):
    m = re.search(r'#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{', src)
    return src[:m.start()] if m else src

def strip_comments(src):
    src = re.sub(r'/\*.*?\*/', '', src, flags=re.S)
    return re.sub(r'//[^\n]*', '', src)

def expand(tree):
    # expand a use tree string like a::{b, c::{d, e}} into list of paths
    tree = tree.strip()
    i = tree.find('{')
    if i < 0:
        return [re.sub(r'\s+as\s+\w+$', '', tree).strip()]
    prefix = tree[:i]
    inner = tree[i+1:tree.rfind('}')]
    parts, depth, cur = [], 0, ''
    for ch in inner:
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
        else: cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = p.strip()
        if not p: continue
        for e in expand(p):
            out.append(prefix + e if e != 'self' else prefix.rstrip(':'))
    return out

def resolve(me, path):
    segs = [s for s in path.split('::') if s]
    if not segs: return None
    if segs[0] == 'crate': base = []; segs = segs[1:]
    elif segs[0] == 'super':
        base = list(me[:-1]) if not is_mod[me] else list(me[:-1])
        # me is module path; for a mod.rs, super is parent; for foo.rs, super is parent too
        base = list(me[:-1]); segs = segs[1:]
        while segs and segs[0] == 'super': base = base[:-1]; segs = segs[1:]
    elif segs[0] == 'self': base = list(me); segs = segs[1:]
    else: return None
    full = base + segs
    for k in range(len(full), -1, -1):
        t = tuple(full[:k])
        if t in mods: return t
    return None

is_mod = {m: mods[m].endswith('mod.rs') or m == () for m in mods}
edges = defaultdict(set)
lines = {}
longfns = []
for m, p in mods.items():
    raw = open(p).read()
    lines[m] = raw.count('\n')
    src = strip_comments(strip_tests(raw))
    paths = []
    for u in re.finditer(r'\buse\s+((?:crate|super|self)\b[^;]*);', src):
        paths += expand(u.group(1))
    for u in re.finditer(r'\b((?:crate|super)(?:::\w+)+)', src):
        paths.append(u.group(1))
    for path in paths:
        t = resolve(m, path)
        if t is not None and t != m and t != ():
            edges[m].add(t)
    # long functions
    ls = raw.split('\n')
    for i, l in enumerate(ls):
        mm = re.match(r'\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)', l)
        if not mm: continue
        depth = 0; started = False
        for j in range(i, len(ls)):
            s = re.sub(r'//.*', '', ls[j])
            s = re.sub(r'"(\\.|[^"\\])*"', '""', s)
            s = re.sub(r"'(\\.|[^'\\])'", "''", s)
            for ch in s:
                if ch == '{': depth += 1; started = True
                elif ch == '}': depth -= 1
            if started and depth == 0: break
            if not started and s.rstrip().endswith(';'): break
        if started:
            n = j - i + 1
            if n > 60: longfns.append((n, p, mm.group(6)))

# Tarjan SCC
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in list(mods):
    if v not in idx: sc(v)
circles = [s for s in sccs if len(s) > 1]
name = lambda t: '::'.join(t) or 'crate'
print(f"files {len(mods)}  lines {sum(lines.values())}  edges {sum(len(e) for e in edges.values())}")
print(f"circles {len(circles)}  sizes {sorted((len(s) for s in circles), reverse=True)}")
for s in sorted(circles, key=len, reverse=True):
    print('  circle:', ' '.join(sorted(name(x) for x in s)))
print(f"functions over 60 lines: {len(longfns)}")
for n, p, f in sorted(longfns, reverse=True): print(f"  {n:4d} {p} {f}")
if '-e' in sys.argv:
    for m in sorted(edges):
        print(name(m), '->', ' '.join(sorted(name(x) for x in edges[m])))

LAYER = {'error':0,'db':0,'http':0,'extract':0,'validate':0,'pagination':0,'jobs':0,'redis_bus':0,
         'memory':0,'telemetry':0,'env':0,'llm':1,'specialists':1,'auth':2,'users':2,'agents':2,'projects':2,
         'codebase':3,'chat':3,'orchestrator':4,'ws':5,'integrations':5}
# chat's routes deliver the pipeline over REST and SSE, as ws does over sockets.
LAYER_OF_MODULE = {('chat', 'routes'): 5}
def layer(t): return LAYER_OF_MODULE.get(t, LAYER.get(t[0], 9)) if t else 9
up = []
for m in sorted(edges):
    for t in sorted(edges[m]):
        if layer(t) > layer(m) and t[0] not in ('state',):
            up.append((name(m), name(t)))
to_state = sorted(name(m) for m in edges if ('state',) in edges[m] and layer(m) < 9)
print(f"upward arrows (excluding to state): {len(up)}")
for a, b in up: print(f"  {a} -> {b}")
if '-s' in sys.argv: print("import state:", ' '.join(to_state))
if '--check' in sys.argv and (circles or up):
    sys.exit("FAIL: an import circle or an arrow up a layer (ARCHITECTURE.md)")
