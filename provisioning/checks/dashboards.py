#!/usr/bin/env python3
"""Checks the Grafana dashboards (and the alert rules' metric names).

  dashboards.py static DASH_DIR [PLUGIN_JSON]
      every file parses, uids unique, every panel type known (Grafana's core
      panels and the Statescope panel), every query has a refId and an
      expression, every $variable used is defined.
  dashboards.py names DASH_DIR METRICS_FILE RULE_FILE...
      every metric name in every dashboard query, variable query and alert
      rule expression is one the exporter serves (METRICS_FILE: a scrape of
      its /metrics), allowing the _total/_bucket/_sum/_count suffixes of its
      counter, histogram and summary families, and the series Prometheus adds
      itself (up, scrape_*).
  dashboards.py live DASH_DIR PROMETHEUS_URL TIMEOUT_SECONDS
      every dashboard query (variables as "All" = .*, $__rate_interval and
      $__range as 1m) and every variable query returns data with at least
      one finite value from a real Prometheus, retrying until TIMEOUT.

Python standard library only.
"""

import json
import math
import pathlib
import re
import sys
import time
import urllib.parse
import urllib.request

PLUGIN_ID = "statescope-statemachine-panel"
# Grafana 12/13 core panel types.
CORE_PANELS = {
    "alertlist", "annolist", "barchart", "bargauge", "candlestick", "canvas", "dashlist", "datagrid",
    "flamegraph", "gauge", "geomap", "heatmap", "histogram", "logs", "news", "nodeGraph", "piechart", "row",
    "stat", "state-timeline", "status-history", "table", "text", "timeseries", "traces", "trend", "xychart",
}
# Series Prometheus adds to every target's scrape.
PROMETHEUS_SERIES = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
BUILTIN_VARIABLES = {"__rate_interval", "__range", "__interval", "__interval_ms", "__range_s", "__range_ms"}
PROMQL_WORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right",
    "inf", "nan", "atan2", "start", "end",
}
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.*?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S)
VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|([A-Za-z0-9_]+))")


def fail(msg):
    print(f"dashboards: {msg}", file=sys.stderr)
    sys.exit(1)


# --- reading dashboards ------------------------------------------------------------


def load(dash_dir):
    files = sorted(pathlib.Path(dash_dir).glob("*.json"))
    if not files:
        fail(f"no dashboards in {dash_dir}")
    out = []
    for f in files:
        try:
            out.append((f.name, json.loads(f.read_text())))
        except json.JSONDecodeError as e:
            fail(f"{f}: not JSON: {e}")
    return out


def panels(dash):
    for p in dash.get("panels", []):
        yield p
        yield from p.get("panels", [])  # panels inside a collapsed row


def queries(dashes):
    """(where, expr) for every panel target."""
    for name, d in dashes:
        for p in panels(d):
            for t in p.get("targets", []):
                yield f"{name} / {p.get('title')!r} / {t.get('refId')}", t.get("expr", "")


def rule_exprs(rule_files):
    """(alert|record, name, where, expr) for every rule: the rule files are
    YAML, the expressions their `expr: |` blocks."""
    for f in rule_files:
        text = pathlib.Path(f).read_text()
        for m in re.finditer(r"^(\s*)- (alert|record): (\S+)\n(?:\1  .*\n)*?\1  expr: \|\n((?:\1    .*\n)+)",
                             text, re.M):
            yield m.group(2), m.group(3), f"{pathlib.Path(f).name} / {m.group(3)}", m.group(4)


def alert_exprs(rule_files):
    """(where, expr) for every alert rule."""
    for kind, _name, where, expr in rule_exprs(rule_files):
        if kind == "alert":
            yield where, expr


def variable_queries(dashes):
    """(where, selector, label) for every label_values variable."""
    for name, d in dashes:
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q or ""
            m = LABEL_VALUES.match(q)
            if not m:
                fail(f"{name}: variable {v.get('name')}: only label_values(selector, label) is checked, got {q!r}")
            yield f"{name} / ${v['name']}", m.group(1), m.group(2)


# --- PromQL metric names -----------------------------------------------------------


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions,
    keywords, label names (inside {...} or by/on(...)) or durations."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^{}]*\}", " ", s)
    s = re.sub(r"\[[^\[\]]*\]", " ", s)
    s = re.sub(r"\$\{?[A-Za-z0-9_]+(?::[a-z]+)?\}?", " 0 ", s)  # Grafana variables ($__range_s) are numbers
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        word, before, after = m.group(0), s[: m.start()], s[m.end():]
        if before and (before[-1].isdigit() or before[-1] == "."):
            continue  # exponent or duration unit: 1e3, 5m
        if re.match(r"\s*\(", after) or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def _self_test():
    """The extractor is what makes the name check meaningful: prove it on known cases."""
    cases = {
        'sum by (le, worker_type) (rate(a_bucket{x="y", z=~"$v"}[$__rate_interval]))': {"a_bucket"},
        "time() - b_seconds{k=\"v\"} > 120 and on (job, machine) c == 1": {"b_seconds", "c"},
        'histogram_quantile(0.95, sum without (pod) (rate(d[5m]))) * 1e3 offset 5m': {"d"},
        'count by (p) (e{s=~"open|x"} == 1) == count by (p) (f)': {"e", "f"},
        'increase(g_total{to="open"}[1h]) > 0 unless on (m) h': {"g_total", "h"},
        'i > time() - $__range_s or j': {"i", "j"},
    }
    for expr, want in cases.items():
        got = metric_names(expr)
        if got != want:
            fail(f"internal: metric_names({expr!r}) = {sorted(got)}, expected {sorted(want)}")


# --- static checks -----------------------------------------------------------------


def check_static(dash_dir, plugin_json=None):
    dashes = load(dash_dir)
    plugin_id = PLUGIN_ID
    if plugin_json and pathlib.Path(plugin_json).exists():
        plugin_id = json.loads(pathlib.Path(plugin_json).read_text()).get("id", "")
        if plugin_id != PLUGIN_ID:
            fail(f"{plugin_json}: plugin id is {plugin_id!r}, the dashboards use {PLUGIN_ID!r}")
    known = CORE_PANELS | {plugin_id}
    problems, uids, n_panels, n_queries, n_plugin = [], {}, 0, 0, 0
    for name, d in dashes:
        for key in ("uid", "title", "panels"):
            if not d.get(key):
                problems.append(f"{name}: no {key}")
        if d.get("uid") in uids:
            problems.append(f"{name}: uid {d['uid']} also used by {uids[d['uid']]}")
        uids[d.get("uid")] = name
        defined = {v.get("name") for v in d.get("templating", {}).get("list", [])}
        ids = set()
        for p in panels(d):
            n_panels += 1
            ptype = p.get("type")
            where = f"{name} / {p.get('title')!r}"
            if ptype not in known:
                problems.append(f"{where}: unknown panel type {ptype!r}")
            if p.get("id") in ids:
                problems.append(f"{where}: panel id {p.get('id')} repeated")
            ids.add(p.get("id"))
            if ptype == plugin_id:
                n_plugin += 1
            if ptype == "row":
                n_panels -= 1
                continue
            targets = p.get("targets", [])
            if not targets:
                problems.append(f"{where}: no queries")
            refs = [t.get("refId") for t in targets]
            if len(set(refs)) != len(refs) or not all(refs):
                problems.append(f"{where}: refIds missing or repeated: {refs}")
            for t in targets:
                n_queries += 1
                if not t.get("expr", "").strip():
                    problems.append(f"{where} / {t.get('refId')}: empty expression")
        text = json.dumps(d)
        for m in VARIABLE.finditer(text):
            var = m.group(1) or m.group(2)
            if var not in defined and var not in BUILTIN_VARIABLES and not var.startswith("__"):
                problems.append(f"{name}: uses ${var}, which no variable defines")
    for p in problems:
        print(f"dashboards: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    if not n_plugin:
        fail("no dashboard uses the Statescope panel")
    print(f"dashboards: {len(dashes)} dashboards parse, {n_panels} panels (rows aside) of known types ({n_plugin} Statescope "
          f"panels), {n_queries} queries, all variables defined")


# --- metric names against the exporter ---------------------------------------------


def exported(metrics_text):
    """Names a query may use: sample names, and family names with their type's suffixes."""
    samples, families = set(), {}
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                families[parts[2]] = parts[3]
        elif line and not line.startswith("#"):
            samples.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    names = set(samples)
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"],
                "gaugehistogram": ["_bucket", "_gsum", "_gcount"], "summary": ["_sum", "_count"]}
    for fam, kind in families.items():
        names.add(fam)
        names.update(fam + s for s in suffixes.get(kind, []))
    return names, samples


def check_names(dash_dir, metrics_file, rule_files):
    _self_test()
    names, samples = exported(pathlib.Path(metrics_file).read_text())
    if not samples:
        fail(f"{metrics_file} holds no samples")
    if {"statescope_bogus_total"} & names:
        fail("internal: a name the exporter cannot serve was accepted")
    dashes = load(dash_dir)
    uses = []
    for where, expr in queries(dashes):
        uses += [(where, n) for n in metric_names(expr)]
    for where, selector, _label in variable_queries(dashes):
        uses += [(where, n) for n in metric_names(selector)]
    n_rules = 0
    recorded = set()
    for kind, name, where, expr in rule_exprs(rule_files):
        if kind == "alert":
            n_rules += 1
        else:
            recorded.add(name)
        uses += [(where, n) for n in metric_names(expr)]
    # What a recording rule writes is served by Prometheus itself.
    names = names | recorded
    alerts = sum(len(re.findall(r"^\s*- alert:", pathlib.Path(f).read_text(), re.M)) for f in rule_files)
    if n_rules != alerts:
        fail(f"read the expression of {n_rules} alert rules, but the rule files define {alerts}")
    bad = sorted({(w, n) for w, n in uses if n not in names and n not in PROMETHEUS_SERIES})
    for where, n in bad:
        print(f"dashboards: {where}: metric {n} is not served by the exporter", file=sys.stderr)
    if bad:
        sys.exit(1)
    distinct = {n for _, n in uses}
    print(f"dashboards: {len(uses)} metric uses ({len(distinct)} distinct names) in dashboard queries, variables "
          f"and {n_rules} alert rules all served by the exporter ({len(samples)} sample names on /metrics)")


# --- live queries on Prometheus ----------------------------------------------------


def substitute(expr, variables):
    def repl(m):
        var = m.group(1) or m.group(2)
        if var in ("__rate_interval", "__range", "__interval"):
            return "1m"
        if var == "__range_s":
            return "60"
        if var in variables:
            return variables[var]
        fail(f"cannot substitute ${var} in {expr!r}")

    return VARIABLE.sub(repl, expr)


def prom_get(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["data"]


def has_finite_value(data):
    result = data.get("result", [])
    if data.get("resultType") == "scalar":
        result = [{"value": result}]
    for series in result:
        values = series.get("values") or [series.get("value")]
        for v in values:
            if v and not math.isnan(float(v[1])) and not math.isinf(float(v[1])):
                return True
    return False


def live_queries(dashes):
    """{where: ("query", expr) | ("label", selector, label)}: every dashboard
    query and variable query as Grafana sends it with every variable on "All"."""
    variables = {}
    for _, d in dashes:
        for v in d.get("templating", {}).get("list", []):
            if v.get("includeAll"):
                variables[v["name"]] = v.get("allValue") or ".*"
    todo = {}
    for where, expr in queries(dashes):
        todo[where] = ("query", substitute(expr, variables))
    for where, selector, label in variable_queries(dashes):
        todo[where] = ("label", substitute(selector, variables), label)
    return todo


def check_live(dash_dir, base, timeout):
    todo = live_queries(load(dash_dir))
    total = len(todo)
    deadline = time.monotonic() + timeout
    errors = {}
    while todo and time.monotonic() < deadline:
        for where, q in list(todo.items()):
            try:
                if q[0] == "query":
                    data = prom_get(base, "/api/v1/query", {"query": q[1]})
                    ok = has_finite_value(data)
                else:
                    data = prom_get(base, "/api/v1/label/" + q[2] + "/values", {"match[]": q[1]})
                    ok = any(v for v in data)
            except Exception as e:  # a query Prometheus refuses fails now, not at the deadline
                if "bad_data" in str(e) or getattr(e, "code", 0) == 400:
                    fail(f"{where}: Prometheus refused {q[1]!r}: {e}")
                errors[where] = str(e)
                ok = False
            if ok:
                del todo[where]
        if todo:
            time.sleep(1)
    for where, q in todo.items():
        print(f"dashboards: {where}: no data from Prometheus for {q[1]!r} {errors.get(where, '')}",
              file=sys.stderr)
    if todo:
        sys.exit(1)
    print(f"dashboards: a real Prometheus answered all {total} dashboard and variable queries with data")


def main(argv):
    if len(argv) >= 2 and argv[0] == "static":
        check_static(argv[1], argv[2] if len(argv) > 2 else None)
    elif len(argv) >= 3 and argv[0] == "names":
        check_names(argv[1], argv[2], argv[3:])
    elif len(argv) == 4 and argv[0] == "live":
        check_live(argv[1], argv[2].rstrip("/"), float(argv[3]))
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
