"""What the request log line and the request metrics cost per request (api.request_log,
api.metrics): the ObserveRequests middleware around a trivial ASGI app, against the
bare app, in the same run, with the log line written (text and JSON) to /dev/null.

    .venv/bin/python bench/request_observe.py [REQUESTS]
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from api.metrics import RequestMetrics
from api.request_log import JsonFormatter, ObserveRequests, TextFormatter, configure_logging

SCOPE = {
    "type": "http", "method": "POST", "path": "/graphql",
    "headers": [(b"content-type", b"application/json"), (b"authorization", b"Bearer x" * 20)],
}
BODY = {"type": "http.request", "body": b"{}", "more_body": False}


async def bare(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"data":{}}'})


async def run(app, n: int) -> float:
    async def receive():
        return BODY

    async def send(message):
        pass

    start = time.perf_counter()
    for _ in range(n):
        await app(SCOPE, receive, send)
    return (time.perf_counter() - start) / n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    configure_logging()  # as a server process does, then to /dev/null
    log = logging.getLogger("loyalty")
    handler = log.handlers[0]
    handler.setStream(open("/dev/null", "w"))
    results = {}
    for name, app, formatter, level in [
        ("bare app", bare, None, logging.WARNING),
        ("+ request id, metrics, no log line (level warning)", ObserveRequests(bare, metrics=RequestMetrics()), None, logging.WARNING),
        ("+ request id, metrics, text log line", ObserveRequests(bare, metrics=RequestMetrics()), TextFormatter(), logging.INFO),
        ("+ request id, metrics, JSON log line", ObserveRequests(bare, metrics=RequestMetrics()), JsonFormatter(), logging.INFO),
    ]:
        log.setLevel(level)
        if formatter is not None:
            handler.setFormatter(formatter)
        asyncio.run(run(app, 1000))  # warm up
        results[name] = min(asyncio.run(run(app, n)) for _ in range(3))
    base = results["bare app"]
    for name, seconds in results.items():
        print(f"{name:<55} {seconds * 1e6:7.1f} us/request  (+{(seconds - base) * 1e6:5.1f} us)")


if __name__ == "__main__":
    main()
