"""A real server for WebSocket tests and benchmarks: uvicorn in a subprocess on a free
loopback port, and a small graphql-transport-ws client.

The port is bound here, in the parent, and the listening socket is handed to the
child by file descriptor, so there is no race for a "free" port. `send_buffer` sets
SO_SNDBUF on that socket (connections accepted from it inherit it), so that a test
can make a client that stops reading slow to the server after a few kilobytes
instead of after the kernel's megabytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
# Run in the child: serve the app (api.asgi:app; settings from the environment) on the
# inherited socket, with the options of `loyalty serve`.
_CHILD = (
    "import socket, sys, uvicorn\n"
    "from api.cli import UVICORN_OPTIONS\n"
    "sock = socket.socket(fileno=int(sys.argv[1]))\n"
    "config = uvicorn.Config(sys.argv[3], log_level=sys.argv[2], **UVICORN_OPTIONS)\n"
    "uvicorn.Server(config).run(sockets=[sock])\n"
)
PROTOCOL = "graphql-transport-ws"
# The same steps in the older graphql-ws protocol (Apollo's subscriptions-transport-ws).
_MESSAGES = {
    "graphql-transport-ws": {"subscribe": "subscribe", "next": "next"},
    "graphql-ws": {"subscribe": "start", "next": "data"},
}


@dataclass
class LiveServer:
    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    env: Mapping[str, str], *, send_buffer: int | None = None, source: Path = ROOT, log_level: str = "warning",
    ready_timeout: float = 30.0, app: str = "api.asgi:app", output: int | None = None,
) -> LiveServer:
    """Start `app` from `source` with these settings; return once /healthz answers.
    `output` (e.g. subprocess.DEVNULL) takes the server's stdout and stderr."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    port = listener.getsockname()[1]
    # The app's request log at the same level as uvicorn's (a line per request at "info").
    child_env = {"LOYALTY_LOG_LEVEL": log_level, **os.environ, **env, "PYTHONPATH": str(source)}
    process = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(listener.fileno()), log_level, app],
        env=child_env, cwd=source, pass_fds=[listener.fileno()], stdout=output, stderr=output,
    )
    listener.close()  # the child holds it now
    server = LiveServer(process, port)
    deadline = time.monotonic() + ready_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"server not ready after {ready_timeout} s")
        time.sleep(0.05)  # start-up polling, not test timing


class WsClosed(Exception):
    """The server closed the connection; `code` and `reason` say why."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed with {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass
class WsClient:
    """One graphql-transport-ws connection. Messages of every operation are kept per id."""

    connection: ClientConnection
    protocol: str
    inbox: dict[str, asyncio.Queue] = field(default_factory=dict)
    reader: asyncio.Task | None = None
    closed: WsClosed | None = None

    @classmethod
    async def open(
        cls, url: str, token: str | None, *, protocol: str = PROTOCOL, receive_buffer: int | None = None,
        timeout: float = 10.0, reading: bool = True,
    ) -> WsClient:
        """Connect and send connection_init with the token; raise WsClosed if refused.
        With `reading=False` nothing is read after the ack until start_reading()."""
        sock = None
        if receive_buffer is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            host, port = url.removeprefix("ws://").split("/")[0].split(":")
            sock.connect((host, int(port)))
        connection = await connect(
            url, subprotocols=[protocol], sock=sock, open_timeout=timeout,
            # Stop reading from the socket after one unread message, so that a client
            # that does not read pushes back on the server at once.
            max_queue=1 if receive_buffer is not None else 1024,
        )
        client = cls(connection, protocol)
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            reply = json.loads(await asyncio.wait_for(connection.recv(), timeout))
        except Exception as error:  # noqa: BLE001 - the server refused: say how
            from websockets.exceptions import ConnectionClosed

            if isinstance(error, ConnectionClosed) and error.rcvd is not None:
                raise WsClosed(error.rcvd.code, error.rcvd.reason) from None
            raise
        if reply.get("type") == "connection_error":  # graphql-ws refuses this way, then closes
            await asyncio.wait_for(connection.wait_closed(), timeout)
            raise WsClosed(connection.close_code, json.dumps(reply.get("payload")))
        if reply.get("type") != "connection_ack":
            raise AssertionError(f"expected connection_ack, got {reply}")
        if reading:
            client.start_reading()
        return client

    def start_reading(self) -> None:
        if self.reader is None:
            self.reader = asyncio.create_task(self._read())

    async def stop_reading(self) -> None:
        """Read nothing more until start_reading(): the server's sends back up."""
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
            self.reader = None

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.connection:
                message = json.loads(raw)
                message["receivedAt"] = time.time()  # for latency measurements (bench/)
                self.inbox.setdefault(message.get("id", ""), asyncio.Queue()).put_nowait(message)
        except ConnectionClosed:
            pass
        self.closed = WsClosed(self.connection.close_code, self.connection.close_reason or "")
        for queue in self.inbox.values():
            queue.put_nowait(None)

    async def subscribe(self, id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        self.inbox.setdefault(id, asyncio.Queue())
        kind = _MESSAGES[self.protocol]["subscribe"]
        await self.connection.send(json.dumps({"id": id, "type": kind, "payload": {"query": query, "variables": variables or {}}}))

    async def message(self, id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message of operation `id` (next, error or complete); WsClosed when
        the connection closed first, TimeoutError when none came in `timeout` s."""
        queue = self.inbox.setdefault(id, asyncio.Queue())
        if self.closed is not None and queue.empty():
            raise self.closed
        message = await asyncio.wait_for(queue.get(), timeout)
        if message is None:
            queue.put_nowait(None)
            raise self.closed
        return message

    async def event(self, id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The payload of the next `next` message of `id` (its data and any errors)."""
        message = await self.message(id, timeout)
        assert message["type"] == _MESSAGES[self.protocol]["next"], message
        return message["payload"]

    async def close(self) -> None:
        await self.connection.close()
        if self.reader is not None:
            await self.reader
            self.reader = None
