"""A real Celery worker on the in-memory broker, reported through the Celery
adapter into the real exporter."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from celery import Celery, signals
from celery.contrib.testing.worker import start_worker

from conftest import Exporter
from statescope_client import Reporter
from statescope_client.celery import attach


def make_app(name: str) -> Celery:
    app = Celery(name, broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(task_acks_late=False, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

    @app.task(name=f"{name}.work")  # type: ignore[untyped-decorator]
    def work(seconds: float, fail: bool) -> str:
        time.sleep(seconds)
        if fail:
            raise ValueError("this job fails")
        return "ok"

    return app


class WorkerTruth:
    """What Celery itself says happened, from its own success/failure signals."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.results: Counter[str] = Counter()
        self.lock = threading.Lock()
        signals.task_success.connect(self.ok, weak=False)
        signals.task_failure.connect(self.failed, weak=False)

    def ok(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is self.app:
            with self.lock:
                self.results["succeeded"] += 1

    def failed(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is self.app:
            with self.lock:
                self.results["failed"] += 1

    def disconnect(self) -> None:
        signals.task_success.disconnect(self.ok)
        signals.task_failure.disconnect(self.failed)


def transitions(exporter: Exporter, machine: str) -> dict[tuple[str, str], float]:
    return {
        (dict(l)["from"], dict(l)["to"]): v
        for l, v in exporter.series("statescope_transitions_total", kind="worker", machine=machine).items()
        if v
    }


@pytest.mark.parametrize(
    "pool,concurrency,restart",
    [("solo", 1, False), ("threads", 4, False), ("threads", 4, True)],
    ids=["solo", "threads", "threads-exporter-restarted"],
)
def test_celery_worker_jobs_and_states_reach_the_exporter(
    exporter: Exporter, pool: str, concurrency: int, restart: bool
) -> None:
    app = make_app(f"app_{pool}_{restart}")
    reporter = Reporter(exporter.url)
    hooks = attach(app, reporter, worker_type="backtest", heartbeat_interval=0.2)
    truth = WorkerTruth(app)
    work = app.tasks[f"app_{pool}_{restart}.work"]
    try:
        with start_worker(
            app, pool=pool, concurrency=concurrency, perform_ping_check=False, shutdown_timeout=30
        ) as worker:
            for half in (0, 1):
                if restart and half == 1:
                    exporter.stop()
                results = [work.delay(0.01 * (i % 3), i % 5 == 0) for i in range(15 * half, 15 * half + 15)]
                for r in results:
                    r.get(timeout=60, propagate=False)
            if restart:
                assert reporter.stats().queued > 0
                exporter.start()
            time.sleep(0.5)  # heartbeats
            machine = hooks.machine
            assert machine == worker.hostname, "the machine is the worker's hostname"
            assert reporter.flush(10)
            live = exporter.machines("worker")[machine]
            assert live["state"] == "idle"
            assert live["last_heartbeat"] is not None
        assert reporter.flush(10)
    finally:
        truth.disconnect()
    assert truth.results == Counter(succeeded=24, failed=6)
    m = exporter.machines("worker")[machine]
    assert m["state"] == "offline"
    assert m["labels"] == {"worker_type": "backtest"}
    assert m["jobs"] == {"succeeded": 24, "failed": 6}
    t = transitions(exporter, machine)
    busy = t.pop(("idle", "busy"))
    assert busy >= 1 and t.pop(("busy", "idle")) == busy
    assert t == {("starting", "idle"): 1, ("idle", "draining"): 1, ("draining", "offline"): 1}
    # Every job has a run time and a queue wait (stamped at publish by the adapter).
    durations = exporter.series("statescope_worker_job_duration_seconds_count", kind="worker", worker_type="backtest")
    waits = exporter.series("statescope_worker_queue_wait_seconds_count", kind="worker", worker_type="backtest")
    assert list(durations.values()) == [30] and list(waits.values()) == [30]
    assert reporter.stats().rejected == 0
    reporter.close()
