"""The reporter: queues events in the caller's thread, sends them from one
background thread in batches, retries what the exporter did not acknowledge.

The caller's side (``transition``, ``call``, ``heartbeat``, ``job``) only takes
a lock long enough to append to a bounded deque, so it never waits on the
network and never raises: a reporting library must not be the thing that takes
a service down. Everything that goes wrong is counted in :class:`Stats` and
logged on the ``statescope_client`` logger.
"""

from __future__ import annotations

import atexit
import http.client
import json
import logging
import os
import random
import ssl
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

log = logging.getLogger("statescope_client")

Outcome = Literal["success", "failure", "timeout", "rejected"]
JobResult = Literal["succeeded", "failed"]

# Statuses worth sending again: the exporter is overloaded, restarting, or cannot write its log.
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
_PATH = "/api/v1/events"
# Retries of a 429 that names one event (a machine or label-value cap) before that event is dropped.
_CAP_RETRIES = 3


@dataclass(frozen=True)
class Stats:
    """Counters since the reporter was made. ``queued`` is a gauge."""

    enqueued: int
    """Events accepted from the caller."""
    delivered: int
    """Events the exporter acknowledged (applied, unchanged or recognised as a retry)."""
    duplicates: int
    """Of ``delivered``, events the exporter had already applied: a retry of a request whose answer was lost."""
    dropped: int
    """Events dropped because the queue was full (the oldest go first), or left undelivered by ``close()``."""
    rejected: int
    """Events the exporter refused for good (4xx other than 408/429): never retried."""
    retries: int
    """Requests sent again after a connection error or a retryable status."""
    errors: int
    """Caller-side errors swallowed (a bug in what was passed, e.g. labels that are not strings)."""
    queued: int
    """Events waiting to be sent, including a batch in flight."""


class Reporter:
    """Sends state transitions, calls, heartbeats and jobs to a Statescope exporter.

    ``url`` is the exporter's base URL (``http://127.0.0.1:9733``; ``https://`` for TLS,
    verified against the system's CAs or ``ca_file``). ``token`` is its bearer token.

    At most ``max_queue`` events wait; beyond that the oldest are dropped and
    counted. Events go out in requests of at most ``batch_size`` (the exporter
    takes 1000), after waiting up to ``linger`` seconds for company. Each event
    carries an ``id`` unique to this reporter and a per-machine ``seq`` (microseconds
    since the epoch, strictly increasing per machine, so a restarted service's
    events are still newer than its last run's), so the exporter applies a retried
    request once.

    Refusals the exporter marks with the event's ``index`` (400, 409, 422) drop that
    event alone and send the rest again; other 4xx drop the request; 408, 429, 5xx
    and connection errors are retried with exponential backoff (``Retry-After`` is
    respected, up to ``max_backoff``) until the exporter answers or ``close()`` gives up,
    except a 429 naming one event (a cap on machines or label values), which drops that
    event after three retries so it does not hold up the others.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        max_queue: int = 10_000,
        batch_size: int = 500,
        linger: float = 0.05,
        timeout: float = 5.0,
        initial_backoff: float = 0.1,
        max_backoff: float = 5.0,
        close_on_exit: float | None = 2.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"exporter URL must be http:// or https://host[:port], got {url!r}")
        if max_queue < 1 or not 1 <= batch_size <= 1000:
            raise ValueError("max_queue must be positive and batch_size 1..1000")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path.rstrip("/") + _PATH
        self._ssl: ssl.SSLContext | None = None
        if self._https:
            self._ssl = ssl.create_default_context(cafile=ca_file)
        elif ca_file is not None:
            raise ValueError("ca_file is for an https:// URL")
        self._headers = {"Content-Type": "application/json", "User-Agent": "statescope-client-python"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._linger = linger
        self._timeout = timeout
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[_Queued] = deque()
        self._in_flight = 0
        # Per machine: last seq given and the labels it carries.
        self._machines: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
        self._prefix = uuid.uuid4().hex[:12]
        self._next_id = 0
        self._counts = {k: 0 for k in ("enqueued", "delivered", "duplicates", "dropped", "rejected", "retries", "errors")}
        self._closing = False
        # Events close() gave up on.
        self._lost = 0
        self._give_up_at: float | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._down_since: float | None = None
        self._thread = self._start()
        if close_on_exit is not None:
            grace = close_on_exit
            ref = weakref.ref(self)

            def _close_at_exit() -> None:
                r = ref()
                if r is not None:
                    r.close(grace)

            atexit.register(_close_at_exit)
        if hasattr(os, "register_at_fork"):
            ref2 = weakref.ref(self)

            def _after_fork() -> None:
                r = ref2()
                if r is not None:
                    r._reset_after_fork()

            os.register_at_fork(after_in_child=_after_fork)

    # ---- the caller's side: never blocks on I/O, never raises ----

    def transition(self, kind: str, machine: str, to: str, *, labels: Mapping[str, str] | None = None) -> None:
        """The machine moved to state ``to`` (reporting the current state again is harmless)."""
        self._enqueue(kind, machine, labels, {"type": "transition", "to": to})

    def call(
        self,
        kind: str,
        machine: str,
        outcome: Outcome,
        *,
        failure_count: int | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """A call through a breaker ended with ``outcome``; ``failure_count`` is the library's own count, if it has one."""
        body: dict[str, Any] = {"type": "call", "outcome": outcome}
        if failure_count is not None:
            body["failure_count"] = failure_count
        self._enqueue(kind, machine, labels, body)

    def heartbeat(self, kind: str, machine: str, *, labels: Mapping[str, str] | None = None) -> None:
        """The machine is alive (kinds with a heartbeat-lost state go there when these stop)."""
        self._enqueue(kind, machine, labels, {"type": "heartbeat"})

    def job(
        self,
        kind: str,
        machine: str,
        result: JobResult,
        duration_seconds: float,
        *,
        queue_seconds: float | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """A worker finished a job. Times are clamped to 0..one year, the exporter's range."""
        body: dict[str, Any] = {"type": "job", "result": result, "duration_seconds": duration_seconds}
        if queue_seconds is not None:
            body["queue_seconds"] = queue_seconds
        self._enqueue(kind, machine, labels, body)

    def _enqueue(self, kind: str, machine: str, labels: Mapping[str, str] | None, body: dict[str, Any]) -> None:
        try:
            fresh = {str(k): str(v) for k, v in labels.items()} if labels else None
            for field in ("duration_seconds", "queue_seconds"):
                if field in body:
                    body[field] = _seconds(body[field])
            with self._lock:
                if self._closing:
                    self._counts["dropped"] += 1
                    return
                key = (kind, machine)
                last, known = self._machines.get(key, (0, {}))
                if fresh is not None:
                    known = fresh
                # Microseconds since the epoch, strictly increasing per machine: newer
                # than anything this machine sent in an earlier run of the service.
                seq = max(last + 1, time.time_ns() // 1000)
                self._machines[key] = (seq, known)
                self._next_id += 1
                event = {"kind": kind, "machine": machine, **body, "seq": seq, "id": f"{self._prefix}-{self._next_id}"}
                if known:
                    # On every event: labels take effect from the first event that has them.
                    event["labels"] = known
                # Encoded here, so a value JSON cannot hold fails in the caller's call
                # (counted, logged) rather than taking a whole batch down in the sender.
                item = _Queued(json.dumps(event, separators=(",", ":"), allow_nan=False).encode(), event)
                if len(self._queue) >= self._max_queue:
                    self._queue.popleft()
                    self._counts["dropped"] += 1
                self._queue.append(item)
                self._counts["enqueued"] += 1
                if len(self._queue) >= self._batch_size:
                    self._wake.notify()
                elif len(self._queue) == 1:
                    self._wake.notify()
        except Exception:  # a reporter must never break the service it watches
            with self._lock:
                self._counts["errors"] += 1
            log.exception("statescope: could not queue an event for %s/%s", kind, machine)

    # ---- control ----

    def stats(self) -> Stats:
        with self._lock:
            return Stats(queued=len(self._queue) + self._in_flight, **self._counts)

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until every queued event was delivered or refused; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._wake.notify_all()
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._wake.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Sends what is queued, for at most ``timeout`` seconds, then stops.

        Events still undelivered then are counted as dropped, and so are later
        ones. True if everything queued was delivered or refused. Safe to call twice.
        """
        with self._lock:
            if not self._closing:
                self._closing = True
                self._give_up_at = time.monotonic() + max(0.0, timeout)
            self._wake.notify_all()
        # A request in flight may outlast the deadline (it has its own timeout);
        # the daemon thread finishes it alone, and the caller does not wait.
        self._thread.join(max(0.0, timeout) + 0.1)
        with self._lock:
            if self._thread.is_alive():
                self._lost += len(self._queue) + self._in_flight
                self._counts["dropped"] += len(self._queue)
                self._queue.clear()
            return self._lost == 0

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> threading.Thread:
        t = threading.Thread(target=self._run, name="statescope-reporter", daemon=True)
        t.start()
        return t

    def _reset_after_fork(self) -> None:
        # The child has a copy of the queue but no sender thread, and the lock may
        # have been held by the parent's sender at the fork. Start clean; the
        # parent sends what was queued before the fork.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue = deque()
        self._in_flight = 0
        self._conn = None
        self._prefix = uuid.uuid4().hex[:12]
        if not self._closing:
            self._thread = self._start()

    # ---- the sender thread ----

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if not self._queue:
                    break  # closing, nothing left
                if not self._closing and len(self._queue) < self._batch_size and self._linger > 0:
                    # Let a burst gather into one request.
                    self._wake.wait(self._linger)
                n = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
                self._in_flight = n
            try:
                self._deliver(batch)
            except Exception:
                log.exception("statescope: sender error; %d events dropped", len(batch))
                with self._lock:
                    self._counts["dropped"] += len(batch)
            with self._lock:
                self._in_flight = 0
                self._wake.notify_all()
                if self._gave_up():
                    self._lost += len(self._queue)
                    self._counts["dropped"] += len(self._queue)
                    self._queue.clear()
                    break
        if self._conn is not None:
            self._conn.close()

    def _gave_up(self) -> bool:
        return self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def _count(self, name: str, n: int) -> None:
        with self._lock:
            self._counts[name] += n

    def _deliver(self, batch: list[_Queued]) -> None:
        attempt = 0
        while batch:
            try:
                status, answer, retry_after = self._post(batch)
            except (OSError, http.client.HTTPException) as e:
                status, answer, retry_after = 0, {"error": f"{type(e).__name__}: {e}"}, None
            if status == 200:
                if self._down_since is not None:
                    log.info("statescope: exporter reachable again after %.1fs", time.monotonic() - self._down_since)
                    self._down_since = None
                self._count("delivered", len(batch))
                self._count("duplicates", int(answer.get("duplicates", 0) or 0))
                return
            index = answer.get("index")
            if status in (400, 409, 422) and isinstance(index, int) and 0 <= index < len(batch):
                # The request is all or nothing: drop the one refused event, send the rest.
                bad = batch.pop(index).event
                self._count("rejected", 1)
                log.warning(
                    "statescope: exporter refused %s event for %s/%s (%d): %s",
                    bad["type"], bad["kind"], bad["machine"], status, answer.get("error"),
                )
                continue
            if status == 413 and len(batch) > 1:
                half = len(batch) // 2
                self._deliver(batch[:half])
                batch = batch[half:]
                continue
            if status == 429 and isinstance(index, int) and 0 <= index < len(batch) and attempt >= _CAP_RETRIES:
                # A cap on machines or label values, named by the event that would pass it:
                # waiting seldom lifts it, and it must not hold up every event behind it.
                bad = batch.pop(index).event
                self._count("rejected", 1)
                attempt = 0
                log.warning(
                    "statescope: exporter still at a limit after %d tries; dropped %s event for %s/%s: %s",
                    _CAP_RETRIES + 1, bad["type"], bad["kind"], bad["machine"], answer.get("error"),
                )
                continue
            if status != 0 and status not in _RETRYABLE:
                self._count("rejected", len(batch))
                log.warning("statescope: exporter refused %d events (%d): %s", len(batch), status, answer.get("error"))
                return
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("statescope: exporter unavailable (%s); retrying, events stay queued",
                            status or answer.get("error"))
            if self._gave_up():
                with self._lock:
                    self._lost += len(batch)
                    self._counts["dropped"] += len(batch)
                return
            delay = min(self._max_backoff, self._initial_backoff * 2**attempt)
            delay = random.uniform(delay / 2, delay)
            if retry_after is not None:
                delay = min(self._max_backoff, max(delay, retry_after))
            if self._give_up_at is not None:
                delay = min(delay, max(0.0, self._give_up_at - time.monotonic()))
            attempt += 1
            self._count("retries", 1)
            with self._lock:
                # Woken early by close(): its deadline is checked above.
                self._wake.wait(delay)

    def _post(self, batch: list[_Queued]) -> tuple[int, dict[str, Any], float | None]:
        body = b'{"events":[' + b",".join(q.body for q in batch) + b"]}"
        conn = self._conn
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._conn = conn
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            resp = conn.getresponse()
            data = resp.read()
            retry_after = _retry_after(resp.getheader("Retry-After"))
        except BaseException:
            conn.close()
            self._conn = None
            raise
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            self._conn = None
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {"error": data[:200].decode(errors="replace")}
        if not isinstance(answer, dict):
            answer = {}
        return resp.status, answer, retry_after


@dataclass(frozen=True)
class _Queued:
    body: bytes
    event: dict[str, Any]


def _seconds(value: float) -> float:
    v = float(value)
    if v != v:  # NaN: no duration known
        return 0.0
    return min(max(v, 0.0), 31_536_000.0)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the exporter sends seconds; backoff decides
