"""Checks of the Grafana dashboard deploy/compose/grafana/dashboards/realm.json (no Grafana server
is installable here):

    python dashboard.py check DASHBOARD DATASOURCES.yaml     structure: unique panel ids, grid
                                                             positions inside 24 columns and not
                                                             overlapping, every target's datasource
                                                             is the provisioned one, every expr names
                                                             a realm_ metric that realm-server exports
    python dashboard.py rules DASHBOARD OUT.yaml             every expr as a recording rule, for
                                                             `promtool check rules` (PromQL syntax)
    python dashboard.py up PROMETHEUS_URL JOB [S]            wait until Prometheus scrapes JOB (up)
    python dashboard.py seen PROMETHEUS_URL EXPR [S]         wait until EXPR has a series (scraped)
    python dashboard.py query DASHBOARD PROMETHEUS_URL [S]   every expr evaluated by Prometheus' query
                                                             API: none may be empty or only NaN (no
                                                             observations), a counter's rate must be
                                                             above 0 (after traffic); polls up to S s

$__rate_interval becomes 1m outside Grafana."""

import json
import re
import sys
import time
import urllib.parse
import urllib.request

import yaml

# What realm-server exports (native-server/src/metrics.rs; histograms add _bucket/_sum/_count).
METRICS = {
    "realm_build_info", "realm_open_connections", "realm_kv_cache_usage_perc", "realm_requests_total",
    "realm_request_success_total", "realm_prompt_tokens_total", "realm_generation_tokens_total",
    "realm_prompt_tokens_cached_total", "realm_rate_limited_total", "realm_num_requests_running",
    "realm_num_requests_waiting", "realm_kv_cache_blocks", "realm_kv_cache_cached_blocks",
    "realm_prefix_cache_queries_total", "realm_prefix_cache_hits_total", "realm_num_preemptions_total",
    "realm_engine_steps_total",
} | {
    f"realm_{h}_{suffix}"
    for h in ("request_queue_time_seconds", "time_to_first_token_seconds", "inter_token_latency_seconds",
              "request_prefill_time_seconds", "request_decode_time_seconds", "e2e_request_latency_seconds")
    for suffix in ("bucket", "sum", "count")
}


def exprs(dashboard: dict):
    for p in dashboard["panels"]:
        for t in p.get("targets", []):
            yield p, t, t["expr"].replace("$__rate_interval", "1m")


def check(path: str, datasources: str):
    d = json.load(open(path))
    ds_uids = {ds["uid"] for ds in yaml.safe_load(open(datasources))["datasources"]}
    errors = []
    ids = [p["id"] for p in d["panels"]]
    if len(ids) != len(set(ids)):
        errors.append(f"panel ids repeat: {ids}")
    cells = {}
    for p in d["panels"]:
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] <= 0 or g["h"] <= 0 or g["x"] + g["w"] > 24:
            errors.append(f"panel {p['id']} ({p['title']}): gridPos {g} outside 24 columns")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    errors.append(f"panel {p['id']} overlaps panel {cells[(x, y)]} at {(x, y)}")
                    break
                cells[(x, y)] = p["id"]
        if not p.get("targets"):
            errors.append(f"panel {p['id']} ({p['title']}) has no query")
    for p, t, e in exprs(d):
        for ds in (p.get("datasource"), t.get("datasource")):
            if ds is not None and ds.get("uid") not in ds_uids:
                errors.append(f"panel {p['id']}: datasource {ds} is not provisioned ({ds_uids})")
        names = set(re.findall(r"\brealm_[a-z0-9_]+", e))
        if not names:
            errors.append(f"panel {p['id']}: {e!r} names no realm_ metric")
        for n in names - METRICS:
            errors.append(f"panel {p['id']}: {n} is not a metric realm-server exports")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)
    print(f"dashboard {path}: {len(ids)} panels, {sum(1 for _ in exprs(d))} queries, structure ok")


def rules(path: str, out: str):
    d = json.load(open(path))
    group = {"name": "realm-dashboard", "rules": [
        {"record": f"dashboard:panel{p['id']}:{t['refId']}", "expr": e} for p, t, e in exprs(d)]}
    yaml.safe_dump({"groups": [group]}, open(out, "w"), sort_keys=False)


def query(path: str, prom: str, timeout: float):
    d = json.load(open(path))
    pending = {(p["id"], t["refId"]): (p["title"], e) for p, t, e in exprs(d)}
    deadline = time.time() + timeout
    results = {}
    while True:
        for key, (title, e) in list(pending.items()):
            url = prom.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": e})
            body = json.loads(urllib.request.urlopen(url, timeout=10).read())
            if body["status"] != "success":
                print(f"FAIL: panel {key} {title}: {e}: {body}", file=sys.stderr)
                sys.exit(1)
            values = [float(s["value"][1]) for s in body["data"]["result"]]
            # A rate of a counter the test's traffic moved must be above 0 once Prometheus has
            # scraped that traffic (preemptions need memory pressure: not made here).
            moving = "rate(" in e and "histogram_quantile" not in e and "preemptions" not in e
            if any(v == v for v in values) and (not moving or any(v > 0 for v in values)):
                results[key] = (title, e, body["data"]["result"])
                del pending[key]
        if not pending or time.time() > deadline:
            break
        time.sleep(2)
    for (pid, ref), (title, e, res) in sorted(results.items()):
        vals = ", ".join(f"{s['value'][1]}" for s in res[:3])
        print(f"  panel {pid}{ref} {title}: {len(res)} series ({vals}{', …' if len(res) > 3 else ''})")
    if pending:
        for (pid, ref), (title, e) in sorted(pending.items()):
            print(f"FAIL: panel {pid}{ref} {title}: {e} is empty, NaN only, or a rate at 0", file=sys.stderr)
        sys.exit(1)
    print(f"all {len(results)} dashboard queries answered by Prometheus")


def up(prom: str, job: str, timeout: float):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            body = json.loads(urllib.request.urlopen(prom.rstrip("/") + "/api/v1/targets", timeout=5).read())
            last = [t for t in body["data"]["activeTargets"] if t["labels"].get("job") == job]
            if last and all(t["health"] == "up" for t in last):
                print(f"Prometheus scrapes {job}: {[t['scrapeUrl'] for t in last]}")
                return
        except OSError as e:
            last = e
        time.sleep(0.5)
    print(f"FAIL: {job} not scraped (up) within {timeout} s: {last}", file=sys.stderr)
    sys.exit(1)


def seen(prom: str, expr: str, timeout: float):
    deadline = time.time() + timeout
    while time.time() < deadline:
        url = prom.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        if json.loads(urllib.request.urlopen(url, timeout=10).read())["data"]["result"]:
            print(f"Prometheus has {expr}")
            return
        time.sleep(0.5)
    print(f"FAIL: {expr} not scraped within {timeout} s", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    if sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "rules":
        rules(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "up":
        up(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 60)
    elif sys.argv[1] == "seen":
        seen(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 60)
    elif sys.argv[1] == "query":
        query(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 60)
    else:
        sys.exit(__doc__)
