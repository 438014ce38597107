#!/usr/bin/env python3
"""Writes the Statescope Grafana dashboards (provisioning/grafana/dashboards/*.json).

The dashboards are generated so that their ~40 panels share one layout and one
query style instead of being copied by hand. Edit this file, then run
    python3 provisioning/grafana/generate.py
provisioning/test.sh fails when the JSON files differ from what this writes.

Every query uses only series the exporter emits (model/src/contract.rs); the
test checks each name against a running `statescope-exporter --demo` and runs
each query on a real Prometheus. The Statescope panels' options come from, and
are checked against, the panel's own description of its options
(panel-plugin/src/panel/options.schema.json, written from options.rs): an
option it does not know or a value it does not take fails the run.
"""

import json
import pathlib
import re
import sys

PLUGIN = "statescope-statemachine-panel"
DS = {"type": "prometheus", "uid": "${datasource}"}
# Every dashboard links to the others by this tag.
TAG = "statescope"
RATE = "$__rate_interval"
REPO = pathlib.Path(__file__).resolve().parents[2]
# The panel's options by path, as options.rs defines them.
PANEL_OPTIONS = {o["path"]: o for o in json.loads(
    (REPO / "panel-plugin" / "src" / "panel" / "options.schema.json").read_text())["options"]}
# What every Statescope panel here saves, in this order.
SAVED_OPTIONS = ("view", "shape", "stateLabel", "identityLabels", "kind", "sort", "flappingThreshold",
                 "flappingWindowMinutes")


# --- the Statescope panel's options ------------------------------------------------


def panel_options(**chosen):
    """The saved options: the panel's defaults, except those chosen."""
    return {path: chosen.get(path, PANEL_OPTIONS[path]["default"]) for path in SAVED_OPTIONS}


def option_problems(options):
    """Why saved options are not what the panel takes (empty when they are)."""
    problems = []
    for key, value in options.items():
        spec = PANEL_OPTIONS.get(key)
        if spec is None:
            problems.append(f"unknown option {key!r} (the panel's are {', '.join(PANEL_OPTIONS)})")
            continue
        kind = spec["type"]
        if kind in ("radio", "select"):
            ok = isinstance(value, str) and (
                value in [c["value"] for c in spec["choices"]]
                or bool(spec.get("allowCustomValue") and re.fullmatch(spec["pattern"], value)))
        elif kind == "text":
            ok = isinstance(value, str)
        elif kind == "stringArray":
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        elif kind == "number":
            ok = isinstance(value, int) and not isinstance(value, bool) and spec["min"] <= value <= spec["max"]
        elif kind == "colorMap":
            ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        else:
            problems.append(f"option {key!r} has type {kind!r}, which generate.py does not know")
            continue
        if not ok:
            problems.append(f"option {key!r} is {json.dumps(value)}, which the panel does not take "
                            f"({json.dumps({k: v for k, v in spec.items() if k not in ('name', 'description')})})")
    return problems


def _self_test():
    """The check is what makes generated panels trustworthy: prove it on known cases."""
    cases = [
        (panel_options(), 0),
        ({"view": "diagram", "kind": "payment_job", "maxTiles": 0, "stateColors": {"open": "red"}}, 0),
        ({"sortBy": "name"}, 1),
        ({"view": "tiles", "kind": "Payment Job", "flappingThreshold": 0, "identityLabels": "machine"}, 4),
    ]
    for options, want in cases:
        got = option_problems(options)
        if len(got) != want:
            sys.exit(f"generate.py: internal: option_problems({options}) = {got}, expected {want} problem(s)")


# --- building blocks ---------------------------------------------------------------


def sel(metric, *matchers):
    """`metric{m1, m2}`: a selector from label matchers (empty ones skipped)."""
    return f"{metric}{{{', '.join(m for m in matchers if m)}}}"


def target(ref, expr, legend="", instant=False):
    t = {"refId": ref, "datasource": DS, "editorMode": "code", "expr": expr, "range": not instant}
    if instant:
        t["instant"] = True
        t["format"] = "table"
    if legend:
        t["legendFormat"] = legend
    return t


def panel(kind, title, targets, w, h, description="", unit=None, options=None, field=None, overrides=None):
    defaults = dict(field or {})
    if unit:
        defaults["unit"] = unit
    p = {
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if description:
        p["description"] = description
    return p


def timeseries(title, targets, unit, w=12, h=8, description="", stack=False, overrides=None):
    custom = {"lineWidth": 1, "fillOpacity": 20 if stack else 10, "showPoints": "never", "spanNulls": False}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    return panel(
        "timeseries",
        title,
        targets,
        w,
        h,
        description,
        unit,
        options={"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
                 "tooltip": {"mode": "multi", "sort": "desc"}},
        field={"custom": custom, "min": 0},
        overrides=overrides,
    )


def stat(title, targets, unit="none", w=4, h=4, description="", thresholds=None, mappings=None):
    steps = [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in (thresholds or [])]
    field = {"thresholds": {"mode": "absolute", "steps": steps}}
    if mappings:
        field["mappings"] = mappings
    return panel(
        "stat",
        title,
        targets,
        w,
        h,
        description,
        unit,
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                 "colorMode": "background", "graphMode": "area", "textMode": "value_and_name"},
        field=field,
    )


def bargauge(title, targets, unit, w=12, h=8, description="", thresholds=None):
    steps = [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in (thresholds or [])]
    return panel(
        "bargauge",
        title,
        targets,
        w,
        h,
        description,
        unit,
        options={"displayMode": "basic", "orientation": "horizontal", "showUnfilled": True,
                 "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        field={"thresholds": {"mode": "absolute", "steps": steps}, "min": 0},
    )


def state_machine(title, kind, selector, w=24, h=14, description=""):
    """The Statescope panel: the one-hot state series (A), the transition
    counters for edge weights and flap counts (B), the kind's allowed
    transitions so the diagram is drawn from the data (C), and when each
    counter was created (D, served in OpenMetrics) and each state entered (E),
    so that counts of machines created inside the range start from zero and
    "in state since" is exact."""
    return panel(
        PLUGIN,
        title,
        [
            target("A", f"statescope_state{{{selector}}}", "{{machine}} {{state}}"),
            target("B", f"statescope_transitions_total{{{selector}}}", "{{machine}} {{from}}->{{to}}"),
            target("C", f'statescope_transition_allowed{{kind="{kind}"}}', "{{from}}->{{to}}"),
            target("D", f"statescope_transitions_created{{{selector}}}", "{{machine}} {{from}}->{{to}} created"),
            target("E", f"statescope_state_since_timestamp_seconds{{{selector}}}", "{{machine}} since"),
        ],
        w,
        h,
        description,
        options=panel_options(identityLabels=["kind", "machine"], kind=kind),
    )


def quantiles(metric, selector, by, legend, qs=(0.5, 0.95, 0.99)):
    """p50/p95/p99 from a histogram's buckets, one refId each."""
    return [
        target(
            chr(ord("A") + i),
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"p{int(q * 100)} {legend}",
        )
        for i, q in enumerate(qs)
    ]


def increase_from_creation(counter, window, seconds):
    """increase() over `window` that also counts what a series holds when it
    was created inside the window: increase() never counts a series' first
    sample, and a machine created by a transition shows that transition as a
    series starting at 1. The exporter's OpenMetrics `_created` series (its
    machine's creation time) tell such series from those that were there
    before the window (the same expression as the recording rule
    statescope:transitions:increase15m)."""
    created = counter.replace("_total{", "_created{", 1)
    return (f"((increase({counter}[{window}]) unless {created} > time() - {seconds}) "
            f"or ({counter} and {created} > time() - {seconds}))")


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"w": 24, "h": 1}, "panels": []}


def ds_variable():
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {"text": "Prometheus", "value": "statescope-prometheus"},
        "hide": 0,
        "refresh": 1,
        "regex": "",
    }


def query_variable(name, label, query):
    """A multi-value label variable; "All" is `.*` so `label=~"$var"` matches every value."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
    }


def layout(panels):
    """Places panels left to right, wrapping at 24 columns; a row starts a new line."""
    x = y = line_h = 0
    for i, p in enumerate(panels, start=1):
        p["id"] = i
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > 24:
            x, y, line_h = 0, y + line_h, 0
        p["gridPos"].update(x=x, y=y)
        x += w
        line_h = max(line_h, h)
        if p["type"] == "row":
            x, y, line_h = 0, y + h, 0
    return panels


def dashboard(uid, title, description, variables, panels):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 41,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "links": [{"type": "dashboards", "tags": [TAG], "asDropdown": False, "title": "Statescope",
                   "includeVars": False, "keepTime": True}],
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": [ds_variable(), *variables]},
        "panels": layout(panels),
    }


# --- the dashboards ----------------------------------------------------------------


def breakers():
    cb = 'kind="circuit_breaker", provider=~"$provider", key_id=~"$key_id", machine=~"$machine"'
    calls = sel("statescope_breaker_calls_total", cb)
    rejected = sel("statescope_breaker_calls_total", cb, 'outcome="rejected"')
    failed = sel("statescope_breaker_calls_total", cb, 'outcome=~"failure|timeout"')
    sent = sel("statescope_breaker_calls_total", cb, 'outcome!="rejected"')
    trips = sel("statescope_transitions_total", cb, 'to="open"')
    state_map = [{"type": "value", "options": {
        "0": {"text": "closed", "color": "green", "index": 0},
        "1": {"text": "open", "color": "red", "index": 1},
        "2": {"text": "half_open", "color": "orange", "index": 2},
        "3": {"text": "forced_open", "color": "purple", "index": 3},
        "4": {"text": "disabled", "color": "text", "index": 4}}}]
    panels = [
        state_machine(
            "Circuit breakers",
            "circuit_breaker",
            cb,
            description="Every breaker (provider x API key) as a state machine: the diagram counts breakers per "
            "state and weights each edge by the transitions taken in the time range; the tiles show each "
            "breaker's state, time in state, transitions and history, worst first.",
        ),
        row("Now"),
        stat("Open", [target("A", f'sum(statescope_state{{{cb}, state=~"open|forced_open"}})')],
             thresholds=[(1, "red")], description="Breakers open or forced open now."),
        stat("Half-open", [target("A", f'sum(statescope_state{{{cb}, state="half_open"}})')],
             thresholds=[(1, "orange")], description="Breakers probing whether the provider recovered."),
        stat("Closed", [target("A", f'sum(statescope_state{{{cb}, state="closed"}})')], description="Breakers "
             "letting calls through."),
        stat("Trips in range", [target("A", f"sum({increase_from_creation(trips, '$__range', '$__range_s')})")],
             thresholds=[(1, "orange")],
             description="Transitions into open over the dashboard's time range, counted at the source: flaps "
             "shorter than a scrape are included, and so is the trip that created a breaker inside the range."),
        stat("Calls rejected", [target("A", f"sum(rate({rejected}[{RATE}])) "
                                       f"/ sum(rate({calls}[{RATE}]))")],
             unit="percentunit", thresholds=[(0.01, "orange"), (0.1, "red")],
             description="Share of calls the breakers refused (short-circuited) instead of sending."),
        stat("Failure rate", [target("A", f"sum(rate({failed}[{RATE}])) "
                                     f"/ sum(rate({sent}[{RATE}]))")],
             unit="percentunit", thresholds=[(0.05, "orange"), (0.25, "red")],
             description="Failed or timed-out calls among the calls actually sent."),
        row("Calls"),
        timeseries("Call outcomes", [target("A", f"sum by (outcome) (rate({calls}[{RATE}]))", "{{outcome}}")],
                   "reqps", stack=True, description="Calls per second through the selected breakers, by outcome.",
                   overrides=[_color("success", "green"), _color("failure", "red"),
                              _color("timeout", "orange"), _color("rejected", "purple")]),
        timeseries("Failure rate by provider",
                   [target("A", f"sum by (provider) (rate({failed}[{RATE}])) "
                                f"/ sum by (provider) (rate({sent}[{RATE}]))",
                           "{{provider}}")],
                   "percentunit", description="Failed or timed-out share of the calls sent, per provider."),
        timeseries("Failure count by breaker",
                   [target("A", f"statescope_breaker_failures{{{cb}}}", "{{machine}}")], "none",
                   description="Failures in each breaker's current window, as its library reports them: what "
                   "pushes a breaker towards its threshold."),
        timeseries("Trips by provider",
                   [target("A", f"sum by (provider) {increase_from_creation(trips, '5m', 300)}", "{{provider}}")],
                   "none", description="Transitions into open in the last 5 minutes, per provider."),
        row("Breakers"),
        bargauge("Time in current state",
                 [target("A", f"time() - statescope_state_since_timestamp_seconds{{{cb}}}", "{{machine}}", instant=True)],
                 "s", description="How long each breaker has been in the state it is in now."),
        panel("state-timeline", "State timeline (circuit_breaker_state)",
              [target("A", 'circuit_breaker_state{provider=~"$provider", key_id=~"$key_id", machine=~"$machine"}',
                      "{{provider}}/{{key_id}}")], 12, 8,
              "The compatibility series (0 closed, 1 open, 2 half_open) in Grafana's state timeline, as "
              "existing dashboards show it; the panel above also shows transitions between scrapes.",
              options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                       "legend": {"displayMode": "list", "placement": "bottom"}},
              field={"mappings": state_map, "thresholds": {"mode": "absolute", "steps": [{"color": "green",
                                                                                        "value": None}]}}),
    ]
    return dashboard(
        "statescope-breakers",
        "Circuit breakers",
        "Statescope: circuit breakers per provider and API key, their states, trips and call outcomes.",
        [
            query_variable("provider", "Provider", 'label_values(statescope_state{kind="circuit_breaker"}, provider)'),
            query_variable("key_id", "API key",
                           'label_values(statescope_state{kind="circuit_breaker", provider=~"$provider"}, key_id)'),
            # Alert links (dashboard annotation) open the dashboard filtered to their breaker.
            query_variable("machine", "Breaker",
                           'label_values(statescope_state{kind="circuit_breaker", provider=~"$provider", '
                           'key_id=~"$key_id"}, machine)'),
        ],
        panels,
    )


def _color(value, color):
    """A fixed colour for the series whose legend is `value`."""
    return {"matcher": {"id": "byName", "options": value},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]}


def workers():
    w = 'kind="worker", worker_type=~"$worker_type", machine=~"$machine"'
    jobs = sel("statescope_worker_jobs_total", w)
    failed = sel("statescope_worker_jobs_total", w, 'result="failed"')
    state_colors = [_color(s, c) for s, c in
                    (("starting", "blue"), ("idle", "green"), ("busy", "dark-green"), ("draining", "orange"),
                     ("offline", "red"))]
    panels = [
        state_machine(
            "Workers",
            "worker",
            w,
            description="Every worker as a state machine: how many are starting, idle, busy, draining or "
            "offline, which transitions they take, and which worker is stuck where.",
        ),
        row("Now"),
        *[
            stat(title, [target("A", f'sum(statescope_state{{{w}, state="{state}"}})')], thresholds=th,
                 description=desc)
            for title, state, th, desc in (
                ("Idle", "idle", None, "Workers ready for a job."),
                ("Busy", "busy", None, "Workers running a job."),
                ("Starting", "starting", [(1, "blue")], "Workers starting up."),
                ("Draining", "draining", [(1, "orange")], "Workers finishing their job before going offline."),
                ("Offline", "offline", [(1, "red")], "Workers offline, by themselves or because their "
                 "heartbeats stopped."),
            )
        ],
        stat("Busy share", [target("A", f'sum(statescope_state{{{w}, state="busy"}}) '
                                        f'/ sum(statescope_state{{{w}, state=~"idle|busy"}})')],
             unit="percentunit", w=4, thresholds=[(0.8, "orange"), (0.95, "red")],
             description="Busy workers among those available: near 100% means jobs start to queue."),
        row("Pool"),
        timeseries("Workers by type and state",
                   [target("A", f"sum by (worker_type, state) (statescope_state{{{w}}})",
                           "{{worker_type}} {{state}}")], "none", stack=True,
                   description="Worker counts per type and state over time."),
        timeseries("Workers by state", [target("A", f"sum by (state) (statescope_state{{{w}}})", "{{state}}")],
                   "none", stack=True, overrides=state_colors, description="All selected workers by state."),
        timeseries("Jobs finished",
                   [target("A", f"sum by (worker_type, result) (rate({jobs}[{RATE}]))",
                           "{{worker_type}} {{result}}")], "ops",
                   description="Jobs finished per second, by worker type and result."),
        timeseries("Job failure ratio",
                   [target("A", f"sum by (worker_type) (rate({failed}[{RATE}])) "
                                f"/ sum by (worker_type) (rate({jobs}[{RATE}]))", "{{worker_type}}")],
                   "percentunit", description="Failed jobs among the jobs finished, by worker type."),
        row("Durations"),
        timeseries("Job duration p50 / p95 / p99",
                   quantiles("statescope_worker_job_duration_seconds", w, "worker_type", "{{worker_type}}"), "s",
                   description="How long jobs ran, from the exporter's histogram per worker type."),
        timeseries("Queue wait p50 / p95 / p99",
                   quantiles("statescope_worker_queue_wait_seconds", w, "worker_type", "{{worker_type}}"), "s",
                   description="How long jobs waited in the queue before a worker started them."),
        row("Workers"),
        bargauge("Seconds since last heartbeat",
                 [target("A", f"time() - statescope_last_heartbeat_timestamp_seconds{{{w}}}", "{{machine}}", instant=True)],
                 "s", thresholds=[(30, "orange"), (60, "red")],
                 description="Age of each worker's last heartbeat; the exporter marks a worker offline when it "
                 "exceeds the heartbeat TTL."),
        timeseries("Worker transitions",
                   [target("A", "sum by (from, to) "
                                + increase_from_creation(f"statescope_transitions_total{{{w}}}", "5m", 300),
                           "{{from}} -> {{to}}")], "none",
                   description="Transitions taken in the last 5 minutes, by edge."),
    ]
    return dashboard(
        "statescope-workers",
        "Workers",
        "Statescope: worker pools by type, their states, jobs, durations and heartbeats.",
        [query_variable("worker_type", "Worker type", 'label_values(statescope_state{kind="worker"}, worker_type)'),
         # Alert links (dashboard annotation) open the dashboard filtered to their worker.
         query_variable("machine", "Worker",
                        'label_values(statescope_state{kind="worker", worker_type=~"$worker_type"}, machine)')],
        panels,
    )


def exporter_health():
    i = 'job="statescope", instance=~"$instance"'
    panels = [
        stat("Up", [target("A", f"up{{{i}}}", "{{instance}}")], thresholds=None,
             mappings=[{"type": "value", "options": {"0": {"text": "down", "color": "red"},
                                                      "1": {"text": "up", "color": "green"}}}],
             description="Whether Prometheus' last scrape of the exporter succeeded."),
        stat("Machines", [target("A", f"sum(statescope_exporter_machines{{{i}}})")], description="Machines "
             "the exporter keeps (breakers, workers, custom kinds)."),
        stat("Events accepted /s", [target("A", f"sum(rate(statescope_exporter_events_total{{{i}}}[{RATE}]))")],
             unit="ops", description="Events (transitions, calls, heartbeats, jobs) ingested per second."),
        stat("Events rejected /s",
             [target("A", f"sum(rate(statescope_exporter_events_rejected_total{{{i}}}[{RATE}]))")],
             unit="ops", thresholds=[(0.001, "orange"), (0.05, "red")],
             description="Events refused (bad JSON, unknown kind or state, a transition a strict kind does not "
             "expect, wrong token)."),
        stat("CPU", [target("A", f"sum(rate(process_cpu_seconds_total{{{i}}}[{RATE}]))")], unit="percentunit",
             thresholds=[(0.5, "orange"), (0.9, "red")], description="CPU time used per second (1 = one core)."),
        stat("Memory", [target("A", f"sum(process_resident_memory_bytes{{{i}}})")], unit="bytes",
             description="Resident memory of the exporter process."),
        row("Ingest"),
        timeseries("Ingest rate", [target("A", f"sum by (instance) (rate(statescope_exporter_events_total{{{i}}}"
                                               f"[{RATE}]))", "{{instance}}")], "ops",
                   description="Events accepted per second."),
        timeseries("Rejected events", [target("A", f"sum by (instance) (rate("
                                                   f"statescope_exporter_events_rejected_total{{{i}}}[{RATE}]))",
                                              "{{instance}}")], "ops",
                   description="Events refused per second; the exporter's log says why."),
        timeseries("Unexpected transitions by kind",
                   [target("A", f"sum by (kind) (increase(statescope_unexpected_transitions_total{{{i}}}[5m]))",
                           "{{kind}}")], "none",
                   description="Reported transitions the kind does not expect (neither its normal flow nor a manual "
                   "move), in the last 5 minutes: applied as reported (refused for strict kinds), but the reporter "
                   "and the kind definition disagree."),
        timeseries("Machines by kind", [target("A", f"sum by (kind) (statescope_exporter_machines{{{i}}})",
                                               "{{kind}}")], "none", description="Machines kept, by kind."),
        row("HTTP"),
        timeseries("HTTP requests",
                   [target("A", f"sum by (instance) (rate(statescope_exporter_http_requests_total{{{i}}}[{RATE}]))",
                           "{{instance}}")], "reqps", description="Requests per second the exporter served."),
        timeseries("HTTP latency p50 / p95 / p99",
                   quantiles("statescope_exporter_http_request_duration_seconds", i, "instance", "{{instance}}"),
                   "s", description="Time to answer a request (pushes, scrapes, API reads)."),
        row("Process"),
        timeseries("CPU", [target("A", f"rate(process_cpu_seconds_total{{{i}}}[{RATE}])", "{{instance}}")],
                   "percentunit", description="CPU time used per second (1 = one core)."),
        timeseries("Resident memory", [target("A", f"process_resident_memory_bytes{{{i}}}", "{{instance}}")],
                   "bytes", description="Memory the exporter process holds."),
        timeseries("Scrape duration", [target("A", f"scrape_duration_seconds{{{i}}}", "{{instance}}")], "s",
                   description="How long Prometheus took to scrape the exporter (added by Prometheus)."),
        timeseries("Samples per scrape", [target("A", f"scrape_samples_scraped{{{i}}}", "{{instance}}")], "none",
                   description="Series in each scrape: grows with machines x states (added by Prometheus)."),
    ]
    return dashboard(
        "statescope-exporter",
        "Exporter health",
        "Statescope: the exporter itself: ingest, rejected events, HTTP latency, CPU and memory.",
        [query_variable("instance", "Exporter", 'label_values(up{job="statescope"}, instance)')],
        panels,
    )


DASHBOARDS = {
    "circuit-breakers.json": breakers,
    "workers.json": workers,
    "exporter-health.json": exporter_health,
}


def render(dash):
    return json.dumps(dash, indent=2, ensure_ascii=False) + "\n"


def main(argv):
    _self_test()
    out = pathlib.Path(__file__).resolve().parent / "dashboards"
    check = "--check" in argv
    stale = []
    for name, build in DASHBOARDS.items():
        path = out / name
        dash = build()
        problems = [f"{name} / {p['title']!r}: {problem}" for p in dash["panels"] if p["type"] == PLUGIN
                    for problem in option_problems(p["options"])]
        if problems:
            print("generate.py: Statescope panel options the panel does not take:\n  " + "\n  ".join(problems),
                  file=sys.stderr)
            return 1
        text = render(dash)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        print("dashboards differ from generate.py (run: python3 provisioning/grafana/generate.py): "
              + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
