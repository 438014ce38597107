"""Reports a Celery worker as a ``worker`` machine::

    statescope_client.celery.attach(app, reporter, worker_type="backtest")

The worker (machine = its hostname, ``celery@host``) goes ``starting`` ->
``idle`` when its consumer is ready, ``busy`` while at least one task runs,
``idle`` when the last one ends, ``draining`` while its consumer stops (a
restart after a lost broker connection goes back to ``idle``), and ``offline``
at shutdown. It sends a heartbeat every ``heartbeat_interval`` seconds (keep it
under the exporter's ``--heartbeat-ttl``, 30 s by default), and a ``job``
event per task with its run time and, when the task was published by a
process that also called ``attach``, its time in the queue.

Task signals run in the process that runs the task: with the ``solo``,
``threads``, ``eventlet`` and ``gevent`` pools that is the worker, as here.
With ``prefork`` each child process has its own reporter after the fork, and
the busy/idle state is per child, not per worker; use one of the others, or
report from your own code, where that matters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from .reporter import JobResult, Reporter

log = logging.getLogger("statescope_client")

WORKER = "worker"
# A message header carrying the time the task was published: its queue wait is start - this.
SENT_AT_HEADER = "statescope_sent_at"


class CeleryReporter:
    """What ``attach`` connects; keep it alive as long as the app (signals hold weak references)."""

    def __init__(
        self,
        app: Any,
        reporter: Reporter,
        *,
        kind: str = WORKER,
        machine: str | None = None,
        worker_type: str | None = None,
        labels: Mapping[str, str] | None = None,
        heartbeat_interval: float = 10.0,
    ) -> None:
        self.app = app
        self.reporter = reporter
        self.kind = kind
        self.machine = machine
        self.labels = dict(labels or {})
        if worker_type is not None:
            self.labels["worker_type"] = worker_type
        self.heartbeat_interval = heartbeat_interval
        self._lock = threading.Lock()
        self._active = 0
        self._started: dict[str, float] = {}
        self._stop_heartbeats = threading.Event()
        self._heartbeats: threading.Thread | None = None

    # The consumer's bootstep calls these three, in a warm and a cold shutdown alike.

    def consumer_ready(self, hostname: str) -> None:
        if self.machine is None:
            self.machine = hostname
        self._move("idle")
        self._start_heartbeats()

    def consumer_stopping(self) -> None:
        self._move("draining")

    def consumer_shutdown(self) -> None:
        self._stop_heartbeats.set()
        if self.machine is not None:
            self._move("offline")

    # Celery signals.

    def before_publish(self, headers: dict[str, Any] | None = None, **_: Any) -> None:
        try:
            if headers is not None:
                headers.setdefault(SENT_AT_HEADER, time.time())
        except Exception:
            log.exception("statescope: before_task_publish")

    def task_prerun(self, sender: Any = None, task_id: str | None = None, **_: Any) -> None:
        if not self._ours(sender) or task_id is None:
            return
        try:
            with self._lock:
                self._started[task_id] = time.time()
                self._active += 1
                first = self._active == 1
                # Under the lock: a transition must be queued in the order the count moved.
                if first:
                    self._move("busy")
        except Exception:
            log.exception("statescope: task_prerun")

    def task_postrun(self, sender: Any = None, task_id: str | None = None, state: str | None = None, **_: Any) -> None:
        if not self._ours(sender) or task_id is None:
            return
        try:
            now = time.time()
            with self._lock:
                started = self._started.pop(task_id, None)
                if started is None:
                    return
                self._active -= 1
                queue_wait = None
                sent_at = _header(sender, SENT_AT_HEADER)
                if sent_at is not None:
                    queue_wait = max(0.0, started - sent_at)
                result: JobResult = "succeeded" if state == "SUCCESS" else "failed"
                self.reporter.job(
                    self.kind, self._name(sender), result, now - started,
                    queue_seconds=queue_wait, labels=self.labels,
                )
                if self._active == 0:
                    self._move("idle")
        except Exception:
            log.exception("statescope: task_postrun")

    def _ours(self, task: Any) -> bool:
        return getattr(task, "app", None) is self.app

    def _name(self, task: Any = None) -> str:
        if self.machine is None:
            host = getattr(getattr(task, "request", None), "hostname", None)
            self.machine = str(host or "celery")
        return self.machine

    def _move(self, state: str) -> None:
        self.reporter.transition(self.kind, self._name(), state, labels=self.labels)

    def _start_heartbeats(self) -> None:
        if self._heartbeats is not None and self._heartbeats.is_alive():
            return
        self._stop_heartbeats.clear()

        def beat() -> None:
            while True:
                self.reporter.heartbeat(self.kind, self._name(), labels=self.labels)
                if self._stop_heartbeats.wait(self.heartbeat_interval):
                    return

        self._heartbeats = threading.Thread(target=beat, name="statescope-heartbeat", daemon=True)
        self._heartbeats.start()


def _header(task: Any, name: str) -> float | None:
    request = getattr(task, "request", None)
    value = getattr(request, name, None)
    if value is None and request is not None:
        headers = getattr(request, "headers", None) or {}
        value = headers.get(name) if isinstance(headers, dict) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def attach(
    app: Any,
    reporter: Reporter,
    *,
    kind: str = WORKER,
    machine: str | None = None,
    worker_type: str | None = None,
    labels: Mapping[str, str] | None = None,
    heartbeat_interval: float = 10.0,
) -> CeleryReporter:
    """Reports ``app``'s workers through ``reporter``. Call it where the app is
    made, before a worker starts (the worker reads its bootsteps at start)."""
    from celery import bootsteps, signals  # type: ignore[import-untyped]

    hooks = CeleryReporter(
        app, reporter, kind=kind, machine=machine, worker_type=worker_type,
        labels=labels, heartbeat_interval=heartbeat_interval,
    )

    class StatescopeStep(bootsteps.StartStopStep):  # type: ignore[misc]
        """Ready when the consumer is: it is then taking tasks."""

        requires = ("celery.worker.consumer.tasks:Tasks",)

        def start(self, c: Any) -> None:
            try:
                hooks.consumer_ready(str(c.hostname))
            except Exception:
                log.exception("statescope: consumer start")

        def stop(self, c: Any) -> None:
            try:
                hooks.consumer_stopping()
            except Exception:
                log.exception("statescope: consumer stop")

        def shutdown(self, c: Any) -> None:
            try:
                hooks.consumer_shutdown()
            except Exception:
                log.exception("statescope: consumer shutdown")

    app.steps["consumer"].add(StatescopeStep)
    # weak=False: the hooks live as long as the app; a weak reference would go with the caller's variable.
    signals.task_prerun.connect(hooks.task_prerun, weak=False)
    signals.task_postrun.connect(hooks.task_postrun, weak=False)
    signals.before_task_publish.connect(hooks.before_publish, weak=False)
    return hooks
