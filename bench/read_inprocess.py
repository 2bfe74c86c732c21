"""The member read of bench.hotpath driven in process, without sockets (issue 12): the
whole ASGI app (middleware, compiled plan, database) called directly by 16 concurrent
tasks, so that the CPU time per request is the project's alone, without uvicorn, wrk
and the socket writes that the floor pays too. Outside the test suite; a profiling aid
beside bench.hotpath (whose ratios against the floor are the measure).

    .venv/bin/python -m bench.read_inprocess [--requests 20000] [--database-url URL]

SQLite runs on a scratch copy of bench/data/hotpath10k.db (build it with bench.hotpath
first). To compare with another revision in the same minutes, run this file with that
revision's tree first on the path, e.g. from a `git worktree` of it:
`PYTHONPATH=/path/to/old .venv/bin/python bench/read_inprocess.py --database-url
sqlite://$PWD/bench/data/hotpath10k.db` (the old tree's default path has no data set). Under py-spy:
`py-spy record -f raw -o read.txt -- .venv/bin/python -m bench.read_inprocess`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file: the tree on PYTHONPATH first, else this one
    sys.path.append(str(ROOT))

from bench.hotpath import DEFAULT_URL, READ, SAMPLE, SECRET  # noqa: E402
from bench.dataset import is_postgres, sqlite_path  # noqa: E402

CONCURRENCY = 16  # as wrk's connections in bench.hotpath


def _scope(token: str, body: bytes) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/graphql", "raw_path": b"/graphql", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                    (b"authorization", b"Bearer " + token.encode()), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }


async def _run(app, settings, requests: int) -> None:
    from tortoise import connections

    from api.auth import mint_token
    from members.access import Role

    to_app: asyncio.Queue = asyncio.Queue()
    from_app: asyncio.Queue = asyncio.Queue()
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"the app did not start: {started}")
    _, rows = await connections.get("default").execute_query(
        f"SELECT id FROM member WHERE status = 'ACTIVE' ORDER BY id LIMIT {SAMPLE}")
    sample = [(mint_token(settings, Role.MEMBER, str(row[0]), None, 3600),
               json.dumps({"query": READ, "variables": {"id": str(row[0])}}).encode()) for row in rows]
    answers: list[bytes] = []

    async def one(token: str, body: bytes) -> None:
        given = False

        async def receive() -> dict:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # no disconnect while the response is written
            return {}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                answers.append(message["body"])

        await app(_scope(token, body), receive, send)

    for n in range(2 * len(sample)):  # warm up: every token seen, the document compiled
        await one(*sample[n % len(sample)])
    if b'"errors"' in answers[-1]:
        raise SystemExit(f"the read failed: {answers[-1][:300]!r}")

    async def worker(first: int) -> None:
        for n in range(first, requests, CONCURRENCY):
            await one(*sample[n % len(sample)])

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{requests:,} member reads, {CONCURRENCY} at a time: {cpu / requests * 1000:.3f} ms CPU per request "
          f"(the process, its database thread included), {requests / wall:,.0f}/s")
    await to_app.put({"type": "lifespan.shutdown"})
    await from_app.get()
    await lifespan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--database-url", default=DEFAULT_URL, help="the 10k data set of bench.hotpath")
    args = parser.parse_args()
    scratch = None
    url = args.database_url
    if not is_postgres(url):
        scratch = tempfile.mkdtemp(prefix="read-inprocess-")
        copy = Path(scratch) / "read.db"
        shutil.copyfile(sqlite_path(url), copy)
        url = f"sqlite://{copy}"
    os.environ.update(DATABASE_URL=url, LOYALTY_JWT_SECRET=SECRET)
    try:
        from api.app import create_app
        from api.request_log import configure_logging
        from api.settings import load_settings

        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level)
        for handler in logging.getLogger("loyalty").handlers:  # the request lines written, as a server's, to nowhere
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
        asyncio.run(_run(create_app(settings), settings, args.requests))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
