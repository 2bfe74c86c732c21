"""Hot-path benchmark (issue 12): a member's read of itself by id and a flightAccrue over
HTTP, the project against a "floor" doing the same SQL with nothing around it.
Outside the test suite.

Run from the repository root (needs `wrk`: apt-get install -y wrk):

    .venv/bin/python -m bench.hotpath                        # SQLite, bench/data/hotpath10k.db
    .venv/bin/python -m bench.hotpath --database-url postgres://postgres@127.0.0.1:5432/loyalty_hotpath10k_test
    .venv/bin/python -m bench.hotpath --compare-rev bfc69c5  # also the project at that commit
    .venv/bin/python -m bench.hotpath --profile              # and a cProfile of the project's server
    .venv/bin/python -m bench.hotpath --paths accrue --group-commit-off --floor-group-commit --fresh
                                                             # group commit (bench/RESULTS.md, "Group commit")

What it does: the 10k demo data set (bench.dataset builds it or reuses it) is copied to
a scratch database; on it run, side by side, one uvicorn process per target with the
options of `loyalty serve` (UVICORN_OPTIONS, log level info, one worker each):

- the floor: a bare Starlette app (`floor_app` below) on aiosqlite / asyncpg directly,
  one connection on SQLite (transactions one at a time, as Tortoise's client does), a
  pool of 5 on PostgreSQL (Tortoise's default). The read is one SELECT of the columns
  asked; the accrual inserts a ledger row, updates the balance and reads it back, in one
  transaction. It takes the same request bodies and answers the same JSON;
- the project (`api.asgi:app`) of this tree (on SQLite with group commit: concurrent
  accruals committed together, members.group_commit), with --group-commit-off also the
  same code with LOYALTY_GROUP_COMMIT=off (one transaction per request), and with
  --compare-rev that commit's too; with --floor-group-commit (SQLite) also the floor with
  group commit, its batch in one call of the driver's thread.

With --fresh every round of every target runs on its own copy of the data set,
in a server started for it: otherwise the accruals of earlier rounds and targets pile up
on the same members (tens of thousands over 9,000 members) and most later accruals cross
a tier threshold, each upgrade 18 statements.

The load is `wrk` with the same script for every target: member reads cycle over 200
ACTIVE members, each with its own member token; accruals cycle over every ACTIVE
member's card number (shuffled) with a fresh externalRef each, under one airline token. Rounds are interleaved (floor,
project, [older project], then again), and each ratio is project / floor requests per
second of the same round; the median of the rounds is reported. Beside the rates, each
server's CPU time per request (from /proc, its own process) gives requests per CPU
second against the floor's, which moves far less with other work on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx

from bench import dataset
from bench.dataset import is_postgres, sqlite_path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = f"sqlite://{ROOT / 'bench' / 'data' / 'hotpath10k.db'}"
SECRET = "bench-secret-0123456789-0123456789-0123456789"
MEMBERS = 10_000
SAMPLE = 200  # members reading themselves, each token reused as a session would
FLOOR_POOL = 5  # asyncpg pool size, as Tortoise's PostgreSQL client

READ = "query($id: ID!) { member(id: $id) { id cardNumber familyName givenName tier redeemableMiles } }"
ACCRUE = ("mutation($input: FlightAccrueInput!) { flightAccrue(input: $input) { "
          "entry { id redeemableMiles } member { id tier } userErrors { code message } } }")
TIER_NAMES = {0: "STANDARD", 1: "SILVER", 2: "GOLD", 3: "PLATINUM"}
ONE_TRANSACTION = "project, group commit off"  # one transaction per request, as before group commit
FLOOR_GROUPED = "floor, group commit"  # the floor's SQL with group commit, all of a batch in one driver call


# ---- the floor ------------------------------------------------------------------------------


def floor_app():
    """The floor (uvicorn --factory): POST /graphql with READ or ACCRUE's variables, the
    same SQL as the project's minimum, through the driver. Database from HOTPATH_FLOOR_URL."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    url = os.environ["HOTPATH_FLOOR_URL"]
    postgres = is_postgres(url)
    mark = (lambda n: f"${n}") if postgres else (lambda n: "?")
    read_sql = (f'SELECT "id", "card_number", "family_name", "given_name", "tier", "redeemable_miles" '
                f'FROM "member" WHERE "id" = {mark(1)}')
    insert_sql = (
        'INSERT INTO "ledger_entry" ("member_id", "kind", "activity_date", "posted_at", "qualifying_miles", '
        '"qualifying_segments", "redeemable_miles", "source", "external_ref") '
        f'SELECT "id", \'FLIGHT\', {mark(1)}, {mark(2)}, {mark(3)}, 300, {mark(4)}, \'AIRLINE\', {mark(5)} '
        f'FROM "member" WHERE "card_number" = {mark(6)}'
    )
    update_sql = f'UPDATE "member" SET "redeemable_miles" = "redeemable_miles" + {mark(1)} WHERE "card_number" = {mark(2)}'
    back_sql = f'SELECT "id", "tier", "redeemable_miles" FROM "member" WHERE "card_number" = {mark(1)}'
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        if postgres:
            import asyncpg

            state["pool"] = await asyncpg.create_pool(url, min_size=1, max_size=FLOOR_POOL)
        else:
            import aiosqlite

            connection = await aiosqlite.connect(str(sqlite_path(url)), isolation_level=None)
            for pragma in ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=ON"):
                await connection.execute(f"PRAGMA {pragma}")
            state["sqlite"], state["lock"] = connection, asyncio.Lock()
        yield
        if postgres:
            await state["pool"].close()
        else:
            await state["sqlite"].close()

    def member_json(row) -> dict:
        return {"id": str(row[0]), "cardNumber": row[1], "familyName": row[2], "givenName": row[3],
                "tier": TIER_NAMES[row[4]], "redeemableMiles": row[5]}

    async def read(variables: dict) -> dict:
        member_id = int(variables["id"])
        if postgres:
            async with state["pool"].acquire() as connection:
                row = await connection.fetchrow(read_sql, member_id)
        else:
            async with state["sqlite"].execute(read_sql, (member_id,)) as cursor:
                row = await cursor.fetchone()
        return {"data": {"member": member_json(row) if row else None}}

    def post_sqlite(connection, card: str, ref: str, day: date, miles: int, now: datetime):
        connection.execute(insert_sql, (day.isoformat(), now.isoformat(), miles, miles, ref, card))
        connection.execute(update_sql, (miles, card))
        return connection.execute(back_sql, (card,)).fetchone()

    queue: list = []

    async def grouped(card: str, ref: str, day: date, miles: int, now: datetime):
        """HOTPATH_FLOOR_GROUP=1: the floor's statements with group commit, as the project
        does it (members.group_commit): the postings queued meanwhile in one transaction,
        each in a savepoint, one COMMIT; here all of a batch in one call of the driver's
        thread, the least a group commit can cost."""
        future = asyncio.get_running_loop().create_future()
        queue.append((future, (card, ref, day, miles, now)))
        if state.get("writer") is None:
            state["writer"] = asyncio.get_running_loop().create_task(write())
        return await future

    async def write() -> None:
        try:
            while queue:
                batch = queue[:64]
                del queue[:64]

                def run(connection, batch=batch):
                    connection.execute("BEGIN")
                    outcomes = []
                    for n, (_, posting) in enumerate(batch):
                        connection.execute(f"SAVEPOINT p{n}")
                        try:
                            outcomes.append((post_sqlite(connection, *posting), None))
                        except Exception as error:
                            connection.execute(f"ROLLBACK TO p{n}")
                            outcomes.append((None, error))
                    connection.execute("COMMIT")
                    return outcomes

                try:
                    async with state["lock"]:
                        outcomes = await state["sqlite"]._execute(run, state["sqlite"]._conn)
                except Exception as error:  # BEGIN or COMMIT: nothing of the batch is committed
                    await state["sqlite"].rollback()
                    outcomes = [(None, error)] * len(batch)
                for (waiter, _), (row, error) in zip(batch, outcomes):
                    waiter.set_exception(error) if error else waiter.set_result(row)
        finally:
            state["writer"] = None

    async def accrue(variables: dict) -> dict:
        given = variables["input"]
        card, ref, day = given["cardNumber"], given["externalRef"], date.fromisoformat(given["flight"]["date"])
        miles, now = 3000, datetime.now()
        if not postgres and os.environ.get("HOTPATH_FLOOR_GROUP"):
            row = await grouped(card, ref, day, miles, now)
        elif postgres:
            async with state["pool"].acquire() as connection, connection.transaction():
                await connection.execute(insert_sql, day, now, miles, miles, ref, card)
                await connection.execute(update_sql, miles, card)
                row = await connection.fetchrow(back_sql, card)
        else:
            connection = state["sqlite"]
            async with state["lock"]:
                await connection.execute("BEGIN")
                try:
                    await connection.execute(insert_sql, (day.isoformat(), now.isoformat(), miles, miles, ref, card))
                    await connection.execute(update_sql, (miles, card))
                    async with connection.execute(back_sql, (card,)) as cursor:
                        row = await cursor.fetchone()
                    await connection.execute("COMMIT")
                except BaseException:
                    await connection.execute("ROLLBACK")
                    raise
        return {"data": {"flightAccrue": {"entry": {"id": ref, "redeemableMiles": miles},
                                          "member": {"id": str(row[0]), "tier": TIER_NAMES[row[1]]}, "userErrors": []}}}

    async def graphql(request: Request) -> JSONResponse:
        body = await request.json()
        variables = body.get("variables") or {}
        return JSONResponse(await (accrue(variables) if "input" in variables else read(variables)))

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)], lifespan=lifespan)


# ---- load ---------------------------------------------------------------------------------


def _lua(kind: str, sample: list[tuple[int, str, str]], airline: str, prefix: str, day: date) -> str:
    """The wrk script: each request the next member of the list, from a place that
    differs per run (a run of accruals does not replay the flights of the one before)."""
    lines = [f"local n = {random.Random(prefix).randrange(len(sample))}", "local members = {"]
    lines += [f'  {{"{member_id}", "{card}", "{token}"}},' for member_id, card, token in sample]
    lines.append("}")
    if kind == "read":
        body = json.dumps({"query": READ, "variables": {"id": "__ID__"}})
        lines += [
            f"local body = {json.dumps(body)}",
            "request = function()",
            "  n = n + 1",
            "  local m = members[(n % #members) + 1]",
            '  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json", '
            '["Authorization"] = "Bearer " .. m[3]}, (body:gsub("__ID__", m[1])))',
            "end",
        ]
    else:
        flight = {"carrier": "CA", "flightNumber": "1501", "date": day.isoformat(), "origin": "PEK",
                  "destination": "SHA", "distanceKm": 1000, "fareClass": "J"}
        body = json.dumps({"query": ACCRUE, "variables": {"input": {
            "cardNumber": "__CARD__", "externalRef": "__REF__", "flight": flight}}})
        lines += [
            f"local body = {json.dumps(body)}",
            "request = function()",
            "  n = n + 1",
            "  local m = members[(n % #members) + 1]",
            f'  local b = body:gsub("__CARD__", m[2]):gsub("__REF__", "{prefix[:60]}-" .. n)',
            '  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json", '
            f'["Authorization"] = "Bearer {airline}"}}, b)',
            "end",
        ]
    return "\n".join(lines) + "\n"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads: aiosqlite's too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(url: str, script: str, connections: int, seconds: float) -> tuple[float, int]:
    """Requests per second and non-2xx/socket errors of one wrk run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", handle.name, url],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout)\s*:?\s+(\d+)", out))
    return rate, errors


# ---- targets ------------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    source: Path
    app: str
    env: dict[str, str] = field(default_factory=dict)  # settings of this target's server
    server: object = None
    rates: dict[str, list[float]] = field(default_factory=lambda: {"read": [], "accrue": []})
    # Server CPU milliseconds per request of each round (its own process; wrk's excluded).
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {"read": [], "accrue": []})


def _source_of(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _start(target: Target, url: str, profile: Path | None) -> None:
    from tests.live import start_server

    env = {"DATABASE_URL": url, "LOYALTY_JWT_SECRET": SECRET, "HOTPATH_FLOOR_URL": url, **target.env}
    app = target.app
    if profile is not None and target.app == "api.asgi:app":
        env["HOTPATH_PROFILE"] = str(profile)
        app = "bench.hotpath:profiled_app"
        env["PYTHONPATH"] = f"{target.source}{os.pathsep}{ROOT}"
    target.server = start_server(env, source=target.source, log_level="info", app=app, output=subprocess.DEVNULL,
                                 ready_timeout=60)


def profiled_app():
    """api.asgi:app under cProfile, written to HOTPATH_PROFILE at shutdown (uvicorn --factory)."""
    import cProfile

    from api.asgi import app

    profiler = cProfile.Profile()

    async def wrapped(scope, receive, send):
        if scope["type"] == "lifespan":
            try:
                await app(scope, receive, send)
            finally:
                profiler.disable()
                profiler.dump_stats(os.environ["HOTPATH_PROFILE"])
            return
        profiler.enable()
        try:
            await app(scope, receive, send)
        finally:
            profiler.disable()

    return wrapped


def _check(target: Target, kind: str, sample: list[tuple[int, str, str]], airline: str, day: date) -> None:
    """One request of each kind must answer data without errors (a broken target would
    otherwise measure its error path)."""
    member_id, card, token = sample[0]
    if kind == "read":
        body, auth = {"query": READ, "variables": {"id": str(member_id)}}, token
    else:
        flight = {"carrier": "CA", "flightNumber": "1501", "date": day.isoformat(), "origin": "PEK",
                  "destination": "SHA", "distanceKm": 1000, "fareClass": "J"}
        body = {"query": ACCRUE, "variables": {"input": {"cardNumber": card, "externalRef": f"check-{target.label}-{time.time()}", "flight": flight}}}
        auth = airline
    response = httpx.post(f"{target.server.url}/graphql", json=body, headers={"Authorization": f"Bearer {auth}"}, timeout=30)
    answer = response.json()
    if response.status_code != 200 or answer.get("errors") or (kind == "accrue" and answer["data"]["flightAccrue"]["userErrors"]):
        raise SystemExit(f"{target.label} {kind}: {response.status_code} {str(answer)[:300]}")


# ---- the run ------------------------------------------------------------------------------


async def _active(url: str) -> list[tuple[int, str]]:
    """Every ACTIVE member (id, card number), by id."""
    from tortoise import Tortoise, connections

    from api.db import init_orm

    await init_orm(dataset.settings_for(url))
    try:
        _, rows = await connections.get("default").execute_query(
            "SELECT id, card_number FROM member WHERE status = 'ACTIVE' ORDER BY id")
    finally:
        await Tortoise.close_connections()
    return [(row[0], row[1]) for row in rows]


def _scratch(url: str) -> str:
    if is_postgres(url):
        scratch = url.rsplit("/", 1)[0] + "/" + url.rsplit("/", 1)[1].removesuffix("_test") + "_scratch_test"
        asyncio.run(dataset.drop_and_create(scratch, template_url=url))
        return scratch
    import shutil

    path = sqlite_path(url)
    dataset._checkpoint_sqlite(path)
    scratch_path = path.with_name(path.stem + "-scratch.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{scratch_path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, scratch_path)
    return f"sqlite://{scratch_path}"


def _fresh_copy(scratch: str, label: str) -> str:
    """A copy of the scratch data set for one server (--fresh): a file on SQLite, a
    database made from the scratch one as its template on PostgreSQL."""
    import shutil

    slug = re.sub(r'[^a-z0-9]+', '_', label.lower())
    if is_postgres(scratch):
        base, name = scratch.rsplit("/", 1)
        copy_url = f"{base}/{name.removesuffix('_test')}_{slug}_test"
        asyncio.run(dataset.drop_and_create(copy_url, template_url=scratch))
        return copy_url
    path = sqlite_path(scratch)
    copy = path.with_name(f"{path.stem}-{re.sub(r'[^a-z0-9]+', '-', label.lower())}.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, copy)
    return f"sqlite://{copy}"


def run(args: argparse.Namespace) -> dict:
    from api.auth import mint_token
    from api.settings import load_settings
    from members.access import Role

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    asyncio.run(dataset.ensure(args.database_url, MEMBERS, MEMBERS, rebuild=False, progress=progress))
    scratch = _scratch(args.database_url)
    settings = load_settings(environ={"LOYALTY_JWT_SECRET": SECRET}, dotenv=None)
    active = asyncio.run(_active(scratch))
    # Reads: SAMPLE members, each with its token. Accruals: every ACTIVE member in turn, so
    # that a run's flights spread over the data set as a day's would (few upgrades each).
    sample = [(member_id, card, mint_token(settings, Role.MEMBER, str(member_id), None, 6 * 3600))
              for member_id, card in sorted(random.Random(12).sample(active, min(SAMPLE, len(active))))]
    flyers = [(member_id, card, "") for member_id, card in random.Random(12).sample(active, len(active))]
    airline = mint_token(settings, Role.AIRLINE, "bench", None, 6 * 3600)
    day = datetime.now(settings.tz).date() - timedelta(days=1)
    targets = [Target("floor", ROOT, "bench.hotpath:floor_app"), Target("project", ROOT, "api.asgi:app")]
    if args.group_commit_off:
        targets.append(Target(ONE_TRANSACTION, ROOT, "api.asgi:app", env={"LOYALTY_GROUP_COMMIT": "off"}))
    if args.floor_group_commit and not is_postgres(args.database_url):
        targets.append(Target(FLOOR_GROUPED, ROOT, "bench.hotpath:floor_app", env={"HOTPATH_FLOOR_GROUP": "1"}))
    with tempfile.TemporaryDirectory() as tmp:
        if args.compare_rev:
            targets.append(Target(args.compare_rev, _source_of(args.compare_rev, Path(tmp) / "rev"), "api.asgi:app"))
        profile = ROOT / "bench" / "data" / "hotpath-project.prof" if args.profile else None
        fresh = args.fresh

        def start(target: Target) -> None:
            url = _fresh_copy(scratch, target.label) if fresh else scratch
            _start(target, url, profile if target.label == "project" else None)

        def warm(target: Target, kind: str) -> None:
            _check(target, kind, sample, airline, day)
            _wrk(f"{target.server.url}/graphql",
                 _lua(kind, sample if kind == "read" else flyers, airline, f"warm-{target.label}-{time.time_ns()}", day),
                 args.connections, 2)

        try:
            if not fresh:
                for target in targets:
                    start(target)
            load_before = os.getloadavg()
            for kind in args.paths:
                if not fresh:
                    for target in targets:
                        warm(target, kind)
                for round_ in range(args.rounds):
                    for target in (targets if round_ % 2 == 0 else list(reversed(targets))):
                        if fresh:  # every round of every target from the same data
                            start(target)
                            warm(target, kind)
                        script = _lua(kind, sample if kind == "read" else flyers, airline,
                                      f"r{round_}-{target.label}-{time.time_ns()}", day)
                        cpu_before = _cpu_seconds(target.server.process.pid)
                        rate, errors = _wrk(f"{target.server.url}/graphql", script, args.connections, args.seconds)
                        cpu = _cpu_seconds(target.server.process.pid) - cpu_before
                        if fresh:
                            target.server.stop()
                            target.server = None
                        if errors:
                            raise SystemExit(f"{target.label} {kind}: {errors} errors in wrk's run")
                        target.rates[kind].append(rate)
                        target.cpu_ms[kind].append(1000 * cpu / max(1.0, rate * args.seconds))
                        progress(f"{kind} round {round_ + 1} {target.label}: {rate:,.0f}/s, "
                                 f"{target.cpu_ms[kind][-1]:.2f} ms CPU per request")
            load_after = os.getloadavg()
        finally:
            for target in targets:
                if target.server is not None:
                    target.server.stop()
        profile_lines = _profile_summary(profile) if profile is not None and profile.exists() else []
    floor = targets[0]
    result = {
        "database": "PostgreSQL" if is_postgres(args.database_url) else "SQLite",
        "connections": args.connections, "seconds": args.seconds, "rounds": args.rounds,
        "load": f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (1-min load average), {os.cpu_count()} CPUs",
        "targets": {}, "profile": profile_lines,
    }
    for target in targets:
        entry = {}
        for kind in args.paths:
            ratios = [rate / base for rate, base in zip(target.rates[kind], floor.rates[kind])]
            # Requests per CPU second against the floor's, round by round: what each
            # target does with the CPU it gets, less moved by the other work on the machine.
            cpu_ratios = [base / cpu for cpu, base in zip(target.cpu_ms[kind], floor.cpu_ms[kind])]
            entry[kind] = {"rate": statistics.median(target.rates[kind]), "ratio": statistics.median(ratios),
                           "rates": target.rates[kind], "ratios": ratios,
                           "cpu_ms": statistics.median(target.cpu_ms[kind]), "cpu_ratio": statistics.median(cpu_ratios),
                           "cpu_ratios": cpu_ratios}
        result["targets"][target.label] = entry
    return result


def _profile_summary(path: Path, top: int = 25) -> list[str]:
    """Cumulative time of the heaviest functions of the project's server, by module area."""
    import pstats

    stats = pstats.Stats(str(path))
    total = stats.total_tt or 1.0
    rows = []
    for (filename, line, name), (_, _, tottime, cumtime, _) in stats.stats.items():
        rows.append((cumtime, tottime, f"{Path(filename).parent.name}/{Path(filename).name}:{name}"))
    by_area: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():
        parts = Path(filename).parts
        area = next((p for p in parts[parts.index("site-packages") + 1:][:1]), "?") if "site-packages" in parts else (
            Path(filename).parent.name or filename)
        by_area[area] = by_area.get(area, 0.0) + tottime
    rows.sort(key=lambda row: row[1], reverse=True)
    lines = [f"total {total:.1f} s of profiled request time (path {path}); own time by package:"]
    lines += [f"{tt / total:6.1%}  {area}" for area, tt in sorted(by_area.items(), key=lambda kv: -kv[1])[:12]]
    lines.append("heaviest functions by own time:")
    lines += [f"{tt / total:6.1%} own {cum / total:6.1%} cum  {where}" for cum, tt, where in rows[:top]]
    return lines


def markdown(result: dict) -> str:
    labels = list(result["targets"])
    lines = [
        f"#### {result['database']}: {result['rounds']} interleaved rounds of {result['seconds']} s, "
        f"wrk 1 thread, {result['connections']} connections; {result['load']}",
        "",
        "| path | " + " | ".join(f"{label} req/s" for label in labels) + " | "
        + " | ".join(f"{label} / floor, median (range of rounds)" for label in labels[1:]) + " | "
        + " | ".join(f"{label} CPU ms/req" for label in labels) + " | "
        + " | ".join(f"{label} / floor per CPU second" for label in labels[1:]) + " |",
        "|---|" + "---:|" * (4 * len(labels) - 2),
    ]
    names = {"read": "member read by id (member token)", "accrue": "`flightAccrue` (SILVER/GOLD/... demo members)"}
    for kind in ("read", "accrue"):
        if kind not in result["targets"]["floor"]:
            continue
        rates = " | ".join(f"{result['targets'][label][kind]['rate']:,.0f}" for label in labels)
        ratios = " | ".join(
            f"{result['targets'][label][kind]['ratio']:.2f} ({min(result['targets'][label][kind]['ratios']):.2f}-"
            f"{max(result['targets'][label][kind]['ratios']):.2f})" for label in labels[1:])
        cpu = " | ".join(f"{result['targets'][label][kind]['cpu_ms']:.2f}" for label in labels)
        cpu_ratios = " | ".join(
            f"{result['targets'][label][kind]['cpu_ratio']:.2f} ({min(result['targets'][label][kind]['cpu_ratios']):.2f}-"
            f"{max(result['targets'][label][kind]['cpu_ratios']):.2f})" for label in labels[1:])
        lines.append(f"| {names[kind]} | {rates} | {ratios} | {cpu} | {cpu_ratios} |")
    if ONE_TRANSACTION in labels and "accrue" in result["targets"]["floor"]:
        grouped, alone = (result["targets"][label]["accrue"]["rates"] for label in ("project", ONE_TRANSACTION))
        gains = [a / b for a, b in zip(grouped, alone)]
        lines += ["", f"Group commit: project / {ONE_TRANSACTION}, `flightAccrue`, same rounds: median "
                  f"{statistics.median(gains):.2f} (rounds: {', '.join(f'{g:.2f}' for g in gains)})"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="the 10k data set (built here if missing)")
    parser.add_argument("--compare-rev", help="also measure the project at this git revision")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paths", nargs="+", default=["read", "accrue"], choices=["read", "accrue"])
    parser.add_argument("--group-commit-off", action="store_true",
                        help=f"also the project with LOYALTY_GROUP_COMMIT=off (\"{ONE_TRANSACTION}\")")
    parser.add_argument("--floor-group-commit", action="store_true",
                        help=f"SQLite: also the floor with group commit (\"{FLOOR_GROUPED}\")")
    parser.add_argument("--fresh", action="store_true",
                        help="every round of every target on its own fresh copy of the data set (a server "
                             "started for it): accruals of earlier rounds do not pile up into upgrades")
    parser.add_argument("--profile", action="store_true", help="profile the project's server (cProfile)")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    result = run(args)
    print(markdown(result))
    for line in result["profile"]:
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
