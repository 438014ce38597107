"""aiobreaker, driven for real on asyncio, through the reporter into the real exporter."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta

import aiobreaker

from conftest import Exporter, assert_exporter_matches, breaker_truth
from statescope_client import Reporter, StatescopeListener, state_name


class Boom(Exception):
    pass


async def drive(breakers: list[aiobreaker.CircuitBreaker], tasks: int, calls: int, seed: int) -> float:
    """Concurrent tasks call random breakers; returns the slowest call, in seconds."""
    slowest = 0.0

    async def work(t: int) -> None:
        nonlocal slowest
        rng = random.Random(seed * 1000 + t)

        async def op() -> None:
            await asyncio.sleep(0)
            if rng.random() < 0.35:
                raise Boom()

        for _ in range(calls):
            cb = rng.choice(breakers)
            started = time.perf_counter()
            try:
                await cb.call_async(op)
            except (Boom, aiobreaker.CircuitBreakerError):
                pass
            slowest = max(slowest, time.perf_counter() - started)
            if rng.random() < 0.03:
                await asyncio.sleep(0.006)

    await asyncio.gather(*(work(t) for t in range(tasks)))
    return slowest


def make_breakers(reporter: Reporter, truth: object, n: int) -> list[aiobreaker.CircuitBreaker]:
    breakers = []
    for i in range(n):
        cb = aiobreaker.CircuitBreaker(fail_max=3, timeout_duration=timedelta(milliseconds=5), name=f"svc/{i}")
        cb.add_listener(truth)
        cb.add_listener(StatescopeListener(reporter, labels={"service": "svc"}))
        breakers.append(cb)
    return breakers


def final_states(breakers: list[aiobreaker.CircuitBreaker]) -> dict[str, str]:
    return {str(cb.name): state_name(cb.current_state.name) for cb in breakers}


def test_aiobreaker_on_asyncio_exporter_equals_library(exporter: Exporter) -> None:
    """One task per breaker (a breaker per API key, say), all concurrent on one loop."""
    truth = breaker_truth()
    reporter = Reporter(exporter.url)
    breakers = make_breakers(reporter, truth, 12)

    async def main() -> float:
        slowest = await asyncio.gather(*(drive([cb], tasks=1, calls=250, seed=i) for i, cb in enumerate(breakers)))
        return max(slowest)

    slowest = asyncio.run(main())
    assert reporter.flush(30)
    stats = reporter.stats()
    assert stats.rejected == 0 and stats.dropped == 0, stats
    assert {k[1:] for k in truth.transitions} >= {("closed", "open"), ("open", "half_open"), ("half_open", "closed")}
    assert_exporter_matches(exporter, truth, final_states(breakers))
    assert slowest < 0.5
    reporter.close()


def test_aiobreaker_shared_by_many_tasks_ends_in_the_librarys_state(exporter: Exporter) -> None:
    truth = breaker_truth()
    reporter = Reporter(exporter.url)
    breakers = make_breakers(reporter, truth, 4)
    asyncio.run(drive(breakers, tasks=12, calls=200, seed=5))
    assert reporter.flush(30)
    assert ("open", "closed") in {k[1:] for k in truth.transitions}, "the race this test is about did not happen"
    stats = reporter.stats()
    reporter.close()
    machines = exporter.machines("circuit_breaker")
    assert {m: machines[m]["state"] for m in final_states(breakers)} == final_states(breakers)
    assert stats.rejected == 0, stats
