"""Drives real libraries nobody here wrote through many state changes, reporting
them with statescope_client to an exporter, and writes what the libraries
themselves did as JSON (e2e/tests/truth.spec.ts compares every layer with it).

- pybreaker 1.x: ``--breakers`` breakers, ``--threads`` threads calling through
  them while each breaker's upstream has bad spells (so they trip, half-open
  and close many times), an operator thread making manual moves (``close()``
  on an open breaker, ``half_open()`` on a closed one, ``open()``), and
  breakers created mid-run. The truth is a listener of our own on every
  breaker: pybreaker calls it under the breaker's lock with the state it left
  and the state it entered.
- Celery 5 (``--workers``): workers on the in-memory broker, one started
  mid-run, all stopped before the end, taking tasks published meanwhile. The
  truth is Celery's own task signals (succeeded/failed) and the worker states
  the adapter reported (a tee on the reporter, in the order they were queued).

    python truth_driver.py --exporter http://127.0.0.1:9733 --out truth.json

Exits non-zero if a reporter dropped an event or could not deliver them all:
then the exporter cannot hold the truth, whatever it does. Events the
exporter refused are counted (``reporters``), not fatal: that refusal is the
exporter's to answer for, and the comparison shows what it cost.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pybreaker

from statescope_client import Reporter, StatescopeListener, state_name

PROVIDERS = ("deepseek", "mistral", "groq", "cohere")


class Boom(Exception):
    """The upstream failed."""


class BreakerTruth:
    """A pybreaker listener recording each transition the library made."""

    def __init__(self) -> None:
        self.transitions: Counter[tuple[str, str, str]] = Counter()

    def before_call(self, cb: Any, func: Any, *a: Any, **k: Any) -> None:
        pass

    def success(self, cb: Any) -> None:
        pass

    def failure(self, cb: Any, exc: BaseException) -> None:
        pass

    def state_change(self, cb: Any, old: Any, new: Any) -> None:
        # pybreaker notifies a move to the state it is in (close() on a closed
        # breaker) too; that is no transition.
        a, b = state_name(old) if old is not None else "closed", state_name(new)
        if a != b:
            self.transitions[(str(cb.name), a, b)] += 1


class Upstream:
    """A breaker's upstream: bad spells (most calls fail) between good ones."""

    def __init__(self, rng: random.Random, seconds: float) -> None:
        self.spells: list[tuple[float, float]] = []
        t, bad = 0.0, rng.random() < 0.5
        while t < seconds + 1:
            t += rng.uniform(0.05, 0.4) if bad else rng.uniform(0.1, 0.6)
            self.spells.append((t, 0.85 if bad else 0.04))
            bad = not bad

    def fail_rate(self, t: float) -> float:
        for end, rate in self.spells:
            if t < end:
                return rate
        return 0.0


class Fleet:
    """The breakers that exist so far; threads pick among them."""

    def __init__(self, reporter: Reporter, truth: BreakerTruth, seconds: float, seed: int) -> None:
        self.reporter, self.truth, self.seconds = reporter, truth, seconds
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.breakers: list[tuple[pybreaker.CircuitBreaker, Upstream]] = []
        self.created_at: dict[str, float] = {}

    def add(self, index: int, t0: float) -> None:
        provider, key = PROVIDERS[index % len(PROVIDERS)], f"key-{index // len(PROVIDERS) + 1}"
        cb = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=0.02, name=f"{provider}/{key}")
        cb.add_listener(self.truth)
        cb.add_listener(StatescopeListener(self.reporter, labels={"provider": provider, "key_id": key}))
        with self.lock:
            self.breakers.append((cb, Upstream(random.Random(self.rng.random()), self.seconds)))
            self.created_at[str(cb.name)] = time.time()
        # A breaker exists for Statescope from its first event: say where it is now.
        cb.call(lambda: None)

    def pick(self, rng: random.Random) -> tuple[pybreaker.CircuitBreaker, Upstream]:
        with self.lock:
            return rng.choice(self.breakers)


def caller(fleet: Fleet, t0: float, deadline: float, seed: int, calls: Counter[str]) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        cb, upstream = fleet.pick(rng)
        rate = upstream.fail_rate(time.monotonic() - t0)

        def op() -> None:
            if rng.random() < rate:
                raise Boom()

        try:
            cb.call(op)
            calls["success"] += 1
        except Boom:
            calls["failure"] += 1
        except pybreaker.CircuitBreakerError:
            calls["refused_or_tripped"] += 1
        time.sleep(rng.uniform(0.002, 0.008))


def operator(fleet: Fleet, deadline: float, seed: int, moves: Counter[str]) -> None:
    """Manual moves, as an on-call engineer makes them through pybreaker's API."""
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.03, 0.08))
        cb, _ = fleet.pick(rng)
        with cb._lock:  # read the state and act on it as one step (pybreaker's lock is reentrant)
            state = state_name(cb.current_state)
            if state == "open":
                cb.close()
                moves["close() on open"] += 1
            elif state == "closed" and rng.random() < 0.5:
                cb.half_open()
                moves["half_open() on closed"] += 1
            elif state == "closed":
                cb.open()
                moves["open() on closed"] += 1
            elif rng.random() < 0.5:
                cb.open()
                moves["open() on half_open"] += 1
            else:
                cb.close()
                moves["close() on half_open"] += 1


class WorkerTee(Reporter):
    """The reporter, recording the worker states the Celery adapter reports in
    the order they are queued (a state per machine, from the kind's initial)."""

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        self.tee_lock = threading.Lock()
        self.worker_state: dict[str, str] = {}
        self.worker_transitions: Counter[tuple[str, str, str]] = Counter()

    def transition(self, kind: str, machine: str, to: str, *, labels: Mapping[str, str] | None = None) -> None:
        with self.tee_lock:
            if kind == "worker":
                was = self.worker_state.get(machine, "starting")
                if was != to:
                    self.worker_transitions[(machine, was, to)] += 1
                self.worker_state[machine] = to
            super().transition(kind, machine, to, labels=labels)


def celery_worker(exporter: str, index: int, start_in: float, run_for: float, out: str) -> None:
    """One Celery worker (threads pool, in-memory broker) in its own process, as
    workers run: Celery's shutdown state is per process, so two workers in one
    process stop together. It takes bursts of tasks (some fail) for `run_for`
    seconds, then stops (draining, offline); what it did goes to `out`."""
    from celery import Celery, signals
    from celery.contrib.testing.worker import start_worker

    from statescope_client.celery import attach

    time.sleep(start_in)
    name = f"ingest{index}"
    app = Celery(name, broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

    @app.task(name=f"{name}.work")  # type: ignore[untyped-decorator]
    def work(seconds: float, fail: bool) -> str:
        time.sleep(seconds)
        if fail:
            raise ValueError("this job fails")
        return "ok"

    jobs: Counter[str] = Counter()
    lock = threading.Lock()

    def outcome(result: str) -> Any:
        def record(sender: Any = None, **_: Any) -> None:
            if getattr(sender, "app", None) is app:
                with lock:
                    jobs[result] += 1
        return record

    ok, failed = outcome("succeeded"), outcome("failed")
    signals.task_success.connect(ok, weak=False)
    signals.task_failure.connect(failed, weak=False)
    reporter = WorkerTee(exporter, max_queue=200_000, close_on_exit=None)
    attach(app, reporter, worker_type="ingest", heartbeat_interval=1.0)
    rng = random.Random(index)
    published = 0
    with start_worker(app, pool="threads", concurrency=3, perform_ping_check=False, shutdown_timeout=30, loglevel="CRITICAL",
                      hostname=f"{name}@truth-e2e"):
        until = time.monotonic() + run_for
        pending = []
        while time.monotonic() < until:
            # Bursts with quiet gaps: the worker goes busy and back to idle often.
            for _ in range(rng.randint(1, 3)):
                pending.append(work.delay(rng.uniform(0.005, 0.03), rng.random() < 0.2))
            time.sleep(rng.uniform(0.05, 0.25))
        for r in pending:
            r.get(timeout=60, propagate=False)
        published = len(pending)
    delivered = reporter.flush(60)
    stats = reporter.stats()
    reporter.close(5)
    with open(out, "w") as f:
        json.dump({
            "state": reporter.worker_state,
            "transitions": [[m, a, b, n] for (m, a, b), n in reporter.worker_transitions.items()],
            "jobs": {m: dict(jobs) for m in reporter.worker_state},
            "published": published,
            "reporter": {"delivered_all": delivered, **stats.__dict__},
        }, f)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exporter", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=25.0)
    p.add_argument("--breakers", type=int, default=8)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--workers", type=int, default=2, help="Celery workers, one process each (0: none)")
    p.add_argument("--seed", type=int, default=11)
    a = p.parse_args()

    # Bounded like any service's reporter, but with room for the whole run:
    # a drop would be the driver's fault, and is reported as such below.
    reporter = Reporter(a.exporter, max_queue=200_000, close_on_exit=None)
    truth = BreakerTruth()
    fleet = Fleet(reporter, truth, a.seconds, a.seed)
    started_wall = time.time()

    # Workers: the first from the start, the others from mid-run; all stop
    # before the breakers do. "spawn": this process has threads, fork would copy their locks.
    spawn = multiprocessing.get_context("spawn")
    worker_files = [f"{a.out}.worker{i + 1}.json" for i in range(a.workers)]
    workers = []
    for i, out in enumerate(worker_files):
        start_in = 0.0 if i == 0 else a.seconds * (0.25 + 0.35 * (i - 1) / max(1, a.workers - 1))
        run_for = a.seconds * 0.9 - start_in
        workers.append(spawn.Process(target=celery_worker, args=(a.exporter, i + 1, start_in, run_for, out), daemon=True))
    for w in workers:
        w.start()

    t0 = time.monotonic()
    deadline = t0 + a.seconds
    # Breakers created mid-run: the last ones appear at 25%, 50%, 75% of the run.
    late = min(3, max(0, a.breakers - 1))
    for i in range(a.breakers - late):
        fleet.add(i, t0)
    calls: Counter[str] = Counter()
    moves: Counter[str] = Counter()
    threads = [threading.Thread(target=caller, args=(fleet, t0, deadline, a.seed * 100 + t, calls))
               for t in range(a.threads)]
    threads.append(threading.Thread(target=operator, args=(fleet, deadline, a.seed, moves)))
    for t in threads:
        t.start()
    for k in range(late):
        time.sleep(max(0.0, t0 + a.seconds * (k + 1) / (late + 1) - time.monotonic()))
        fleet.add(a.breakers - late + k, t0)
    for t in threads:
        t.join()

    # Leave the breakers in every state the kind has, so final states say something.
    finals = ("open", "half_open", "closed")
    for i, (cb, _) in enumerate(fleet.breakers[: len(finals)]):
        {"open": cb.open, "half_open": cb.half_open, "closed": cb.close}[finals[i]]()
    delivered = reporter.flush(60)
    stats = reporter.stats()
    reporter.close(5)

    machines = [{"kind": "circuit_breaker", "machine": str(cb.name), "state": state_name(cb.current_state)}
                for cb, _ in fleet.breakers]
    transitions = [
        {"kind": "circuit_breaker", "machine": m, "from": f, "to": t, "count": n}
        for (m, f, t), n in sorted(truth.transitions.items())
    ]
    jobs: list[dict[str, Any]] = []
    reporters = {"breakers": {"delivered_all": delivered, **stats.__dict__}}
    ok = delivered and not (stats.dropped or stats.errors)
    for i, (w, out) in enumerate(zip(workers, worker_files)):
        w.join(timeout=a.seconds + 120)
        if w.exitcode != 0:
            print(f"driver: celery worker {i + 1} exited with {w.exitcode}", file=sys.stderr)
            ok = False
            continue
        with open(out) as f:
            got = json.load(f)
        machines += [{"kind": "worker", "machine": m, "state": s} for m, s in got["state"].items()]
        transitions += [{"kind": "worker", "machine": m, "from": f, "to": t, "count": n}
                        for m, f, t, n in got["transitions"]]
        jobs += [{"machine": m, "result": r, "count": n} for m, by in got["jobs"].items() for r, n in by.items()]
        r = got["reporter"]
        reporters[f"worker{i + 1}"] = r
        ok = ok and r["delivered_all"] and not (r["dropped"] or r["errors"])

    report = {
        "started": started_wall,
        "ended": time.time(),
        "machines": sorted(machines, key=lambda m: (m["kind"], m["machine"])),
        "transitions": transitions,
        "jobs": jobs,
        "calls": dict(calls),
        "manual_moves": dict(moves),
        "reporters": reporters,
    }
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    total = sum(t["count"] for t in transitions)
    print(f"driver: {len(machines)} machines, {total} transitions, {sum(calls.values())} breaker calls, "
          f"manual moves {dict(moves)}, {sum(j['count'] for j in jobs)} Celery jobs", file=sys.stderr)
    if not ok:
        print(f"driver: not every event was delivered ({reporters}); the exporter cannot hold the truth",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
