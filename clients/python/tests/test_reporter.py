"""The reporter's promises, each against the real exporter with a fault put in
its way: lost answers, 503 with Retry-After, a full queue, an exporter that
never answers, refusals, TLS and a token."""

from __future__ import annotations

import http.client
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import Exporter, free_port
from statescope_client import Reporter


class FaultyProxy:
    """Forwards POSTs to the exporter. Faults, taken in order, one per request:
    ``"lose"`` forwards the request but hangs up instead of answering (the
    exporter applied it; the reporter cannot know), ``"503"`` answers 503 with
    ``Retry-After: 1`` without forwarding."""

    def __init__(self, upstream: Exporter, faults: list[str]) -> None:
        self.faults = list(faults)
        self.arrivals: list[float] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.arrivals.append(time.monotonic())
                fault = proxy.faults.pop(0) if proxy.faults else None
                if fault == "503":
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                    return
                conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=10)
                conn.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                answer = resp.read()
                conn.close()
                if fault == "lose":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(resp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy_factory() -> Iterator[Any]:
    made: list[FaultyProxy] = []

    def make(upstream: Exporter, faults: list[str]) -> FaultyProxy:
        p = FaultyProxy(upstream, faults)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def calls(exporter: Exporter, machine: str) -> dict[str, int]:
    return dict(exporter.machines()[machine].get("calls") or {})


def test_a_request_whose_answer_was_lost_is_retried_and_counted_once(exporter: Exporter, proxy_factory: Any) -> None:
    proxy = proxy_factory(exporter, ["lose", "lose"])
    reporter = Reporter(proxy.url, linger=0.2, initial_backoff=0.01)
    for _ in range(50):
        reporter.call("circuit_breaker", "db/primary", "failure")
    reporter.transition("circuit_breaker", "db/primary", "open")
    assert reporter.flush(10)
    stats = reporter.stats()
    assert stats.retries == 2 and stats.delivered == 51, stats
    assert stats.duplicates == 51, "the exporter recognised the resent events as retries"
    assert calls(exporter, "db/primary")["failure"] == 50
    assert exporter.machines()["db/primary"]["transitions"] == 1
    reporter.close()


def test_503_with_retry_after_is_waited_for_and_retried(exporter: Exporter, proxy_factory: Any) -> None:
    proxy = proxy_factory(exporter, ["503"])
    reporter = Reporter(proxy.url, initial_backoff=0.01, max_backoff=5)
    reporter.heartbeat("worker", "w-1")
    assert reporter.flush(10)
    assert len(proxy.arrivals) == 2
    waited = proxy.arrivals[1] - proxy.arrivals[0]
    assert waited >= 0.95, f"Retry-After: 1 was not respected (retried after {waited:.2f}s)"
    assert exporter.machines()["w-1"]["last_heartbeat"] is not None
    reporter.close()


def test_a_full_queue_drops_the_oldest_and_counts_them(make_exporter: Any) -> None:
    exporter = make_exporter()  # not started yet: nothing can be delivered
    reporter = Reporter(exporter.url, max_queue=100, batch_size=10, initial_backoff=0.05, max_backoff=0.2)
    started = time.perf_counter()
    for i in range(1000):
        reporter.job("worker", "w-1", "succeeded", float(i))
    spent = time.perf_counter() - started
    stats = reporter.stats()
    assert stats.enqueued == 1000 and stats.queued <= 110, stats
    assert stats.dropped == 1000 - stats.queued
    exporter.start()
    assert reporter.flush(20)
    stats = reporter.stats()
    assert stats.delivered + stats.dropped == 1000
    assert exporter.machines()["w-1"]["jobs"]["succeeded"] == stats.delivered
    # The newest events are the ones kept: the last job (999 s) is among them.
    s = exporter.series("statescope_worker_job_duration_seconds_sum", kind="worker")
    assert list(s.values())[0] >= 999
    print(f"\n1000 events queued against a dead exporter in {spent * 1000:.1f} ms")
    reporter.close()


def test_close_gives_up_on_an_exporter_that_never_answers() -> None:
    # A listening socket nobody accepts from: connections open, requests hang.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    try:
        reporter = Reporter(f"http://127.0.0.1:{hole.getsockname()[1]}", timeout=30)
        worst = 0.0
        for _ in range(2000):
            t = time.perf_counter()
            reporter.call("circuit_breaker", "x", "success")
            worst = max(worst, time.perf_counter() - t)
        t = time.perf_counter()
        delivered = reporter.close(timeout=1.0)
        took = time.perf_counter() - t
        assert not delivered
        assert took < 2.0, f"close(timeout=1) took {took:.2f}s"
        assert worst < 0.5, f"a reporting call took {worst:.3f}s"
        reporter.call("circuit_breaker", "x", "success")  # after close: dropped, not raised
        assert reporter.stats().enqueued == 2000
    finally:
        hole.close()


def test_refusals_are_permanent_and_drop_only_the_refused_event(exporter: Exporter) -> None:
    reporter = Reporter(exporter.url)
    reporter.heartbeat("worker", "w-1")
    reporter.heartbeat("no_such_kind", "w-2")  # 422, named by index
    reporter.transition("worker", "w-1", "nowhere")  # 422
    reporter.transition("worker", "w-1", "idle")
    assert reporter.flush(10)
    stats = reporter.stats()
    assert stats.rejected == 2 and stats.delivered == 2 and stats.retries == 0, stats
    assert exporter.machines()["w-1"]["state"] == "idle"
    reporter.close()


def test_a_wrong_token_is_not_retried(make_exporter: Any, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token-of-some-length\n")
    exporter = make_exporter(["--token-file", str(token)]).start()
    wrong = Reporter(exporter.url, token="not-the-token-at-all")
    wrong.heartbeat("worker", "w-1")
    assert wrong.flush(10)
    assert wrong.stats().rejected == 1 and wrong.stats().retries == 0
    right = Reporter(exporter.url, token="s3cret-token-of-some-length")
    right.heartbeat("worker", "w-1")
    assert right.flush(10) and right.stats().delivered == 1
    assert list(exporter.machines()) == ["w-1"]
    wrong.close()
    right.close()


def test_https_with_a_ca_file_and_a_token(make_exporter: Any, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=statescope-test",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    token = tmp_path / "token"
    token.write_text("a-token-for-the-tls-test")
    exporter = make_exporter(
        ["--tls-cert", str(cert), "--tls-key", str(key), "--token-file", str(token)], scheme="https"
    ).start()
    untrusted = Reporter(exporter.url, token="a-token-for-the-tls-test", initial_backoff=0.05)
    untrusted.heartbeat("worker", "w-tls")
    assert not untrusted.flush(1.0), "a certificate the system does not trust must not be accepted"
    untrusted.close(0.1)
    reporter = Reporter(exporter.url, token="a-token-for-the-tls-test", ca_file=str(cert))
    reporter.heartbeat("worker", "w-tls", labels={"worker_type": "gpu"})
    assert reporter.flush(10), reporter.stats()
    import json
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(cert))
    with urllib.request.urlopen(f"{exporter.url}/api/v1/machines", context=ctx, timeout=10) as r:
        machines = json.loads(r.read())["machines"]
    assert [(m["machine"], m["labels"]) for m in machines] == [("w-tls", {"worker_type": "gpu"})]
    reporter.close()


def test_bad_arguments_never_raise_into_the_caller(exporter: Exporter) -> None:
    reporter = Reporter(exporter.url)
    reporter.job("worker", "w-1", "succeeded", float("nan"), queue_seconds=-5)
    reporter.job("worker", "w-1", "succeeded", "soon")  # type: ignore[arg-type]
    reporter.call("circuit_breaker", "b", "success", labels={"provider": object()})  # type: ignore[dict-item]
    assert reporter.flush(10)
    stats = reporter.stats()
    assert stats.errors == 1 and stats.delivered == 2, stats
    assert exporter.machines()["w-1"]["jobs"]["succeeded"] == 1
    reporter.close()


def test_a_machine_cap_drops_the_event_that_would_pass_it_after_retries(make_exporter: Any, tmp_path: Path) -> None:
    config = tmp_path / "statescope.toml"
    config.write_text("[limits]\nmax_machines = 2\n")
    exporter = make_exporter(["--config", str(config)]).start()
    reporter = Reporter(exporter.url, linger=0.2, initial_backoff=0.01, max_backoff=0.05)
    for name in ("w-1", "w-2", "w-3"):
        reporter.heartbeat("worker", name)
    reporter.transition("worker", "w-1", "idle")
    assert reporter.flush(10)
    stats = reporter.stats()
    assert stats.rejected == 1 and stats.delivered == 3 and stats.retries == 3, stats
    assert sorted(exporter.machines()) == ["w-1", "w-2"]
    assert exporter.machines()["w-1"]["state"] == "idle"
    reporter.close()
