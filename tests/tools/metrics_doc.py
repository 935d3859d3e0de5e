#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# metrics_doc.py - hold docs/METRICS.md, a live /metrics scrape and the
# Grafana dashboard (deploy/grafana/pullcache.json) against each other:
#   python3 metrics_doc.py METRICS.md SCRAPE.txt DASHBOARD.json
# - every family in the scrape is a row of METRICS.md's table, and every
#   label of its series (histograms' le aside) is one the row names;
# - the dashboard is valid JSON, and every pullcache_ metric its queries use
#   is documented and present in the scrape.
# Prints what it checked; exit 1 with every mismatch listed.
import json
import re
import sys

doc_path, scrape_path, dash_path = sys.argv[1:4]
problems = []

# METRICS.md: | `name` | type | labels | meaning |; labels are the
# backticked words outside parentheses (those list a label's values).
doc = {}
for line in open(doc_path, encoding="utf-8"):
    m = re.match(r"^\| `(pullcache_[a-z0-9_]+)` \| ([a-z]+) \|(.*?)\| ", line)
    if not m:
        continue
    labels = m.group(3)
    while re.search(r"\([^()]*\)", labels):
        labels = re.sub(r"\([^()]*\)", "", labels)
    doc[m.group(1)] = set(re.findall(r"`([a-z_]+)`", labels))
if not doc:
    sys.exit("metrics_doc.py: no metric rows in " + doc_path)

# the scrape: families by # TYPE, series label names
types = {}
series = {}
for line in open(scrape_path, encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        _, _, name, typ = line.split(" ", 3)
        types[name] = typ
        continue
    if not line or line.startswith("#"):
        continue
    m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ", line)
    if not m:
        problems.append("unparsable /metrics line: " + line)
        continue
    name = m.group(1)
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            name = base
    names = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or "")) - {"le"}
    series.setdefault(name, set()).update(names)
for name in sorted(series):
    if name not in types:
        problems.append(f"/metrics: {name} has series but no # TYPE line")
    if name not in doc:
        problems.append(f"/metrics has {name}, docs/METRICS.md does not")
    elif not series[name] <= doc[name]:
        problems.append(f"{name}: labels {sorted(series[name] - doc[name])} are not in docs/METRICS.md "
                        f"(it names {sorted(doc[name])})")

# the dashboard
try:
    dash = json.load(open(dash_path, encoding="utf-8"))
except ValueError as e:
    sys.exit(f"metrics_doc.py: {dash_path} is not JSON: {e}")
exprs = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                exprs.append(v)
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(dash.get("panels", []))
walk(dash.get("templating", {}))
used = set()
for e in exprs:
    for name in re.findall(r"pullcache_[a-z0-9_]+", e):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in doc:
                name = name[: -len(suffix)]
        used.add(name)
if not used:
    problems.append(f"{dash_path}: no pullcache_ metric in its queries")
for name in sorted(used):
    if name not in doc:
        problems.append(f"the dashboard uses {name}, docs/METRICS.md does not document it")
    if name not in series:
        problems.append(f"the dashboard uses {name}, which the live /metrics does not have")
titles = [p.get("title") for p in dash.get("panels", [])]

print(f"documented: {len(doc)} metrics; scraped: {len(series)} families; "
      f"dashboard: {len(titles)} panels using {len(used)} metrics ({', '.join(sorted(used))})")
for p in problems:
    print("MISMATCH: " + p)
sys.exit(1 if problems else 0)
