"""A real HTTP receiver for the webhook tests: a partner's endpoint on a loopback port,
in a thread. It verifies every request's signature as a partner would (the snippet of
docs/OPERATIONS.md), and can fail with a status or go down (connection refused) and
come back on the same port."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    id: str
    timestamp: str
    attempt: str
    verified: bool
    body: dict
    answered: int  # the status it answered


@dataclass
class Receiver:
    secret: str = ""
    status: int = 200  # what it answers to a request whose signature verifies
    received: list[Received] = field(default_factory=list)
    # Set: each request waits for it before answering (a stuck endpoint, for the timeout).
    hold: threading.Event | None = None
    # Set by every request it answered (for a test waiting on a dispatcher in a server).
    answered: threading.Event = field(default_factory=threading.Event)
    # Set by every request as it arrives, before any hold (for a test acting while one is in flight).
    arrived: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/loyalty"

    def verify(self, timestamp: str, body: bytes, signature: str) -> bool:
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                timestamp = self.headers.get("Loyalty-Webhook-Timestamp", "")
                verified = receiver.verify(timestamp, body, self.headers.get("Loyalty-Webhook-Signature", ""))
                answer = receiver.status if verified else 401
                receiver.received.append(Received(
                    self.headers.get("Loyalty-Webhook-Id", ""), timestamp, self.headers.get("Loyalty-Webhook-Attempt", ""),
                    verified, json.loads(body), answer,
                ))
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                self.send_response(answer)
                if 300 <= answer < 400:
                    self.send_header("Location", receiver.url)  # a redirect to itself: must not be followed
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.answered.set()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until start() again."""
        if self.hold is not None:
            self.hold.set()  # let a held request end
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def delivered(self) -> list[str]:
        """Ids of the requests it answered 2xx, in the order they came."""
        return [r.id for r in self.received if 200 <= r.answered < 300]
