"""A circuit-breaker listener for pybreaker and aiobreaker.

Both libraries call the same four listener methods (``before_call``,
``success``, ``failure``, ``state_change``), so one class serves both::

    breaker.add_listener(StatescopeListener(reporter, machine="openai/key-1", labels={"provider": "openai"}))

Neither library tells its listeners about calls it refused while open (the
refusal is raised before listeners are called), so ``rejected`` calls are not
reported; every call that ran is, as ``success`` or ``failure`` with the
breaker's own failure count.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .reporter import Reporter

log = logging.getLogger("statescope_client")

CIRCUIT_BREAKER = "circuit_breaker"


def state_name(state: Any) -> str:
    """The exporter's name for a library's state: pybreaker's ``"half-open"``
    and aiobreaker's ``CircuitBreakerState.HALF_OPEN`` are both ``half_open``."""
    if isinstance(state, str):
        name = state
    else:
        inner = getattr(state, "state", None)  # aiobreaker: a state object holding an Enum
        if inner is not None and hasattr(inner, "name"):
            name = inner.name
        elif hasattr(state, "name"):  # pybreaker: a state object with a name; or an Enum
            name = state.name
        else:
            name = str(state)
    return name.strip().lower().replace("-", "_").replace(" ", "_")


class StatescopeListener:
    """Reports a breaker's transitions and calls.

    ``machine`` defaults to the breaker's ``name``. ``kind`` is ``circuit_breaker``
    unless you defined your own kind with the same state names. ``labels`` are
    identity labels (``provider``, ``key_id``, ``worker_type``, ``service``).
    """

    def __init__(
        self,
        reporter: Reporter,
        *,
        kind: str = CIRCUIT_BREAKER,
        machine: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._reporter = reporter
        self._kind = kind
        self._machine = machine
        self._labels = dict(labels) if labels else None
        self._seen: set[int] = set()

    def _name(self, breaker: Any) -> str:
        if self._machine is not None:
            return self._machine
        name = getattr(breaker, "name", None)
        if not name:
            name = f"breaker-{id(breaker):x}"
            log.warning("statescope: a breaker without a name reports as %s; pass machine=", name)
        self._machine = str(name)
        return self._machine

    def _first(self, breaker: Any, machine: str, state: Any) -> None:
        # The first time this listener hears of a breaker, say where it is, so a
        # breaker attached while open is not shown closed, and its labels arrive first.
        if id(breaker) in self._seen:
            return
        self._seen.add(id(breaker))
        self._reporter.transition(self._kind, machine, state_name(state), labels=self._labels)

    def before_call(self, breaker: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        try:
            self._first(breaker, self._name(breaker), breaker.current_state)
        except Exception:
            log.exception("statescope: listener error")

    def success(self, breaker: Any) -> None:
        try:
            machine = self._name(breaker)
            self._reporter.call(self._kind, machine, "success", failure_count=_count(breaker), labels=self._labels)
        except Exception:
            log.exception("statescope: listener error")

    def failure(self, breaker: Any, exc: BaseException) -> None:
        try:
            machine = self._name(breaker)
            self._reporter.call(self._kind, machine, "failure", failure_count=_count(breaker), labels=self._labels)
        except Exception:
            log.exception("statescope: listener error")

    def state_change(self, breaker: Any, old_state: Any, new_state: Any) -> None:
        try:
            machine = self._name(breaker)
            if old_state is not None:
                self._first(breaker, machine, old_state)
            self._seen.add(id(breaker))
            self._reporter.transition(self._kind, machine, state_name(new_state), labels=self._labels)
        except Exception:
            log.exception("statescope: listener error")


def _count(breaker: Any) -> int | None:
    n = getattr(breaker, "fail_counter", None)
    return n if isinstance(n, int) and n >= 0 else None
