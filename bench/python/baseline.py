#!/usr/bin/env python3
"""The Python baseline the exporter is compared with.

What a team would write today without Statescope: the official
`prometheus_client` library, the same series as the exporter's metric
contract (model/src/contract.rs), fed by the same POSTed events, served over
plain `http.server`. It validates transitions against the circuit breaker's
graph like the exporter does, but it does NOT persist anything (the exporter
writes every acknowledged event to disk before answering), so the ingest
comparison flatters the baseline.

    baseline.py serve [--port-file FILE]       # HTTP: POST /api/v1/events, GET /metrics
    baseline.py encode --machines N [--repeat R]  # in-process: time to encode /metrics
    baseline.py apply --machines N --batch B [--repeat R]  # in-process: time to apply a batch of events

`encode` and `apply` print one JSON object, so bench/run.sh can put the
figures next to the exporter's criterion benchmarks.
"""

import argparse
import itertools
import json
import math
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

# The exporter does not emit `_created` series; don't make the baseline pay for them.
prometheus_client.disable_created_metrics()

KIND = "circuit_breaker"
STATES = ["closed", "open", "half_open", "forced_open", "disabled"]
ALLOWED = {
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
    ("forced_open", "closed"),
    ("disabled", "closed"),
} | {(s, "forced_open") for s in STATES if s != "forced_open"} | {(s, "disabled") for s in STATES if s != "disabled"}
SEVERITY = {"closed": 0, "open": 3, "half_open": 2, "forced_open": 3, "disabled": 1}
OUTCOMES = ["success", "failure", "timeout", "rejected"]
IDENTITY = ["provider", "key_id"]


class Breakers:
    """Every breaker's state and its series, in one prometheus_client registry."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        machine = ["kind", "machine"] + IDENTITY
        self.state = Gauge("statescope_state", "1 for the current state", machine + ["state"], registry=r)
        self.transitions = Counter(
            "statescope_transitions", "Transitions taken", machine + ["from", "to"], registry=r
        )
        self.since = Gauge("statescope_state_since_timestamp_seconds", "Entered current state", machine, registry=r)
        self.calls = Counter("statescope_breaker_calls", "Calls", machine + ["outcome"], registry=r)
        self.failures = Gauge("statescope_breaker_failures", "Failures in window", machine, registry=r)
        self.unexpected = Counter(
            "statescope_unexpected_transitions", "Transitions outside the kind's flow", ["kind", "machine"], registry=r
        )
        self.compat_state = Gauge("circuit_breaker_state", "0 closed 1 open 2 half_open", IDENTITY, registry=r)
        self.compat_trips = Counter("circuit_breaker_trips", "Transitions into open", IDENTITY, registry=r)
        self.compat_failures = Gauge("circuit_breaker_failure_count", "Failures in window", IDENTITY, registry=r)
        allowed = Gauge("statescope_transition_allowed", "Allowed transitions", ["kind", "from", "to"], registry=r)
        for a, b in sorted(ALLOWED):
            allowed.labels(KIND, a, b).set(1)
        severity = Gauge("statescope_state_severity", "Severity per state", ["kind", "state"], registry=r)
        for s in STATES:
            severity.labels(KIND, s).set(SEVERITY[s])
        self.events = Counter("statescope_exporter_events", "Events accepted", ["type"], registry=r)
        self.machines = {}  # name -> [state, labels tuple, consecutive failures]
        self.lock = threading.Lock()

    def _machine(self, name, labels):
        m = self.machines.get(name)
        if m is None:
            ident = (labels.get("provider", ""), labels.get("key_id", name))
            m = self.machines[name] = ["closed", ident, 0]
            for s in STATES:
                self.state.labels(KIND, name, *ident, s).set(1 if s == "closed" else 0)
            self.since.labels(KIND, name, *ident).set(time.time())
            self.failures.labels(KIND, name, *ident).set(0)
            self.compat_state.labels(*ident).set(0)
            self.compat_failures.labels(*ident).set(0)
        return m

    def apply(self, event):
        """Applies one event; raises ValueError on bad input, like a 400."""
        kind, name = event.get("kind"), event.get("machine")
        if kind != KIND or not isinstance(name, str):
            raise ValueError("unknown kind or machine")
        m = self._machine(name, event.get("labels") or {})
        ident = m[1]
        typ = event.get("type")
        if typ == "transition":
            to = event.get("to")
            if to not in STATES:
                raise ValueError("unknown state")
            frm = m[0]
            if to != frm:
                # A reported transition is a fact: applied, and counted apart
                # when the kind does not expect it (as the exporter does).
                if (frm, to) not in ALLOWED:
                    self.unexpected.labels(KIND, name).inc()
                m[0] = to
                self.state.labels(KIND, name, *ident, frm).set(0)
                self.state.labels(KIND, name, *ident, to).set(1)
                self.transitions.labels(KIND, name, *ident, frm, to).inc()
                self.since.labels(KIND, name, *ident).set(time.time())
                self.compat_state.labels(*ident).set(STATES.index(to))
                if to == "open":
                    self.compat_trips.labels(*ident).inc()
        elif typ == "call":
            outcome = event.get("outcome")
            if outcome not in OUTCOMES:
                raise ValueError("unknown outcome")
            self.calls.labels(KIND, name, *ident, outcome).inc()
            if "failure_count" in event:
                m[2] = int(event["failure_count"])
            elif outcome in ("failure", "timeout"):
                m[2] += 1
            elif outcome == "success":
                m[2] = 0
            self.failures.labels(KIND, name, *ident).set(m[2])
            self.compat_failures.labels(*ident).set(m[2])
        else:
            raise ValueError("unknown event type")
        self.events.labels(typ).inc()

    def apply_body(self, body):
        doc = json.loads(body)
        events = doc["events"] if isinstance(doc, dict) and "events" in doc else [doc]
        with self.lock:
            for e in events:
                self.apply(e)
        return len(events)


def make_handler(breakers):
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as Prometheus and the load generator use it.
        protocol_version = "HTTP/1.1"

        def _reply(self, code, body, ctype):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.split("?")[0] == "/metrics":
                self._reply(200, generate_latest(breakers.registry), prometheus_client.CONTENT_TYPE_LATEST)
            else:
                self._reply(404, b"not found\n", "text/plain")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/api/v1/events":
                self._reply(404, b"not found\n", "text/plain")
                return
            try:
                n = breakers.apply_body(body)
            except (ValueError, KeyError, TypeError) as e:
                self._reply(400, json.dumps({"error": str(e)}).encode(), "application/json")
                return
            self._reply(200, json.dumps({"accepted": n}).encode(), "application/json")

        def log_message(self, *args):
            pass

    return Handler


def seed(breakers, machines):
    """The same fleet the load generator seeds over HTTP (bench/src/events.rs)."""
    for i in range(machines):
        for e in seed_events(i):
            breakers.apply(e)


def seed_events(i):
    # Keep in step with `events::seed_events` in bench/src/events.rs.
    name, labels = f"p{i % 50}/key-{i}", {"provider": f"p{i % 50}", "key_id": f"key-{i}"}
    base = {"kind": KIND, "machine": name}
    out = [dict(base, type="transition", to="open", labels=labels), dict(base, type="call", outcome="success")]
    if i % 2 == 1:
        out.append(dict(base, type="transition", to="half_open"))
    return out


def stream_bodies(machines, batch):
    """One period of the load test's event stream over the seeded fleet, one connection.

    Keep in step with `events::Stream` (bench/src/events.rs) and `stream_period`
    (bench/benches/common/mod.rs): 4 events in 5 are call outcomes, 1 in 5 a
    transition along `CYCLE`; after the period every breaker is back where it
    was, so the bodies can be applied again.
    """
    cycle = ["forced_open", "closed", "open", "half_open"]  # `CYCLE`: starts with a state any state may go to
    position = [len(cycle) - 1] * machines
    bodies, events = [], []
    for step in range(len(cycle) * math.lcm(machines, batch)):
        i = step % machines
        base = {"kind": KIND, "machine": f"p{i % 50}/key-{i}"}
        if step % 5 == 4:
            position[i] = (position[i] + 1) % len(cycle)
            events.append(dict(base, type="transition", to=cycle[position[i]]))
        else:
            events.append(dict(base, type="call", outcome=["success", "success", "failure", "timeout"][step % 4]))
        if len(events) == batch:
            bodies.append(json.dumps({"events": events}).encode())
            events = []
    return bodies


def median_secs(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port-file")
    e = sub.add_parser("encode")
    e.add_argument("--machines", type=int, required=True)
    e.add_argument("--repeat", type=int, default=5)
    a = sub.add_parser("apply")
    a.add_argument("--machines", type=int, default=10000)
    a.add_argument("--batch", type=int, default=100)
    a.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()

    breakers = Breakers()
    if args.cmd == "serve":
        server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(breakers))
        server.daemon_threads = True
        port = server.server_address[1]
        if args.port_file:
            with open(args.port_file + ".tmp", "w") as f:
                f.write(str(port))
            os.replace(args.port_file + ".tmp", args.port_file)
        print(f"baseline listening on 127.0.0.1:{port}", flush=True)
        server.serve_forever()
    elif args.cmd == "encode":
        seed(breakers, args.machines)
        secs = median_secs(lambda: generate_latest(breakers.registry), args.repeat)
        print(json.dumps({"machines": args.machines, "median_secs": secs}))
    elif args.cmd == "apply":
        seed(breakers, args.machines)
        # Decoding the body and applying it, batch after batch of the stream, as the exporter's bench does.
        bodies = itertools.cycle(stream_bodies(args.machines, args.batch))
        secs = median_secs(lambda: breakers.apply_body(next(bodies)), args.repeat)
        print(json.dumps({"machines": args.machines, "batch": args.batch, "median_secs": secs}))

if __name__ == "__main__":
    sys.exit(main())
