#!/usr/bin/env python3
"""The hostile storm of bench/soak.sh, against a running exporter on loopback.

    soak.py seed  --url URL --machines N
    soak.py storm --url URL --pid PID --seconds T --readers N --slowloris M --posters K [--batch B]
    soak.py count --url URL

`storm` runs, all at once and for T seconds: N clients that ask for /metrics
and never read the answer, M slowloris sockets (half send their headers a
byte every 2 s, half declare a body and send it a byte every 2 s), K
connections posting batches of B breaker calls as fast as they are answered
(honouring Retry-After up to 1 s), and a /healthz probe every 100 ms on a new
connection. It samples the exporter's RSS every 100 ms and prints one JSON
object: RSS (idle before the storm, peak), /healthz latencies (idle before the
storm and during it), answers to the posters by status, and the events
acknowledged (answered 200) and ambiguous (no answer: they may or may not have
been applied). `count` prints the calls the exporter holds for the posters'
machines, read from /metrics (after a kill -9 and restart).

Standard library only; every socket is on loopback and everything stops by
itself after T seconds.
"""

import argparse
import asyncio
import json
import re
import socket
import time
import urllib.request
from urllib.parse import urlsplit

SOAK_PREFIX = "soak-"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def host_port(url):
    u = urlsplit(url)
    return u.hostname, u.port


def post_json(url, body):
    req = urllib.request.Request(
        url + "/api/v1/events",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def seed(url, machines):
    """Creates a fleet so that /metrics answers are as big as a real fleet's."""
    for start in range(0, machines, 500):
        events = [
            {"type": "call", "kind": "circuit_breaker", "machine": f"fleet-{i:06d}", "outcome": "success"}
            for i in range(start, min(machines, start + 500))
        ]
        post_json(url, {"events": events})


async def read_response(reader):
    """Status and Retry-After of one HTTP/1.1 response; reads its body."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, chunked, retry_after = 0, False, None
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "retry-after":
            try:
                retry_after = float(value)
            except ValueError:
                pass
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status, retry_after


class Storm:
    def __init__(self, args):
        self.args = args
        self.host, self.port = host_port(args.url)
        self.stop_at = 0.0
        self.answers = {}
        self.acknowledged = 0
        self.ambiguous = 0
        self.healthz_ms = []
        self.healthz_failed = 0
        self.rss_peak = 0
        self.slowloris_closed = 0

    def running(self):
        return time.monotonic() < self.stop_at

    def tally(self, key, n=1):
        self.answers[key] = self.answers.get(key, 0) + n

    async def sample_rss(self):
        while self.running():
            self.rss_peak = max(self.rss_peak, rss_kib(self.args.pid))
            await asyncio.sleep(0.1)

    async def probe_healthz(self, into, until):
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 5)
                try:
                    writer.write(b"GET /healthz HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
                    status, _ = await asyncio.wait_for(read_response(reader), 5)
                finally:
                    writer.close()
                if status != 200:
                    raise ConnectionError(status)
                into.append((time.monotonic() - started) * 1000)
            except (OSError, asyncio.TimeoutError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError):
                self.healthz_failed += 1
                into.append((time.monotonic() - started) * 1000)
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - started)))

    async def non_reader(self, sockets):
        """Asks for /metrics and never reads: the answer waits in the server."""
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(s, (self.host, self.port)), 5)
            await asyncio.get_running_loop().sock_sendall(s, b"GET /metrics HTTP/1.1\r\nHost: soak\r\n\r\n")
            sockets.append(s)
        except (OSError, asyncio.TimeoutError):
            self.tally("reader connect failed")
            s.close()

    async def slowloris(self, i):
        body = i % 2 == 1
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 5)
        except (OSError, asyncio.TimeoutError):
            self.tally("slowloris connect failed")
            return
        head = b"POST /api/v1/events HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
        try:
            if body:
                writer.write(head + b"Content-Length: 100000\r\n\r\n")
                drip = b"["
            else:
                writer.write(b"POST /api/v1/events HTTP/1.1\r\n")
                drip = b"X"
            while self.running():
                await writer.drain()
                await asyncio.sleep(2)
                if reader.at_eof():
                    raise ConnectionError("closed")
                writer.write(drip)
        except (OSError, ConnectionError):
            self.slowloris_closed += 1
        finally:
            writer.close()

    async def poster(self, k):
        machines = [f"{SOAK_PREFIX}{k:03d}-{m}" for m in range(10)]
        batch = self.args.batch
        n = 0
        writer = None
        while self.running():
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 5)
                events = [
                    {"type": "call", "kind": "circuit_breaker", "machine": machines[(n + j) % 10], "outcome": "success"}
                    for j in range(batch)
                ]
                n += batch
                body = json.dumps({"events": events}).encode()
                writer.write(
                    b"POST /api/v1/events HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                try:
                    status, retry_after = await asyncio.wait_for(read_response(reader), 10)
                except (OSError, asyncio.TimeoutError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError):
                    # Sent, never answered: it may or may not have been applied.
                    self.ambiguous += batch
                    self.tally("no answer")
                    writer.close()
                    writer = None
                    continue
                self.tally(str(status))
                if status == 200:
                    self.acknowledged += batch
                elif retry_after is not None:
                    await asyncio.sleep(min(retry_after, 1.0))
            except (OSError, asyncio.TimeoutError):
                self.tally("connect failed")
                writer = None
                await asyncio.sleep(0.1)
        if writer is not None:
            writer.close()

    async def run(self):
        a = self.args
        idle_ms = []
        rss_idle = rss_kib(a.pid)
        await self.probe_healthz(idle_ms, time.monotonic() + 2)
        self.healthz_failed = 0
        self.stop_at = time.monotonic() + a.seconds
        readers = []
        tasks = [asyncio.create_task(self.sample_rss())]
        tasks += [asyncio.create_task(self.non_reader(readers)) for _ in range(a.readers)]
        tasks += [asyncio.create_task(self.slowloris(i)) for i in range(a.slowloris)]
        tasks += [asyncio.create_task(self.poster(k)) for k in range(a.posters)]
        tasks.append(asyncio.create_task(self.probe_healthz(self.healthz_ms, self.stop_at)))
        await asyncio.gather(*tasks)
        for s in readers:
            s.close()
        return {
            "rss_idle_kib": rss_idle,
            "rss_peak_kib": self.rss_peak,
            "healthz_idle_p99_ms": round(percentile(idle_ms, 0.99), 1),
            "healthz_p50_ms": round(percentile(self.healthz_ms, 0.5), 1),
            "healthz_p99_ms": round(percentile(self.healthz_ms, 0.99), 1),
            "healthz_max_ms": round(max(self.healthz_ms), 1),
            "healthz_probes": len(self.healthz_ms),
            "healthz_failed": self.healthz_failed,
            "answers": dict(sorted(self.answers.items())),
            "slowloris_closed_by_server": self.slowloris_closed,
            "events_acknowledged": self.acknowledged,
            "events_ambiguous": self.ambiguous,
        }


def count(url):
    """Breaker calls the exporter holds for the posters' machines."""
    text = urllib.request.urlopen(url + "/metrics", timeout=60).read().decode()
    pattern = re.compile(r'^statescope_breaker_calls_total\{[^}]*machine="' + SOAK_PREFIX + r'[^}]*outcome="success"[^}]*\} (\S+)$')
    total = 0
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            total += int(float(m.group(1)))
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["seed", "storm", "count"])
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int)
    p.add_argument("--machines", type=int, default=0)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--readers", type=int, default=100)
    p.add_argument("--slowloris", type=int, default=200)
    p.add_argument("--posters", type=int, default=64)
    p.add_argument("--batch", type=int, default=10)
    a = p.parse_args()
    host, _ = host_port(a.url)
    if not host.startswith("127."):
        p.error("the soak runs on loopback only")
    if a.command == "seed":
        seed(a.url, a.machines)
    elif a.command == "count":
        print(count(a.url))
    else:
        print(json.dumps(asyncio.run(Storm(a).run())))


if __name__ == "__main__":
    main()
