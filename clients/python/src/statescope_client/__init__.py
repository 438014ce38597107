"""Report circuit breakers, workers and custom state machines to a Statescope exporter.

    from statescope_client import Reporter, StatescopeListener
    reporter = Reporter("http://127.0.0.1:9733")
    breaker.add_listener(StatescopeListener(reporter, machine="openai/key-1"))

Adapters: :class:`StatescopeListener` (pybreaker and aiobreaker) and
:func:`statescope_client.celery.attach` (Celery workers).
"""

from .breaker import StatescopeListener, state_name
from .reporter import JobResult, Outcome, Reporter, Stats

__all__ = ["JobResult", "Outcome", "Reporter", "StatescopeListener", "Stats", "state_name"]
