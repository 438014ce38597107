"""The real exporter binary, started per test on a free loopback port with a
temporary data directory, and readers of what it holds.

Every request body any reporter sends in these tests is checked against the
event schema generated from the exporter's own types (``clients/event.schema.json``,
kept current by the Rust test ``the_committed_event_schema_is_current``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from statescope_client import reporter as reporter_module

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "clients" / "event.schema.json").read_text())


def exporter_binary() -> Path:
    """Builds the exporter (a no-op when it is current) and returns its path."""
    env_bin = os.environ.get("STATESCOPE_EXPORTER_BIN")
    if env_bin:
        return Path(env_bin)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "statescope-exporter", "--bin", "statescope-exporter"],
        cwd=ROOT, check=True, timeout=900,
    )
    return target / "debug" / "statescope-exporter"


@pytest.fixture(scope="session")
def binary() -> Path:
    path = exporter_binary()
    assert path.exists(), f"no exporter binary at {path}"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Exporter:
    """One exporter process; ``stop()`` and ``start()`` again keep the port and data."""

    def __init__(self, binary: Path, data_dir: Path, extra: list[str] | None = None, scheme: str = "http") -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.extra = extra or []
        self.scheme = scheme
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"exporter-{self.port}.log"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Exporter:
        assert self.proc is None
        args = [str(self.binary), "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir), *self.extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exporter exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("exporter did not start listening in 30 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.proc = None

    def get(self, path: str, accept: str | None = None) -> bytes:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if accept:
            req.add_header("Accept", accept)
        with urllib.request.urlopen(req, timeout=10) as r:
            return bytes(r.read())

    def machines(self, kind: str | None = None) -> dict[str, dict[str, Any]]:
        q = f"?kind={kind}" if kind else ""
        data = json.loads(self.get(f"/api/v1/machines{q}"))
        return {m["machine"]: m for m in data["machines"]}

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample on /metrics, keyed by name and label set."""
        out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for line in self.get("/metrics").decode().splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)", line)
            assert m, line
            labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            out[(m.group(1), labels)] = float(m.group(4))
        return out

    def series(self, name: str, **match: str) -> dict[frozenset[tuple[str, str]], float]:
        """Samples of ``name`` whose labels include ``match``."""
        want = set(match.items())
        return {labels: v for (n, labels), v in self.metrics().items() if n == name and want <= labels}


@pytest.fixture
def exporter(binary: Path, tmp_path: Path) -> Iterator[Exporter]:
    e = Exporter(binary, tmp_path / "data").start()
    yield e
    if e.proc is not None:
        e.stop()


@pytest.fixture
def make_exporter(binary: Path, tmp_path: Path) -> Iterator[Any]:
    made: list[Exporter] = []

    def make(extra: list[str] | None = None, scheme: str = "http") -> Exporter:
        e = Exporter(binary, tmp_path / f"data{len(made)}", extra, scheme)
        made.append(e)
        return e

    yield make
    for e in made:
        if e.proc is not None:
            e.stop()


@pytest.fixture(autouse=True)
def every_payload_matches_the_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Checks each event a reporter puts on the wire against the schema."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems: list[str] = []
    original = reporter_module.Reporter._post

    # Validation is slow (oneOf + unevaluatedProperties) and would starve the
    # sender thread under load: each distinct event is validated once, where
    # distinct means anything but its seq and id (whose form the first one shows).
    seen: set[str] = set()

    def post(self: reporter_module.Reporter, batch: list[Any]) -> Any:
        for q in batch:
            event = json.loads(q.body)
            key = json.dumps({k: v for k, v in event.items() if k not in ("seq", "id")}, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            for error in validator.iter_errors(event):
                problems.append(f"{event}: {error.message}")
        return original(self, batch)

    monkeypatch.setattr(reporter_module.Reporter, "_post", post)
    yield problems
    assert not problems, "events that do not match clients/event.schema.json:\n" + "\n".join(problems[:10])


def breaker_truth() -> Any:
    """A pybreaker/aiobreaker listener that records what the library did."""
    from collections import Counter

    from statescope_client import state_name

    class Truth:
        def __init__(self) -> None:
            self.transitions: Counter[tuple[str, str, str]] = Counter()
            self.calls: Counter[tuple[str, str]] = Counter()

        def before_call(self, cb: Any, func: Any, *a: Any, **k: Any) -> None:
            pass

        def success(self, cb: Any) -> None:
            self.calls[(cb.name, "success")] += 1

        def failure(self, cb: Any, exc: BaseException) -> None:
            self.calls[(cb.name, "failure")] += 1

        def state_change(self, cb: Any, old: Any, new: Any) -> None:
            a, b = state_name(old) if old is not None else "closed", state_name(new)
            if a != b:
                self.transitions[(cb.name, a, b)] += 1

    return Truth()


def assert_exporter_matches(exporter: Exporter, truth: Any, final: dict[str, str]) -> None:
    """The exporter's per-machine state, per-edge transitions and per-outcome calls equal the library's."""
    machines = exporter.machines("circuit_breaker")
    assert {m: machines[m]["state"] for m in final} == final
    got_t = {
        (dict(l)["machine"], dict(l)["from"], dict(l)["to"]): v
        for l, v in exporter.series("statescope_transitions_total", kind="circuit_breaker").items()
        if v
    }
    assert got_t == {k: float(v) for k, v in truth.transitions.items()}
    got_c = {
        (dict(l)["machine"], dict(l)["outcome"]): v
        for l, v in exporter.series("statescope_breaker_calls_total", kind="circuit_breaker").items()
        if v
    }
    assert got_c == {k: float(v) for k, v in truth.calls.items()}
