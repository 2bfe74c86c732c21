"""Scale benchmark: the same reads and daily jobs on a small and a large data set (10,000
and 1,000,000 members by default, same 142 offices), in one run. Outside the test suite.

Run from the repository root:

    .venv/bin/python -m bench.scale                                   # SQLite files in bench/data/
    .venv/bin/python -m bench.scale --database-url 'postgres://postgres@127.0.0.1:5432/loyalty_scale{size}_test' \\
        --scratch-url postgres://postgres@127.0.0.1:5432/loyalty_bench_h_test
    .venv/bin/python -m bench.scale --members-small 10000 --members-large 1000000 --rebuild --write

`{size}` in --database-url becomes 10k / 1m. The data sets come from bench.dataset (the
demo's 10,000 members, and 99 copies of them for 1M); a data set built by the same code
with the same parameters is reused (--rebuild builds it again).

Reads: a real server process per data set (`api.asgi:app` under uvicorn with the options
of `loyalty serve`, tests.live), both running at once, one request at a time, tokens
signed as `loyalty token` signs them. Each query gets --warmup requests on each, then
--requests measured ones on each, interleaved (small, large, large, small, ...: fewer if
they take longer than --budget seconds together, never fewer than --min-requests), so
both sizes are measured over the same minutes of the machine; p50 and p99 are
nearest-rank percentiles of the client's wall-clock time per request.

Daily jobs: on a scratch copy of each data set (a file copy, or CREATE DATABASE ...
TEMPLATE on PostgreSQL), --due members are made due on the data set's day (their elite
tier's validUntil set to the day before, and, for other members, their open credits'
expiry set to the day before); then `tiers review` and `miles expire` run for that day
as the CLI runs them (loyalty.tiers.review_tiers, loyalty.jobs.expire_miles), timed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx

from bench import dataset
from bench.dataset import ROOT, DatasetInfo, is_postgres, size_label, sqlite_path

SECRET = "bench-scale-secret-0123456789-0123456789"
DEFAULT_URL = f"sqlite://{ROOT / 'bench' / 'data' / 'scale{size}.db'}"
DEFAULT_SCRATCH = f"sqlite://{ROOT / 'bench' / 'data' / 'scratch.db'}"
RESULTS = ROOT / "bench" / "RESULTS.md"

STATS_FIELDS = (
    "officeCode branchCode name tierCounts { standard silver gold platinum } upgradesLast30Days downgradesLast30Days "
    "atRiskVips vips vipsContactedWithinInterval careCallCoverage openComplaints overdueComplaints"
)
MEMBER = """query($id: ID!) { member(id: $id) { id cardNumber familyName givenName tier redeemableMiles milesExpiringSoon
  tierStatus { tier validUntil qualifyingMiles nextTier milesToNextTier atRiskOfDowngrade } } }"""
VIP_LIST = """query($office: String!) { members(filter: {officeCode: $office, tiers: [GOLD, PLATINUM]}, first: 50) {
  totalCount edges { cursor node { id cardNumber familyName givenName tier phone } } pageInfo { endCursor hasNextPage } } }"""
MEMBER_PAGE = """query($after: String) { members(first: 100, after: $after) {
  edges { cursor node { id cardNumber familyName givenName tier } } pageInfo { endCursor hasNextPage } } }"""
CURSOR_OF = """query($card: String!) { members(filter: {search: $card}, first: 1) { edges { cursor } } }"""
REGION_STATS = f"query {{ regionStats {{ {STATS_FIELDS} }} }}"
CARE_DUE = """query { careCallsDue(first: 50) { totalCount
  edges { node { reason reasons dueSince lastContactOn followUpOn member { id cardNumber familyName givenName tier phone } } }
  pageInfo { endCursor hasNextPage } } }"""
OFFICE_STATS = f"query {{ officeStats {{ {STATS_FIELDS} }} }}"
TIER_COUNTS = "query { tierCounts { standard silver gold platinum } }"


@dataclass
class Context:
    """What the requests pick from: member ids and cards, offices with members, cursors."""

    member_ids: list[int]
    cards: dict[int, str]
    offices: list[str]
    admin: str
    office_tokens: dict[str, str]
    cursors: list[str] = field(default_factory=list)
    # Offices whose first page of the list is full on the small data set (so on both):
    # the VIP list's (50 GOLD+PLATINUM members) and careCallsDue's (50 members due).
    full_pages: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    name: str
    # (rng, context) -> (query, variables, token)
    request: Callable[[random.Random, Context], tuple[str, dict[str, Any], str]]


def _office(rng: random.Random, ctx: Context) -> str:
    return rng.choice(ctx.offices)


def _full_page_office(list_name: str) -> Callable[[random.Random, Context], str]:
    return lambda rng, ctx: rng.choice(ctx.full_pages[list_name])


_vip_office = _full_page_office("vip list")
_due_office = _full_page_office("care calls due")

QUERIES = (
    Query("`member(id:)`, random members (admin)",
          lambda rng, ctx: (MEMBER, {"id": str(rng.choice(ctx.member_ids))}, ctx.admin)),
    Query("office VIP list, GOLD+PLATINUM, first 50 (office token, offices whose first page is full at the small size)",
          lambda rng, ctx: (VIP_LIST, {"office": (o := _vip_office(rng, ctx))}, ctx.office_tokens[o])),
    Query("`members(first: 100, after:)` (admin, random cursors)",
          lambda rng, ctx: (MEMBER_PAGE, {"after": rng.choice(ctx.cursors)}, ctx.admin)),
    Query("`regionStats` (office token, random offices)",
          lambda rng, ctx: (REGION_STATS, {}, ctx.office_tokens[_office(rng, ctx)])),
    Query("`careCallsDue(first: 50)` (office token, offices whose first page is full at the small size)",
          lambda rng, ctx: (CARE_DUE, {}, ctx.office_tokens[_due_office(rng, ctx)])),
    Query("`officeStats` (admin: 142 rows)", lambda rng, ctx: (OFFICE_STATS, {}, ctx.admin)),
    Query("`tierCounts` (office token, random offices)",
          lambda rng, ctx: (TIER_COUNTS, {}, ctx.office_tokens[_office(rng, ctx)])),
)


@dataclass
class Timing:
    seconds: list[float]

    def pct(self, p: float) -> float:
        """Nearest-rank percentile."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]


@dataclass
class SizeResult:
    info: DatasetInfo
    counts: dict[str, int]
    reads: dict[str, Timing]
    jobs: dict[str, float]
    job_counts: dict[str, str]
    load: dict[str, str]
    served_on: str = ""  # how the reads' day relates to the data set's (catch_up)


# ---- reads ------------------------------------------------------------------------------


async def catch_up(url: str, info: DatasetInfo, progress: Callable[[str], None], *, run: bool = True,
                   served: date | None = None) -> str:
    """Bring the stored care worklist state to the server's day before the reads.

    The server serves the programme's today (the clock, in the programme's time zone);
    a data set is built as of the day it was built. Once midnight in the programme's
    zone has passed, the members whose recheck day has come hold a stale worklist state
    until the day's `care refresh` runs (the scheduler runs it at the start of each day),
    and careCallsDue recomputes those rows in every request meanwhile: a number that
    grows with the office (about 2 members an office a day at 10k, 200 at 1M). Runs of
    session 6 that crossed 16:00 UTC measured that window (careCallsDue 2.3 times its
    10k p99) and took it for a regression. Here the day's worklist refresh
    (care.calls.refresh_care_due, the scheduler's care-refresh step that the reads
    depend on) runs first, unless ``run`` is false, which measures the window instead.
    ``served``: the server's day (default: the programme's today). Returns the line the
    report prints."""
    from tortoise import Tortoise

    from api.db import init_orm
    from care.calls import refresh_care_due
    from loyalty.rules import load_rules

    settings = dataset.settings_for(url)
    served, built = served or settings.today(), date.fromisoformat(info.today)
    if served <= built:
        return f"served on the data set's day ({info.today})"
    if not run:
        return (f"served on {served}, {(served - built).days} day(s) after the data set's day ({info.today}), "
                f"before that day's care refresh (--no-catch-up): the stale worklist rows are recomputed per request")
    await init_orm(settings)
    try:
        began = time.perf_counter()
        summary = await refresh_care_due(load_rules(settings.rules_path), served)
        seconds = time.perf_counter() - began
    finally:
        await Tortoise.close_connections()
    progress(f"  served on {served}, after the data set's {info.today}: the day's worklist refresh first, "
             f"{summary.members:,} members rechecked in {seconds:.1f} s")
    return (f"served on {served}, {(served - built).days} day(s) after the data set's day ({info.today}); that day's "
            f"worklist refresh ran first, as the scheduler runs it ({summary.members:,} members rechecked, {seconds:.1f} s)")


def _settings():
    from api.settings import load_settings

    return load_settings(environ={"LOYALTY_JWT_SECRET": SECRET}, dotenv=None)


def _token(role, subject: str, scope: str | None = None) -> str:
    from api.auth import mint_token

    return mint_token(_settings(), role, subject, scope, 6 * 3600)


async def _counts(url: str) -> dict[str, int]:
    """Members, ledger entries and credit lots (the highest ids: dense in a bench data set)."""
    from tortoise import Tortoise
    from tortoise.functions import Max

    from api.db import init_orm
    from loyalty.models import CreditLot, LedgerEntry
    from members.models import Member

    await init_orm(dataset.settings_for(url))
    try:
        counts = {}
        for label, model in (("members", Member), ("ledger entries", LedgerEntry), ("credit lots", CreditLot)):
            row = await model.all().annotate(top=Max("id")).first().values("top")
            counts[label] = int((row or {}).get("top") or 0)
        return counts
    finally:
        await Tortoise.close_connections()


async def _context(url: str, rng: random.Random, samples: int) -> tuple[Context, dict[str, int]]:
    """Members, their cards and the offices that have members, read with the ORM."""
    from tortoise import Tortoise

    from api.db import init_orm
    from members.access import Role
    from members.models import Member, Office

    counts = await _counts(url)
    await init_orm(dataset.settings_for(url))
    try:
        top = counts["members"]
        member_ids = [rng.randint(1, top) for _ in range(samples)]
        cards = dict(await Member.filter(id__in=member_ids).values_list("id", "card_number"))
        member_ids = [i for i in member_ids if i in cards]
        offices = await Office.filter(id__in=await Member.all().distinct().values_list("office_id", flat=True)) \
            .order_by("code").values_list("code", flat=True)
    finally:
        await Tortoise.close_connections()
    admin = _token(Role.ADMIN, "bench-admin")
    tokens = {code: _token(Role.OFFICE, f"bench-{code.lower()}", code) for code in offices}
    return Context(member_ids, cards, list(offices), admin, tokens), counts


async def full_page_offices(url: str, page: int = 50) -> dict[str, list[str]]:
    """The offices of the data set at `url` whose first page of the VIP list (GOLD and
    PLATINUM members) and of careCallsDue (ACTIVE members due a call, stored state) holds
    `page` rows. Read on the small data set and used on both: the large one is copies of
    it, so the same offices have 99 times more rows there, and both sizes read full pages
    of the same offices."""
    from tortoise import Tortoise
    from tortoise.functions import Count, Sum

    from api.db import init_orm
    from members.enums import MemberStatus, Tier
    from members.models import Member, Office, OfficeTierCount

    await init_orm(dataset.settings_for(url))
    try:
        codes = dict(await Office.all().values_list("id", "code"))
        vips = await OfficeTierCount.filter(tier__in=[Tier.GOLD, Tier.PLATINUM]).annotate(n=Sum("members")) \
            .group_by("office_id").values_list("office_id", "n")
        due = await Member.filter(status=MemberStatus.ACTIVE, care_priority__gte=0).annotate(n=Count("id")) \
            .group_by("office_id").values_list("office_id", "n")
    finally:
        await Tortoise.close_connections()
    return {
        "vip list": sorted(codes[office] for office, n in vips if n >= page),
        "care calls due": sorted(codes[office] for office, n in due if n >= page),
    }


def _post(http: httpx.Client, query: str, variables: dict, token: str) -> float:
    began = time.perf_counter()
    response = http.post("/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {token}"})
    elapsed = time.perf_counter() - began
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"{query.split('{')[1].strip()[:40]}...: {body['errors'][:1]}")
    return elapsed


def _cursors(http: httpx.Client, ctx: Context, count: int) -> list[str]:
    """Cursors of random members in the default order, through the API (so they are the
    server's own encoding): each member's edge in a list filtered to its card number."""
    cursors = []
    for member_id in ctx.member_ids[:count]:
        response = http.post("/graphql", json={"query": CURSOR_OF, "variables": {"card": ctx.cards[member_id]}},
                             headers={"Authorization": f"Bearer {ctx.admin}"})
        edges = response.json()["data"]["members"]["edges"]
        cursors.extend(edge["cursor"] for edge in edges)
    return cursors


def measure_reads(urls: dict[int, str], args: argparse.Namespace, progress: Callable[[str], None],
                  full_pages: dict[str, list[str]]) -> dict[int, tuple[dict[str, Timing], dict[str, int]]]:
    """Each query on every data set, interleaved: a server per data set, both up at once,
    and the measured requests alternate between them (the order of the two flipped every
    round), one request in flight at a time. So both sizes see the same machine over the
    same minutes: a neighbour's burst or a slower stretch of the host lands on both
    columns instead of on whichever ran second, and the ratio measures the data's size."""
    from tests.live import start_server

    sizes = sorted(urls)
    contexts: dict[int, Context] = {}
    counts: dict[int, dict[str, int]] = {}
    rngs: dict[int, random.Random] = {}
    for n in sizes:
        rngs[n] = random.Random(f"bench-scale:{args.seed}")
        contexts[n], counts[n] = asyncio.run(_context(urls[n], rngs[n], max(args.requests + args.warmup, 50) * 2))
        contexts[n].full_pages = full_pages
    servers = {}
    clients: dict[int, httpx.Client] = {}
    results: dict[int, dict[str, Timing]] = {n: {} for n in sizes}
    try:
        for n in sizes:
            servers[n] = start_server({"DATABASE_URL": urls[n], "LOYALTY_JWT_SECRET": SECRET}, ready_timeout=120)
            clients[n] = httpx.Client(base_url=servers[n].url, timeout=600)
            contexts[n].cursors = _cursors(clients[n], contexts[n], args.requests + args.warmup)
        for query in QUERIES:
            for n in sizes:
                for _ in range(args.warmup):
                    _post(clients[n], *query.request(rngs[n], contexts[n]))
            seconds: dict[int, list[float]] = {n: [] for n in sizes}
            began = time.perf_counter()
            while len(seconds[sizes[0]]) < args.requests and (
                len(seconds[sizes[0]]) < args.min_requests or time.perf_counter() - began < args.budget
            ):
                order = sizes if len(seconds[sizes[0]]) % 2 == 0 else sizes[::-1]
                for n in order:
                    seconds[n].append(_post(clients[n], *query.request(rngs[n], contexts[n])))
            for n in sizes:
                t = results[n][query.name] = Timing(seconds[n])
                progress(f"  {size_label(n)} {query.name}: n={len(t.seconds)} p50 {t.pct(50) * 1000:.1f} ms, "
                         f"p99 {t.pct(99) * 1000:.1f} ms")
    finally:
        for client in clients.values():
            client.close()
        for server in servers.values():
            server.stop()
    return {n: (results[n], counts[n]) for n in sizes}


# ---- daily jobs ---------------------------------------------------------------------------


def settle(url: str) -> float:
    """SQLite: the WAL folded into the file and the file's pages written to disk
    (fsync) before anything is timed on it, so that what a build, an upgrade or a copy
    left in the OS's write-back queue is not written while the bench measures: a 15 GB
    copy leaves gigabytes of it, and the first sync of the job timed after it (a
    checkpoint's) waited for them. Seconds taken (next to nothing on a settled file).
    Nothing on PostgreSQL, whose server writes its pages back itself."""
    if is_postgres(url):
        return 0.0
    began = time.perf_counter()
    path = sqlite_path(url)
    dataset._checkpoint_sqlite(path)
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return time.perf_counter() - began


def _copy_to_scratch(url: str, scratch: str) -> float:
    """Seconds to copy the data set at `url` to `scratch` and settle the copy."""
    began = time.perf_counter()
    if is_postgres(url):
        asyncio.run(dataset.drop_and_create(scratch, template_url=url))
    else:
        asyncio.run(dataset.drop_and_create(scratch))
        dataset._checkpoint_sqlite(sqlite_path(url))
        shutil.copyfile(sqlite_path(url), sqlite_path(scratch))
        settle(scratch)
    return time.perf_counter() - began


def _evenly(values: list[int], count: int) -> list[int]:
    if len(values) <= count:
        return values
    step = len(values) / count
    return [values[int(i * step)] for i in range(count)]


async def _jobs(scratch: str, as_of: date, due: int, care_refresh: bool,
                progress: Callable[[str], None]) -> tuple[dict[str, float], dict[str, str]]:
    from tortoise import Tortoise

    from api.db import init_orm
    from care.segments import refresh_segments
    from loyalty.jobs import expire_miles
    from loyalty.models import CreditLot
    from loyalty.rules import load_rules
    from loyalty.tiers import review_tiers
    from members.enums import Tier
    from members.models import Member

    settings = dataset.settings_for(scratch)
    rules = load_rules(settings.rules_path)
    await init_orm(settings)
    seconds: dict[str, float] = {}
    summaries: dict[str, str] = {}
    try:
        day_before = as_of - timedelta(days=1)
        elite = await Member.filter(tier__gt=Tier.STANDARD).order_by("id").values_list("id", flat=True)
        review_ids = _evenly(list(elite), due)
        # Expiry: members of other ids (every third of an even spread) that hold open credits.
        chosen = set(review_ids)
        top = await Member.all().order_by("-id").first().values_list("id", flat=True)
        candidates = [i for i in _evenly(list(range(1, top + 1)), due * 4) if i not in chosen]
        expiry_ids: list[int] = []
        for start in range(0, len(candidates), 500):
            chunk = candidates[start:start + 500]
            holders = set(await CreditLot.filter(member_id__in=chunk, remaining__gt=0).distinct().values_list("member_id", flat=True))
            expiry_ids.extend(i for i in chunk if i in holders)
        expiry_ids = expiry_ids[:due]
        for start in range(0, len(review_ids), 500):
            await Member.filter(id__in=review_ids[start:start + 500]).update(tier_valid_until=day_before)
        for start in range(0, len(expiry_ids), 500):
            await CreditLot.filter(member_id__in=expiry_ids[start:start + 500], remaining__gt=0).update(expires_on=day_before)
        progress(f"  made due on {as_of}: {len(review_ids)} tier reviews, {len(expiry_ids)} members' credits")

        began = time.perf_counter()
        review = await review_tiers(as_of, rules=rules)
        seconds["tiers review"] = time.perf_counter() - began
        summaries["tiers review"] = f"{review.examined} examined, {review.downgraded} downgraded"
        began = time.perf_counter()
        expiry = await expire_miles(as_of)
        seconds["miles expire"] = time.perf_counter() - began
        summaries["miles expire"] = f"{expiry.members} members, {expiry.miles:,} miles"
        if care_refresh:
            began = time.perf_counter()
            refreshed = await refresh_segments(rules, as_of, timezone=settings.tz)
            seconds["care refresh"] = time.perf_counter() - began
            summaries["care refresh"] = f"{refreshed.members:,} members (all)"
        for name in seconds:
            progress(f"  {name}: {seconds[name]:.2f} s ({summaries[name]})")
    finally:
        await Tortoise.close_connections()
    return seconds, summaries


# ---- report -------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def report(kind: str, label: str | None, command: str, results: dict[int, SizeResult], due: int,
           full_pages: dict[str, list[str]] | None = None) -> str:
    small, large = sorted(results)
    s, l = results[small], results[large]
    ls, ll = size_label(small), size_label(large)
    lines = [
        f"## Scale, {kind}{f', {label}' if label else ''}: run of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{command}`",
        "",
        f"Code: {_git_revision()}. Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, shared with other "
        f"developers' work; load average (1 / 5 / 15 min) at the start of each phase: "
        + "; ".join(f"{phase} {load}" for r in (s, l) for phase, load in r.load.items()) + ".",
        "",
        "| data set | members | ledger entries | credit lots | built on | build s |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for size, r in ((ls, s), (ll, l)):
        lines.append(f"| {size} | {r.counts['members']:,} | {r.counts['ledger entries']:,} | {r.counts['credit lots']:,} | "
                     f"{r.info.today} | {r.info.build_seconds:,.0f} |")
    lines += [] if not s.reads else [
        "",
        f"| query | p50 {ls} ms | p99 {ls} ms | p50 {ll} ms | p99 {ll} ms | p99 {ll} / {ls} | requests {ls} / {ll} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for query in QUERIES if s.reads else ():
        a, b = s.reads[query.name], l.reads[query.name]
        lines.append(
            f"| {query.name} | {_ms(a.pct(50))} | {_ms(a.pct(99))} | {_ms(b.pct(50))} | {_ms(b.pct(99))} | "
            f"{b.pct(99) / a.pct(99):.1f} | {len(a.seconds)} / {len(b.seconds)} |"
        )
    if s.reads:
        lines += ["", "Reads: " + "; ".join(f"{size} {r.served_on}" for size, r in ((ls, s), (ll, l))) + "."]
    if full_pages:
        lines += ["", "Offices whose first page is full at " + ls + " (the VIP list's and careCallsDue's offices at both sizes): "
                  + "; ".join(f"{name} {', '.join(offices)}" for name, offices in full_pages.items()) + "."]
    if s.jobs and l.jobs:
        lines += [
            "",
            f"Daily jobs with {due:,} members made due (a scratch copy of each data set, as of the data set's day):",
            "",
            f"| job | {ls} s | {ll} s | {ll} / {ls} | done at {ls} | done at {ll} |",
            "|---|---:|---:|---:|---|---|",
        ]
        for name in s.jobs:
            lines.append(f"| `{name}` | {s.jobs[name]:.2f} | {l.jobs[name]:.2f} | {l.jobs[name] / s.jobs[name]:.1f} | "
                         f"{s.job_counts[name]} | {l.job_counts[name]} |")
    return "\n".join(lines) + "\n"


def _git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
        return f"{rev}{' with uncommitted changes' if dirty else ''}"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="with {size} (10k / 1m); default SQLite files in bench/data/")
    parser.add_argument("--scratch-url", help="where the daily jobs run on a copy (default bench/data/scratch.db; "
                                              "a PostgreSQL database named ..._test for PostgreSQL)")
    parser.add_argument("--members-small", type=int, default=10_000)
    parser.add_argument("--members-large", type=int, default=1_000_000)
    parser.add_argument("--pool", type=int, default=dataset.DEFAULT_POOL, help="members simulated by the demo; the rest are copies")
    parser.add_argument("--rebuild", action="store_true", help="build the data sets even if built already")
    parser.add_argument("--upgrade", action="store_true",
                        help="upgrade a data set built by other data code in place (migrations, derived jobs) instead "
                             "of rebuilding it: when you know the difference does not shape the data (say so in the report)")
    parser.add_argument("--upgrade-skip", action="append", default=[], choices=sorted(dataset.DERIVED_JOBS),
                        help="a derived job an upgrade need not run again (repeatable): when the schema change "
                             "leaves its state as the build left it (say so in the report)")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per query (default 200)")
    parser.add_argument("--min-requests", type=int, default=30)
    parser.add_argument("--budget", type=float, default=90.0, help="seconds of measured requests per query before stopping early")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--due", type=int, default=1_000, help="members made due for the daily jobs")
    parser.add_argument("--no-reads", action="store_true", help="skip the reads")
    parser.add_argument("--no-jobs", action="store_true", help="skip the daily jobs")
    parser.add_argument("--no-care-refresh", action="store_true", help="daily jobs: skip `care refresh` (it reads every member)")
    parser.add_argument("--no-catch-up", action="store_true",
                        help="reads: when the programme's day is past the data set's, do not run that day's worklist "
                             "refresh first (measures careCallsDue between midnight and the scheduler's care refresh)")
    parser.add_argument("--seed", default="1")
    parser.add_argument("--label", help="a name for the run in the report's heading, e.g. 'before'")
    parser.add_argument("--write", action="store_true", help=f"append the tables to {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--small-url", help="the small data set's database (instead of --database-url's)")
    parser.add_argument("--large-url", help="the large data set's database (instead of --database-url's)")
    args = parser.parse_args(argv)
    if "{size}" not in args.database_url and not (args.small_url and args.large_url):
        parser.error("--database-url needs {size} (two data sets)")
    sizes = (args.members_small, args.members_large)
    urls = {n: dataset.url_for(args.database_url, n) for n in sizes}
    urls[args.members_small] = args.small_url or urls[args.members_small]
    urls[args.members_large] = args.large_url or urls[args.members_large]
    postgres = is_postgres(urls[args.members_small])
    scratch = args.scratch_url or (None if postgres else DEFAULT_SCRATCH)
    if scratch is None and not args.no_jobs:
        parser.error("PostgreSQL: give --scratch-url (a database named ..._test) or --no-jobs")
    for url in [*urls.values()] + ([scratch] if scratch else []):
        dataset.check_disposable(url)

    def progress(line: str) -> None:
        print(f"[{datetime.now():%H:%M:%S}] {line}", file=sys.stderr, flush=True)

    results: dict[int, SizeResult] = {}
    infos: dict[int, DatasetInfo] = {}
    loads: dict[int, dict[str, str]] = {n: {} for n in sizes}
    small_pool = urls[args.members_small] if args.members_small == args.pool else None
    for n in sizes:
        loads[n][f"build {size_label(n)}"] = _load()
        infos[n] = asyncio.run(dataset.ensure(urls[n], n, args.pool, rebuild=args.rebuild, progress=progress, pool_url=small_pool,
                                                  upgrade=args.upgrade, upgrade_skip=tuple(args.upgrade_skip)))
    full_pages = {} if args.no_reads else asyncio.run(full_page_offices(urls[args.members_small]))
    for name, offices in full_pages.items():
        progress(f"{name}: offices whose first page is full at {size_label(args.members_small)}: {', '.join(offices)}")
        if not offices:
            raise SystemExit(f"no office of the small data set has a full first page of the {name}")
    served_on = {n: "" for n in sizes}
    if not args.no_reads:
        for n in sizes:
            served_on[n] = asyncio.run(catch_up(urls[n], infos[n], progress, run=not args.no_catch_up))
            progress(f"{size_label(n)} settled (WAL checkpointed, file synced) in {settle(urls[n]):.1f} s")
        progress(f"reads on {' and '.join(f'{size_label(n)} ({urls[n]})' for n in sizes)}, interleaved, "
                 f"{dataset.environment_note()}")
        loads[sizes[0]]["reads (both sizes, interleaved)"] = _load()
    measured = {} if args.no_reads else measure_reads(urls, args, progress, full_pages)
    for n in sizes:
        reads, counts = measured[n] if measured else ({}, asyncio.run(_counts(urls[n])))
        results[n] = SizeResult(infos[n], counts, reads, {}, {}, loads[n], served_on[n])
    if not args.no_jobs:
        for n in sizes:
            progress(f"daily jobs on a copy of {size_label(n)}")
            copied = _copy_to_scratch(urls[n], scratch)
            progress(f"  copied and settled in {copied:.0f} s")
            results[n].load[f"jobs {size_label(n)}"] = _load()
            results[n].jobs, results[n].job_counts = asyncio.run(
                _jobs(scratch, date.fromisoformat(infos[n].today), args.due, not args.no_care_refresh, progress))
    command = "python -m bench.scale " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report("PostgreSQL" if postgres else "SQLite", args.label, command.strip(), results, args.due, full_pages)
    print(text)
    if args.write:
        RESULTS.write_text(into_chapter(RESULTS.read_text(encoding="utf-8"), SCALE_CHAPTER, text), encoding="utf-8")
    return 0


SCALE_CHAPTER = "# Scale: 10,000 against 1,000,000 members"


def into_chapter(document: str, chapter: str, text: str) -> str:
    """`document` with `text` added at the end of its chapter `chapter` (a level-1
    heading), before the next chapter; at the end when there is none or no such chapter."""
    start = document.find("\n" + chapter + "\n")
    end = document.find("\n# ", start + 1) if start >= 0 else -1
    if end < 0:
        return document.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    return document[:end].rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n\n" + document[end + 1:]


if __name__ == "__main__":
    sys.exit(main())
