#!/usr/bin/env python3
"""Checks the way past one machine: Prometheus remote-writes the stack's
series to VictoriaMetrics, and the dashboards, the panel and the alert rules
get the same answers from it as from Prometheus.

Usage: remote_write.py DASH_DIR RULES_DIR PROMETHEUS_URL VICTORIAMETRICS_URL TIMEOUT_SECONDS

PROMETHEUS_URL scrapes the exporter and remote-writes to VICTORIAMETRICS_URL.
At one evaluation time T (some 20 s back, once both stores hold samples
past it and VictoriaMetrics answers every series that began by it), both
answer:

1. every series of job="statescope": the same label sets and values (where
   they differ, the report gives each store's count per metric name, and
   each series only one store answers, with where its samples lie around T
   in both);
2. every dashboard query and every alert rule expression (instant, at T):
   the same series (label sets). Values must be equal (within 1e-9
   relative, the JSON round trip of a float64 both stores keep exactly) for
   expressions without `rate()`/`increase()`. Those two are where MetricsQL
   differs from PromQL by design, so for them each `rate(sel[w])` and
   `increase(sel[w])` term is checked on its own: from the raw samples
   Prometheus holds, this script computes what PromQL (Prometheus 2.42,
   extrapolating to the window's edges) and what MetricsQL (VictoriaMetrics
   1.79, counting from the last sample before the window, no extrapolation)
   define, and each store must answer its own definition exactly; the report
   says how far apart the two definitions are on live data. An expression
   may keep different series in the two stores only when one of its
   rate()/increase() terms answered differently (a threshold or `unless`
   after it then picks different series);
3. the Statescope panel's queries as Grafana sends them (query_range over the
   last hour, 15 s steps aligned to the step): the same series and the same
   value at every step;
4. every dashboard variable query (label values): the same values.

T is taken only once VictoriaMetrics answers every series that began by
it. VictoriaMetrics makes a sample searchable within about a second, but
it answers a label filter (such as {job="statescope"}) from a cache of the
series that filter matched, which VictoriaMetrics 1.79 renews only on a
10 s ticker started with the process (lib/mergeset calls the index's
flushCallback, which invalidates that cache, at most once per tick). A
series indexed after the filter was cached (an alert going pending or
firing, a breaker's first transition) is left out of that filter's answers
until the next tick, though its samples are stored and a filter not cached
yet finds it. The wait for T's samples below asks {job="statescope"} every
second, so a series that began within seconds before T was counted by
Prometheus only, in about 1 run of test.sh in 5 (seen: ALERTS and
ALERTS_FOR_STATE 3 in Prometheus, 2 in VictoriaMetrics; scraped series
alike, statescope_transitions_total 179 and 178; each was answered 2 to 7 s
after it was written, on a tick 10 s apart from VictoriaMetrics' start. A
breaker created just after a tick, that filter asked every second, was
missing whenever step 1 asked 8 s after T, in 5 runs of 5, and in none of
3 with the wait below). Once settled, the stores agree at every T: on one
stack, at 5645 instants 0.25 s apart over 23 minutes, and at 300 instants
within 1 ms of a rule series' first sample, of its staleness marker, or of
300 s after either. Prometheus 2.42 writes staleness markers for ALERTS
and ALERTS_FOR_STATE alike, so the edges of the two lookback windows,
[T - 5m, T] in Prometheus and (T - 5m, T] in VictoriaMetrics, decide
nothing for them.

Python standard library only; reuses dashboards.py for the queries.
"""

import collections
import json
import math
import pathlib
import re
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import dashboards  # noqa: E402  (the sibling check: query extraction and the HTTP helper)

PANEL = dashboards.PLUGIN_ID
# How close two answers must be. Both stores get the same float64 samples,
# but VictoriaMetrics keeps each as a decimal (an int64 mantissa and a power of
# ten) and may give back a value a few ulps off: a Unix timestamp of 1.8e9
# seconds comes back up to ~1 µs off (4e-16 relative). So values must agree to
# 1e-9 of their size, and an expression with time() (which subtracts such a
# timestamp from T) to 1e-14 of T, 18 µs today: 20 times the rounding seen, and
# a millionth of the smallest error a user could notice (a millisecond).
REL_TOL = 1e-9
TIME_TOL = 1e-14
ROLLUP = re.compile(r"\b(rate|increase)\(\s*([A-Za-z_:][A-Za-z0-9_:]*(?:\{[^{}]*\})?)\s*\[(\d+)([smh])\]\s*\)")
ANY_ROLLUP = re.compile(r"\b(rate|irate|increase|delta|idelta|changes|resets|deriv|[a-z]+_over_time)\s*\(")
UNIT = {"s": 1, "m": 60, "h": 3600}
# VictoriaMetrics reads samples this far before a window to find the one before it.
MAX_SILENCE = 300
# How long after VictoriaMetrics holds T's samples it answers every series
# that began by T (see the docstring): its index entries become searchable
# within a second, as samples do, and the cache of each label filter's series
# is renewed on the next 10 s tick after that; one second more for margin.
VM_INDEX_SETTLE = 1 + 10 + 1


def fail(msg):
    print(f"remote_write: {msg}", file=sys.stderr)
    sys.exit(1)


def close(a, b, scale=0.0):
    """a and b equal within REL_TOL, or TIME_TOL of scale (T, for expressions with time())."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), TIME_TOL * scale)


def without_nan(answer):
    """MetricsQL leaves NaN results out of its answers, PromQL returns them
    (0/0, histogram_quantile of no observations): compare the rest."""
    kept = {k: v for k, v in answer.items() if not math.isnan(v)}
    return kept, len(answer) - len(kept)


def key(metric):
    return tuple(sorted(metric.items()))


def show(k):
    return "{" + ", ".join(f'{n}="{v}"' for n, v in k) + "}"


def instant(base, expr, t):
    """{labels: value} of an instant query at t (a scalar is one unlabelled value)."""
    data = dashboards.prom_get(base, "/api/v1/query", {"query": expr, "time": f"{t:.3f}"})
    if data["resultType"] == "scalar":
        return {(): float(data["result"][1])}
    if data["resultType"] != "vector":
        raise RuntimeError(f"{expr}: expected a vector, got {data['resultType']}")
    return {key(s["metric"]): float(s["value"][1]) for s in data["result"]}


def raw(base, selector, seconds, t):
    """{labels: [(t_ms, value), ...]}: the raw samples of selector in [t - seconds, t]."""
    data = dashboards.prom_get(base, "/api/v1/query", {"query": f"{selector}[{seconds}s]", "time": f"{t:.3f}"})
    return {key(s["metric"]): [(round(float(ts) * 1000), float(v)) for ts, v in s["values"]] for s in data["result"]}


def drop_name(k):
    return tuple((n, v) for n, v in k if n != "__name__")


# --- the two definitions of rate() and increase() ---------------------------------


def promql(points, t_ms, window_s, is_rate):
    """Prometheus 2.42's extrapolatedRate for a counter: samples in [t - w, t],
    at least two, the increase between the first and the last extrapolated to
    the window's edges (by at most half an interval, never below zero)."""
    start = t_ms - window_s * 1000
    pts = [(ts, v) for ts, v in points if start <= ts <= t_ms]
    if len(pts) < 2:
        return None
    result = pts[-1][1] - pts[0][1]
    last = 0.0
    for _, v in pts:
        if v < last:
            result += last
        last = v
    to_start = (pts[0][0] - start) / 1000
    to_end = (t_ms - pts[-1][0]) / 1000
    sampled = (pts[-1][0] - pts[0][0]) / 1000
    average = sampled / (len(pts) - 1)
    if result > 0 and pts[0][1] >= 0:
        to_start = min(to_start, sampled * (pts[0][1] / result))
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result *= interval / sampled
    return result / window_s if is_rate else result


def vm_max_prev_interval(timestamps):
    """VictoriaMetrics' getScrapeInterval + getMaxPrevInterval: how old the
    sample before a window may be and still count as "the previous value"."""
    if len(timestamps) < 2:
        si = MAX_SILENCE * 1000
    else:
        gaps = [b - a for a, b in zip(timestamps, timestamps[1:21])]
        si = int(vm_quantile(0.6, gaps)) or MAX_SILENCE * 1000
    for limit, num, den in ((2000, 4, 1), (4000, 2, 1), (8000, 1, 1), (16000, 1, 2), (32000, 1, 4)):
        if si <= limit:
            return si + si * num // den
    return si + si // 8


def vm_quantile(phi, values):
    """VictoriaMetrics' quantile(): linear between the two nearest ranks."""
    a = sorted(values)
    if len(a) == 1:
        return a[0]
    pos = phi * (len(a) - 1)
    i = int(pos)
    if i + 1 >= len(a):
        return a[-1]
    return a[i] + (a[i + 1] - a[i]) * (pos - i)


def metricsql(points, t_ms, window_s, is_rate):
    """VictoriaMetrics 1.79's increase (rollupDelta) and rate (rollupDerivFast):
    samples in (t - w, t]; the previous value is the last sample at or before
    t - w if it is recent enough; no extrapolation. Without a previous value,
    increase() counts from 0 when the first sample is small next to the next
    step (a counter that just appeared), and rate() needs two samples."""
    start = t_ms - window_s * 1000
    fetched = [(ts, v) for ts, v in points if start - MAX_SILENCE * 1000 <= ts <= t_ms]
    before = [(ts, v) for ts, v in fetched if ts <= start]
    inside = [(ts, v) for ts, v in fetched if ts > start]
    max_prev = vm_max_prev_interval([ts for ts, _ in fetched])
    prev = before[-1] if before and before[-1][0] > start - max_prev and inside else None
    real_prev = before[-1] if before else None
    after = [(ts, v) for ts, v in points if ts > t_ms]
    values = [v for _, v in inside]
    if is_rate:
        if prev is None:
            if len(inside) < 2:
                return None
            prev, inside = inside[0], inside[1:]
        elif not inside:
            return 0.0
        return (inside[-1][1] - prev[1]) / ((inside[-1][0] - prev[0]) / 1000)
    if prev is None:
        if not values:
            return None
        if real_prev is not None:
            return values[-1] - real_prev[1]
        d = values[1] - values[0] if len(values) > 1 else (after[0][1] - values[0] if after else 0.0)
        if d == 0:
            d = 10
        if abs(values[0]) < 10 * (abs(d) + 1):
            base = 0.0
        else:
            base, values = values[0], values[1:]
    else:
        base = prev[1]
    return values[-1] - base if values else 0.0


def check_rollup_term(prom, vm, fn, selector, window_s, t):
    """Each store answers its own definition of fn(selector[window]) at t."""
    is_rate = fn == "rate"
    term = f"{fn}({selector}[{window_s}s])"
    # Samples after t too: MetricsQL's increase() looks at the next one for a new series.
    samples = raw(prom, selector, window_s + MAX_SILENCE + 10, t + 10)
    got_p, got_v = instant(prom, term, t), instant(vm, term, t)
    want_p, want_v = {}, {}
    for k, pts in samples.items():
        p, v = promql(pts, round(t * 1000), window_s, is_rate), metricsql(pts, round(t * 1000), window_s, is_rate)
        if p is not None:
            want_p[drop_name(k)] = p
        if v is not None:
            want_v[drop_name(k)] = v
    problems = []
    for store, got, want in (("Prometheus", got_p, want_p), ("VictoriaMetrics", got_v, want_v)):
        if set(got) != set(want):
            extra, missing = set(got) - set(want), set(want) - set(got)
            problems.append(f"{term}: {store} answers {len(got)} series, its definition gives {len(want)} "
                            f"(extra {[show(k) for k in sorted(extra)][:3]}, missing {[show(k) for k in sorted(missing)][:3]})")
            continue
        for k in got:
            if not close(got[k], want[k]):
                problems.append(f"{term}{show(k)}: {store} answers {got[k]!r}, its definition gives {want[k]!r}")
    both = set(got_p) & set(got_v)
    differ = [k for k in both if not close(got_p[k], got_v[k])]
    # Why they differ: a series that appeared inside the window (MetricsQL
    # counts it from 0, PromQL from its first sample), or the window's edges
    # (PromQL extrapolates to them, MetricsQL starts at the sample before).
    start_ms = round((t - window_s) * 1000)
    born = {drop_name(k) for k, pts in samples.items() if pts and pts[0][0] > start_ms}
    spread = lambda ks: max((abs(got_p[k] - got_v[k]) / max(abs(got_p[k]), abs(got_v[k])) for k in ks), default=0.0)
    new, edges = [k for k in differ if k in born], [k for k in differ if k not in born]
    return problems, {"series": len(both), "new": (len(new), spread(new)), "edges": (len(edges), spread(edges)),
                      "vm_only": len(got_v) - len(both)}


# --- comparing whole answers -----------------------------------------------------------


def compare_instant(prom, vm, where, expr, t, differing_terms):
    """Problems with expr at t; how many series it had (NaN ones apart, and
    those); its value spread if it holds a rollup, and whether its series
    differ. Series in one store only are the documented difference when a
    rate()/increase() term of expr gave different answers in the two stores
    at t (differing_terms), each store following its own definition: a
    comparison or `unless` after it then keeps different series (a breaker's
    first trip is increase 1 in MetricsQL, 0 in PromQL)."""
    p, nan_p = without_nan(instant(prom, expr, t))
    v, nan_v = without_nan(instant(vm, expr, t))
    if nan_v:
        return [f"{where}: {expr!r}: VictoriaMetrics answered NaN, which MetricsQL should leave out"], (len(p), nan_p), None
    only_p, only_v = sorted(set(p) - set(v)), sorted(set(v) - set(p))
    explained = any(term in expr for term in differing_terms)
    if (only_p or only_v) and not explained:
        return [f"{where}: {expr!r}: series differ: only Prometheus {[show(k) for k in only_p][:3]}"
                f" ({len(only_p)}), only VictoriaMetrics {[show(k) for k in only_v][:3]} ({len(only_v)})"], (len(p), nan_p), None
    if ANY_ROLLUP.search(expr):
        diffs = [abs(p[k] - v[k]) / max(abs(p[k]), abs(v[k])) for k in p if k in v and not close(p[k], v[k])]
        return [], (len(p), nan_p), (max(diffs, default=0.0), bool(only_p or only_v))
    scale = t if "time()" in expr else 0.0
    bad = [k for k in p if not close(p[k], v[k], scale)]
    return ([f"{where}: {expr!r}{show(k)}: Prometheus {p[k]!r}, VictoriaMetrics {v[k]!r}" for k in bad[:3]],
            (len(p), nan_p), None)


def compare_range(prom, vm, where, expr, t):
    # As the panel asks on its default range: the last hour in 15 s steps,
    # aligned to the step as Grafana aligns them.
    end = math.floor(t / 15) * 15
    params = {"query": expr, "start": str(end - 3600), "end": str(end), "step": "15"}
    out = []
    for base in (prom, vm):
        data = dashboards.prom_get(base, "/api/v1/query_range", params)
        series = {key(s["metric"]): {round(float(ts), 3): float(x) for ts, x in s["values"] if x != "NaN"}
                  for s in data["result"]}
        out.append({k: points for k, points in series.items() if points})
    p, v = out
    if set(p) != set(v):
        return [f"{where}: range {expr!r}: {len(p)} series from Prometheus, {len(v)} from VictoriaMetrics"], 0
    problems = []
    for k in p:
        if set(p[k]) != set(v[k]):
            problems.append(f"{where}: range {expr!r}{show(k)}: steps {sorted(set(p[k]) ^ set(v[k]))[:4]} in one store only")
        elif any(not close(p[k][s], v[k][s]) for s in p[k]):
            problems.append(f"{where}: range {expr!r}{show(k)}: values differ")
    return problems, sum(len(x) for x in p.values())


def label_values(base, label, selector, t):
    params = {"match[]": selector, "start": f"{t - 3600:.3f}", "end": f"{t:.3f}"}
    return set(dashboards.prom_get(base, f"/api/v1/label/{label}/values", params))


def latest_sample_ms(base, selector, t):
    series = raw(base, selector, 30, t)
    return max((pts[-1][0] for pts in series.values() if pts), default=0)


def selector(k):
    """The PromQL selector of exactly the series k (label values quoted as
    PromQL string literals, which take JSON's escapes)."""
    return "{" + ", ".join(f"{n}={json.dumps(v, ensure_ascii=False)}" for n, v in k) + "}"


def samples_near(base, k, t):
    """Where the samples of series k lie around t, relative to t: how many in
    [t - 330 s, t], the first and the last of them, the next (up to t + 30 s);
    and whether the last at or before t is a live one within 5 minutes (an
    instant query at t should answer the series). VictoriaMetrics returns
    Prometheus' staleness markers as NaN samples; Prometheus leaves them out
    of range selectors."""
    t_ms = round(t * 1000)
    pts = raw(base, selector(k), 360, t + 30).get(k, [])
    rel = lambda p: f"T{(p[0] - t_ms) / 1000:+.3f}s" + (" (staleness marker)" if math.isnan(p[1]) else "")
    before, after = [p for p in pts if p[0] <= t_ms], [p for p in pts if p[0] > t_ms]
    live = bool(before) and not math.isnan(before[-1][1]) and before[-1][0] > t_ms - 300_000
    return (f"{len(before)} in [T-330s, T]" + (f" ({rel(before[0])} .. {rel(before[-1])})" if before else "")
            + (f", next {rel(after[0])}" if after else ", none in (T, T+30s]")), live


def compare_series(prom, vm, t):
    """Step 1: every series of job="statescope" at t, in both stores: the same
    label sets and values. Where they differ: each store's count per metric
    name, and each series one store answers and the other does not, with
    where its samples lie in each store; each value that differs."""
    every = '{job="statescope"}'
    p, v = instant(prom, every, t), instant(vm, every, t)
    only = sorted(set(p) ^ set(v))
    bad = sorted(k for k in set(p) & set(v) if not close(p[k], v[k]))
    if not only and not bad:
        return [], p
    p_names, v_names = (collections.Counter(dict(k)["__name__"] for k in answer) for answer in (p, v))
    per_name = [f"{n}: Prometheus {p_names[n]}, VictoriaMetrics {v_names[n]}"
                for n in sorted(set(p_names) | set(v_names)) if p_names[n] != v_names[n]]
    lines = [f"the series of {every} differ between the stores at T={t:.3f}: {len(set(p) - set(v))} in Prometheus "
             f"only, {len(set(v) - set(p))} in VictoriaMetrics only, {len(bad)} with different values"
             + (f"; series per metric name: {'; '.join(per_name)}" if per_name else "")]
    for k in only[:10]:
        (p_at, _), (v_at, v_live) = samples_near(prom, k, t), samples_near(vm, k, t)
        # Asked for this one series alone, VictoriaMetrics shows its staleness
        # markers too: if it holds a live sample of the series at T yet left
        # it out above, the series was stored and its index answered late.
        late = v_live and k not in v
        lines.append(f"  {show(k)}: answered at T by {'Prometheus' if k in p else 'VictoriaMetrics'} only; "
                     f"samples in Prometheus {p_at}, in VictoriaMetrics {v_at}"
                     + (f"; VictoriaMetrics holds it live at T yet left it out of {every}: stored, indexed late"
                        if late else ""))
    if len(only) > 10:
        lines.append(f"  ... and {len(only) - 10} more series in one store only")
    for k in bad[:5]:
        lines.append(f"  {show(k)}: Prometheus {p[k]!r}, VictoriaMetrics {v[k]!r}")
    return ["\n".join(lines)], p


def main(dash_dir, rules_dir, prom, vm, timeout):
    deadline = time.monotonic() + timeout
    dashes = dashboards.load(dash_dir)
    todo = dashboards.live_queries(dashes)
    exprs = [(w, q[1]) for w, q in todo.items() if q[0] == "query"]
    exprs += list(dashboards.alert_exprs(sorted(pathlib.Path(rules_dir).glob("*.yml"))))
    labels = [(w, q[1], q[2]) for w, q in todo.items() if q[0] == "label"]
    panel_where = {f"{name} / {p.get('title')!r}" for name, d in dashes for p in dashboards.panels(d)
                   if p.get("type") == PANEL}
    panel = [(w, e) for w, e in exprs if w.rsplit(" / ", 1)[0] in panel_where]
    if not exprs or not panel:
        fail(f"found {len(exprs)} queries and alert expressions, {len(panel)} Statescope panel queries")

    # T: whole samples on both sides of it in both stores. remote_write ships
    # each shard's batch within a second here (batch_send_deadline), so once
    # VictoriaMetrics holds a sample 3 s past T and 2 s more have passed,
    # every shard has delivered what it held at T; VM_INDEX_SETTLE s later,
    # VictoriaMetrics answers every series it was sent, also those that began
    # just before T (this loop's own queries cache {job="statescope"}).
    while True:
        t = math.floor(time.time()) - 6 + 0.5
        reached = [latest_sample_ms(b, '{job="statescope"}', t + 5) for b in (prom, vm)]
        # And the panel's range (15 s steps ending at or before T) holds two
        # steps of data: on a young stack the last whole step may precede it.
        first = min((pts[0][0] for pts in raw(prom, 'up{job="statescope"}', 600, t).values()), default=math.inf)
        if min(reached) >= (t + 3) * 1000 and first <= (math.floor(t / 15) * 15 - 15) * 1000:
            break
        if time.monotonic() > deadline:
            fail(f"VictoriaMetrics holds no sample past T={t} (latest: Prometheus {reached[0]}, VictoriaMetrics "
                 f"{reached[1]} ms; first scrape {first} ms): does Prometheus remote-write to it?")
        time.sleep(1)
    time.sleep(2 + VM_INDEX_SETTLE)

    problems = []
    # 1. The series themselves.
    found, p_series = compare_series(prom, vm, t)
    problems += found
    n_series = len(p_series)

    # 2. Each rate()/increase() term against the two definitions, then every
    # query and alert expression at T.
    terms = sorted({(m.group(1), m.group(2), m.group(3) + m.group(4), int(m.group(3)) * UNIT[m.group(4)])
                    for _, e in exprs for m in ROLLUP.finditer(e)})
    stats, differing_terms = [], set()
    for fn, selector, window, seconds in terms:
        found, s = check_rollup_term(prom, vm, fn, selector, seconds, t)
        problems += found
        stats.append((f"{fn}({selector.split('{')[0]}[{window}])", s))
        if s["vm_only"] or s["new"][0] or s["edges"][0]:
            differing_terms.add(f"{fn}({selector}[{window}])")
    with_data, nan_series, spreads = 0, 0, []
    for where, expr in exprs:
        found, (n, nan), spread = compare_instant(prom, vm, where, expr, t, differing_terms)
        problems += found
        with_data += n > 0
        nan_series += nan
        if spread is not None:
            spreads.append((spread, where))

    # 3. The panel's range queries; 4. variable queries.
    points = 0
    for where, expr in panel:
        found, n = compare_range(prom, vm, where, expr, t)
        problems += found
        points += n
    for where, selector, label in labels:
        p, v = label_values(prom, label, selector, t), label_values(vm, label, selector, t)
        if p != v or not p:
            problems.append(f"{where}: label_values({selector}, {label}): Prometheus {sorted(p)}, VictoriaMetrics {sorted(v)}")

    for p in problems:
        print(f"remote_write: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    if with_data < len(exprs) // 2 or points == 0:
        fail(f"only {with_data} of {len(exprs)} expressions had data at T, {points} panel points: too little to compare")
    print(f"remote_write: {n_series} series of job=statescope in both stores at T, the same label sets and values")
    print(f"remote_write: {len(exprs)} dashboard queries and alert expressions at T ({with_data} with data): same "
          f"series in both (but those listed below); equal values where no rate()/increase() is involved; {nan_series} NaN series "
          f"Prometheus answered and MetricsQL leaves out")
    print(f"remote_write: {len(stats)} rate()/increase() terms: each store answers its own definition exactly")
    for term, s in stats:
        (new, new_spread), (edges, edges_spread) = s["new"], s["edges"]
        print(f"remote_write:   {term}: {s['series']} series; {new} new in the window differ by up to "
              f"{new_spread:.0%}, {edges} by the window's edges by up to {edges_spread:.0%}"
              + (f"; {s['vm_only']} on its first sample, answered by VictoriaMetrics only" if s["vm_only"] else ""))
    if spreads:
        worst = max(spreads)
        print(f"remote_write:   whole expressions with rate()/increase(): values up to {worst[0][0]:.1%} apart "
              f"({worst[1]})")
        for (_, series_differ), where in spreads:
            if series_differ:
                print(f"remote_write:   {where}: different series, from its rate()/increase() terms above")
    print(f"remote_write: {len(panel)} Statescope panel queries over 1 h in 15 s steps: same {points} points; "
          f"{len(labels)} variable queries: same values")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        fail(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/"), sys.argv[4].rstrip("/"), float(sys.argv[5]))
