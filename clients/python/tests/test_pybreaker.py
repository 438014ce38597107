"""pybreaker, driven for real, through the reporter into the real exporter."""

from __future__ import annotations

import random
import signal
import threading
import time
from typing import Any

import pybreaker
import pytest

from conftest import Exporter, assert_exporter_matches, breaker_truth
from statescope_client import Reporter, StatescopeListener, state_name

# The longest a breaker call (the guarded function is instant) may take in the
# service's thread while the exporter is down or restarting. A reporter that
# waited on the network would take its 5 s request timeout, or forever.
CALL_BOUND_SECONDS = 0.5


class Boom(Exception):
    pass


def make_breakers(reporter: Reporter, truth: Any, n: int) -> list[pybreaker.CircuitBreaker]:
    breakers = []
    for i in range(n):
        provider, key = ("openai", "anthropic")[i % 2], f"key-{i}"
        cb = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=0.005, name=f"{provider}/{key}")
        cb.add_listener(truth)
        cb.add_listener(StatescopeListener(reporter, labels={"provider": provider, "key_id": key}))
        breakers.append(cb)
    return breakers


def hammer(breakers: list[pybreaker.CircuitBreaker], threads: int, calls: int, seed: int) -> list[float]:
    """Each thread calls random breakers; a third of calls fail. Returns each call's time."""
    times: list[list[float]] = [[] for _ in range(threads)]

    def work(t: int) -> None:
        rng = random.Random(seed * 1000 + t)

        def op() -> None:
            if rng.random() < 0.35:
                raise Boom()

        for _ in range(calls):
            cb = rng.choice(breakers)
            started = time.perf_counter()
            try:
                cb.call(op)
            except (Boom, pybreaker.CircuitBreakerError):
                pass
            times[t].append(time.perf_counter() - started)
            if rng.random() < 0.02:
                time.sleep(0.006)  # let reset timeouts pass, so breakers go half-open

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return [x for per in times for x in per]


def final_states(breakers: list[pybreaker.CircuitBreaker]) -> dict[str, str]:
    return {str(cb.name): state_name(cb.current_state) for cb in breakers}


def test_many_threads_many_breakers_exporter_equals_pybreaker(exporter: Exporter) -> None:
    truth = breaker_truth()
    reporter = Reporter(exporter.url)
    breakers = make_breakers(reporter, truth, 8)
    hammer(breakers, threads=16, calls=400, seed=1)
    assert reporter.flush(30)
    stats = reporter.stats()
    assert stats.dropped == 0 and stats.rejected == 0, stats
    assert sum(truth.transitions.values()) > 200, "the run should move the breakers a lot"
    assert {k[1:] for k in truth.transitions} >= {("closed", "open"), ("open", "half_open"), ("half_open", "closed")}
    assert_exporter_matches(exporter, truth, final_states(breakers))
    labels = exporter.machines("circuit_breaker")["anthropic/key-1"]["labels"]
    assert labels == {"provider": "anthropic", "key_id": "key-1"}
    reporter.close()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_exporter_stopped_and_restarted_mid_run(exporter: Exporter, how: int) -> None:
    """Events made while the exporter is down wait in the queue and arrive once;
    the service's calls never wait on it."""
    truth = breaker_truth()
    reporter = Reporter(exporter.url, max_backoff=0.5)
    breakers = make_breakers(reporter, truth, 6)
    times = hammer(breakers, threads=8, calls=150, seed=2)
    exporter.stop(how)
    times += hammer(breakers, threads=8, calls=150, seed=3)
    assert reporter.stats().queued > 0, "events made while the exporter is down are queued"
    time.sleep(0.5)
    exporter.start()
    times += hammer(breakers, threads=8, calls=150, seed=4)
    assert reporter.flush(30)
    stats = reporter.stats()
    assert stats.retries > 0 and stats.dropped == 0 and stats.rejected == 0, stats
    assert_exporter_matches(exporter, truth, final_states(breakers))
    worst = max(times)
    print(f"\n{len(times)} calls, slowest {worst * 1000:.1f} ms, exporter {how.name}")
    assert worst < CALL_BOUND_SECONDS, f"a breaker call took {worst:.3f}s while the exporter was down"
    reporter.close()


def test_a_breaker_attached_while_open_is_reported_open(exporter: Exporter) -> None:
    cb = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=60, name="stripe/key-1")
    cb.open()
    reporter = Reporter(exporter.url)
    cb.add_listener(StatescopeListener(reporter))
    with pytest.raises(pybreaker.CircuitBreakerError):
        cb.call(lambda: None)  # refused: listeners hear nothing of it
    cb.half_open()
    assert reporter.flush(10)
    assert exporter.machines()["stripe/key-1"]["state"] == "half_open"
    reporter.close()


def test_a_manual_close_of_an_open_breaker_ends_in_the_librarys_state(exporter: Exporter) -> None:
    cb = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=60, name="openai/manual")
    reporter = Reporter(exporter.url)
    cb.add_listener(StatescopeListener(reporter))
    with pytest.raises(pybreaker.CircuitBreakerError):
        cb.call(lambda: 1 / 0)
    assert cb.current_state == "open"
    cb.close()  # an operator's manual reset
    assert reporter.flush(10)
    stats = reporter.stats()
    reporter.close()
    # Everything else was accepted: only the manual move can make the states differ.
    assert stats.rejected <= 1 and stats.dropped == 0, stats
    assert exporter.machines()["openai/manual"]["state"] == state_name(cb.current_state) == "closed"
