"""Fan-out benchmark: time from commit to receipt of a tier change, for many concurrent
tierChanged subscribers on one machine. Outside the test suite.

Run from the repository root (SQLite in a temporary directory by default):

    .venv/bin/python -m bench.fanout                       # 1 and 1,000 subscribers
    .venv/bin/python -m bench.fanout --subscribers 200 --events 10
    .venv/bin/python -m bench.fanout --compare-rev 4f3107f # also the feed of an older commit
    .venv/bin/python -m bench.fanout --database-url postgres://postgres@127.0.0.1:5432/loyalty_bench_test

What it does, per code version (this tree, and with --compare-rev that commit too):
a fresh database, migrated; one server process (`api.asgi:app` under uvicorn, the
same as `loyalty serve`); a few members. Then, for each subscriber count, it opens that
many graphql-transport-ws connections (admin tokens, so every subscriber gets every
event), subscribes each with `after:` so none can miss an event, waits until all have
received a warm-up event, and then commits `--events` tier overrides one after the
other, each once every subscriber has the previous one.

Latency of one receipt = the client's clock when the message arrived - the event's
effectiveAt (set by the server inside the writing transaction, just before its commit;
both clocks are this machine's). Per event, "all received" is the latency of the last
subscriber to get it. The baseline is the 1-subscriber case of the same run, so the
ratios compare like with like on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tarfile
import io
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from api.auth import mint_token
from api.settings import load_settings
from members.access import Role
from tests.live import ROOT, LiveServer, WsClient, start_server

SECRET = "bench-secret-0123456789-0123456789-0123456789"
ADDRESS = {"country": "CN", "province": "Beijing", "city": "Beijing"}
SUBSCRIPTION = "subscription($after: String) { tierChanged(after: $after) { cursor cardNumber toTier effectiveAt } }"
OVERRIDE = """mutation($input: TierOverrideInput!) {
  tierOverride(input: $input) { tierChange { cursor effectiveAt } userErrors { code message } } }"""
ENROLL = "mutation($input: MemberEnrollInput!) { memberEnroll(input: $input) { member { id } userErrors { message } } }"
TIERS = ["SILVER", "GOLD", "PLATINUM"]


@dataclass
class CaseResult:
    label: str
    subscribers: int
    events: int
    receipts: list[float]  # every (subscriber, event) latency, seconds
    last: list[float]  # per event: latency of the last subscriber
    connect_seconds: float
    server_cpu: float | None  # server CPU seconds (user + system) over the measured events
    server_system: float | None = None  # of which system (kernel: the sockets' sends)

    def pct(self, values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _token(role: Role = Role.ADMIN) -> str:
    settings = load_settings(environ={"LOYALTY_JWT_SECRET": SECRET}, dotenv=None)
    return mint_token(settings, role, "bench", None, 6 * 3600)


def _source_of(rev: str, into: Path) -> Path:
    """The tree of `rev`, extracted (read-only use of the repository)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _migrate(source: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main(['migrate']))"],
        cwd=source, env={**os.environ, **env, "PYTHONPATH": str(source)}, check=True, capture_output=True,
    )


async def _gql(http: httpx.AsyncClient, query: str, variables: dict) -> dict:
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {_token()}"})
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def _override(http: httpx.AsyncClient, member_id: str, tier: str) -> dict:
    data = await _gql(http, OVERRIDE, {"input": {"memberId": member_id, "tier": tier, "reason": "bench"}})
    payload = data["tierOverride"]
    if payload["userErrors"]:
        raise RuntimeError(payload["userErrors"])
    return payload["tierChange"]


# ---- clients -------------------------------------------------------------------------
# Two kinds, chosen with --client. "raw" (the default): a minimal graphql-transport-ws
# client on an asyncio Protocol, which stamps a message's arrival in data_received and
# parses only its JSON, about 10 us a message, so that 1,000 of them in one process
# measure the server rather than themselves. "websockets": the tests' client
# (tests.live.WsClient, the `websockets` library, one reader task per connection, about
# ten times the client CPU a message), as in the runs before 2026-12-02.


class WebsocketsFleet:
    def __init__(self) -> None:
        self.clients: list[WsClient] = []

    async def open(self, server: LiveServer, count: int, token: str, variables: dict) -> None:
        for offset in range(0, count, 100):  # connect in waves, as clients would
            wave = await asyncio.gather(*(WsClient.open(server.ws_url, token, timeout=60) for _ in range(offset, min(count, offset + 100))))
            for client in wave:
                await client.subscribe("s", SUBSCRIPTION, variables)
            self.clients.extend(wave)

    async def received(self, cursor: str, timeout: float) -> list[float]:
        return await asyncio.gather(*(self._receive(c, cursor, timeout) for c in self.clients))

    @staticmethod
    async def _receive(client: WsClient, cursor: str, timeout: float) -> float:
        """When this client received the event `cursor` (earlier events are skipped)."""
        while True:
            message = await client.message("s", timeout)
            if message["type"] != "next" or message["payload"].get("errors"):
                raise RuntimeError(f"subscriber got {message}")
            if message["payload"]["data"]["tierChanged"]["cursor"] == cursor:
                return message["receivedAt"]

    async def close(self) -> None:
        for offset in range(0, len(self.clients), 100):
            await asyncio.gather(*(c.close() for c in self.clients[offset:offset + 100]), return_exceptions=True)


def _client_frame(opcode: int, data: bytes) -> bytes:
    """One masked client frame (RFC 6455 5.3)."""
    size = len(data)
    header = bytes([0x80 | opcode])
    if size < 126:
        header += bytes([0x80 | size])
    elif size < 1 << 16:
        header += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    masked = (int.from_bytes(data, "big") ^ int.from_bytes((mask * (size // 4 + 1))[:size], "big")).to_bytes(size, "big") if size else b""
    return header + mask + masked


@dataclass
class _Arrivals:
    """Per cursor, when each raw client received it; a waiter per cursor for all of them."""

    expected: int
    stamps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    waiting: dict[str, asyncio.Future] = field(default_factory=dict)
    failure: str | None = None

    def got(self, cursor: str, stamp: float) -> None:
        stamps = self.stamps[cursor]
        stamps.append(stamp)
        if len(stamps) >= self.expected and cursor in self.waiting and not self.waiting[cursor].done():
            self.waiting[cursor].set_result(None)

    def fail(self, why: str) -> None:
        self.failure = self.failure or why
        for waiter in self.waiting.values():
            if not waiter.done():
                waiter.set_exception(RuntimeError(why))


class _RawClient(asyncio.Protocol):
    def __init__(self, path: str, host: str, token: str, variables: dict, arrivals: _Arrivals) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        ).encode()
        self.init = json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}).encode()
        self.subscribe = json.dumps({"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": variables}}).encode()
        self.arrivals = arrivals
        self.buffer = bytearray()
        self.upgraded = False
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"connection lost before connection_ack: {exc}"))

    def data_received(self, data: bytes) -> None:
        stamp = time.time()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in buffer[: buffer.find(b"\r\n")]:
                self.ready.set_exception(RuntimeError(f"upgrade refused: {bytes(buffer[:end])!r}"))
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.transport.write(_client_frame(1, self.init))
        while len(buffer) >= 2:
            opcode, size, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + size:
                return
            payload = bytes(buffer[start:start + size])
            del buffer[: start + size]
            if opcode == 1:
                self._message(json.loads(payload), stamp)
            elif opcode == 9:
                self.transport.write(_client_frame(10, payload))
            elif opcode == 8:
                self.arrivals.fail(f"server closed a connection: {payload!r}")

    def _message(self, message: dict, stamp: float) -> None:
        kind = message.get("type")
        if kind == "next" and not message["payload"].get("errors"):
            self.arrivals.got(message["payload"]["data"]["tierChanged"]["cursor"], stamp)
        elif kind == "connection_ack":
            self.transport.write(_client_frame(1, self.subscribe))
            self.ready.set_result(None)
        elif kind != "ping":
            self.arrivals.fail(f"subscriber got {message}")

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_client_frame(8, (1000).to_bytes(2, "big")))
            self.transport.close()


class RawFleet:
    def __init__(self) -> None:
        self.clients: list[_RawClient] = []
        self.arrivals = _Arrivals(0)

    async def open(self, server: LiveServer, count: int, token: str, variables: dict) -> None:
        loop = asyncio.get_running_loop()
        self.arrivals.expected = count
        for offset in range(0, count, 100):  # connect in waves, as clients would
            wave = [_RawClient("/graphql", f"127.0.0.1:{server.port}", token, variables, self.arrivals)
                    for _ in range(offset, min(count, offset + 100))]
            await asyncio.gather(*(loop.create_connection(lambda c=c: c, "127.0.0.1", server.port) for c in wave))
            await asyncio.wait_for(asyncio.gather(*(c.ready for c in wave)), 60)
            self.clients.extend(wave)

    async def received(self, cursor: str, timeout: float) -> list[float]:
        arrivals = self.arrivals
        if arrivals.failure:
            raise RuntimeError(arrivals.failure)
        if len(arrivals.stamps[cursor]) < arrivals.expected:
            arrivals.waiting[cursor] = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(arrivals.waiting[cursor], timeout)
        return arrivals.stamps.pop(cursor)

    async def close(self) -> None:
        for client in self.clients:
            client.close()


FLEETS = {"raw": RawFleet, "websockets": WebsocketsFleet}


async def run_case(server: LiveServer, http: httpx.AsyncClient, members: list[str], subscribers: int, events: int, label: str, client: str = "raw") -> CaseResult:
    start = await _override(http, members[0], "SILVER")
    began = time.perf_counter()
    fleet = FLEETS[client]()
    try:
        await fleet.open(server, subscribers, _token(), {"after": start["cursor"]})
        connect_seconds = time.perf_counter() - began
        warm = await _override(http, members[1], "GOLD")
        await fleet.received(warm["cursor"], 120)
        receipts, last = [], []
        cpu_before = _cpu_seconds(server.process.pid)
        for n in range(events):
            change = await _override(http, members[n % len(members)], TIERS[n % len(TIERS)])
            committed = datetime.fromisoformat(change["effectiveAt"]).timestamp()
            got = await fleet.received(change["cursor"], 120)
            latencies = [received - committed for received in got]
            receipts.extend(latencies)
            last.append(max(latencies))
        cpu_after = _cpu_seconds(server.process.pid)
    finally:
        await fleet.close()
    cpu = system = None
    if cpu_before is not None and cpu_after is not None:
        cpu, system = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
    return CaseResult(label, subscribers, events, receipts, last, connect_seconds, cpu, system)


def _cpu_seconds(pid: int) -> tuple[float, float] | None:
    """CPU time used so far by a process: user + system, and system (Linux; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick


async def bench_source(
    source: Path, label: str, database_url: str | None, counts: list[int], events: int, poll: float | None, client: str = "raw",
) -> list[CaseResult]:
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        env = {
            "DATABASE_URL": database_url or f"sqlite://{Path(tmp) / 'bench.db'}",
            "LOYALTY_JWT_SECRET": SECRET,
        }
        if poll is not None:
            env["LOYALTY_FEED_POLL_SECONDS"] = str(poll)
        if database_url:
            await _recreate(database_url)
        _migrate(source, env)
        server = start_server(env, source=source)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                members = []
                for n in range(6):
                    data = await _gql(http, ENROLL, {"input": {"familyName": "Bench", "givenName": f"M{n}", "address": ADDRESS}})
                    members.append(data["memberEnroll"]["member"]["id"])
                return [await run_case(server, http, members, count, events, label, client) for count in counts]
        finally:
            server.stop()


async def _recreate(url: str) -> None:
    from tests.conftest import _recreate_postgres

    if not url.rsplit("/", 1)[-1].endswith("test"):
        raise SystemExit("the --database-url name must end in 'test' (it is dropped and re-created)")
    await _recreate_postgres(url)


def report(results: list[CaseResult]) -> str:
    ms = 1000.0
    lines = [
        "| code | subscribers | events | receipts | p50 ms | p95 ms | p99 ms | max ms | all received p50 ms | all received max ms | server CPU ms per event | of which system | connect+subscribe s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.subscribers} | {r.events} | {len(r.receipts)} | {r.pct(r.receipts, 50) * ms:.1f} | "
            f"{r.pct(r.receipts, 95) * ms:.1f} | {r.pct(r.receipts, 99) * ms:.1f} | {max(r.receipts) * ms:.1f} | "
            f"{statistics.median(r.last) * ms:.1f} | {max(r.last) * ms:.1f} | "
            f"{'n/a' if r.server_cpu is None else f'{r.server_cpu / r.events * ms:.1f}'} | "
            f"{'n/a' if r.server_system is None else f'{r.server_system / r.events * ms:.1f}'} | {r.connect_seconds:.1f} |"
        )
    baseline = {r.label: r for r in results if r.subscribers == min(x.subscribers for x in results if x.label == r.label)}
    lines += ["", "Ratios against the baseline (fewest subscribers, same code, same run):", "",
              "| code | subscribers | p50 ratio | p95 ratio | all received p50 ratio |", "|---|---:|---:|---:|---:|"]
    for r in results:
        b = baseline[r.label]
        lines.append(
            f"| {r.label} | {r.subscribers} / {b.subscribers} | {r.pct(r.receipts, 50) / b.pct(b.receipts, 50):.1f} | "
            f"{r.pct(r.receipts, 95) / b.pct(b.receipts, 95):.1f} | {statistics.median(r.last) / statistics.median(b.last):.1f} |"
        )
    labels = sorted({r.label for r in results})
    if len(labels) > 1:
        lines += ["", "Ratios of each code version against this tree, same subscriber count:", ""]
        here = {r.subscribers: r for r in results if r.label == "this tree"}
        for r in results:
            if r.label != "this tree" and r.subscribers in here:
                h = here[r.subscribers]
                lines.append(
                    f"- {r.label}, {r.subscribers} subscribers: p50 {r.pct(r.receipts, 50) / h.pct(h.receipts, 50):.1f}x, "
                    f"all received p50 {statistics.median(r.last) / statistics.median(h.last):.1f}x this tree's"
                )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000, help="the loaded case (default 1000); the baseline is 1")
    parser.add_argument("--events", type=int, default=20, help="measured events per case (default 20)")
    parser.add_argument("--database-url", help="a PostgreSQL database to drop and re-create (name ending in 'test')")
    parser.add_argument("--compare-rev", help="also measure the code of this git revision")
    parser.add_argument("--compare-tree", type=Path, help="also measure the code in this directory (a modified copy of the tree)")
    parser.add_argument("--poll-seconds", type=float, help="LOYALTY_FEED_POLL_SECONDS for the servers")
    parser.add_argument("--client", choices=sorted(FLEETS), default="raw",
                        help="raw: a minimal client (default); websockets: the tests' client, as in runs before 2026-12-02")
    args = parser.parse_args()
    counts = [1, args.subscribers]

    async def run() -> list[CaseResult]:
        options = (args.database_url, counts, args.events, args.poll_seconds, args.client)
        results = await bench_source(ROOT, "this tree", *options)
        if args.compare_tree:
            results += await bench_source(args.compare_tree.resolve(), f"tree {args.compare_tree.name}", *options)
        if args.compare_rev:
            with tempfile.TemporaryDirectory(prefix="fanout-rev-") as tmp:
                results += await bench_source(_source_of(args.compare_rev, Path(tmp)), args.compare_rev, *options)
        return results

    print(f"fan-out bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.client} clients, "
          f"load average {os.getloadavg()[0]:.1f} at the start", file=sys.stderr)
    print(report(asyncio.run(run())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
