"""Partner webhook benchmark: how fast one dispatcher (loyalty.webhooks, wired as
`loyalty webhooks run` wires it) delivers a backlog of tier changes to partners'
endpoints on this machine. Outside the test suite.

    .venv/bin/python -m bench.webhooks                           # 1,000 changes to 1 and to 4 partners
    .venv/bin/python -m bench.webhooks --events 200 --partners 1 8
    .venv/bin/python -m bench.webhooks --database-url postgres://postgres@127.0.0.1:5432/loyalty_bench_test

A fresh database (SQLite in a temporary directory by default; a PostgreSQL database
named *test is dropped and made again), migrated; one member whose tier is overridden
``--events`` times (the backlog); then for each partner count a fresh set of partners
whose webhooks start before the backlog, and one dispatcher turning until every partner
has every change. The endpoints are one local receiver (tests/api/webhook_receiver.py:
http.server in a thread) that checks every signature. Each delivery is a POST, its
answer, and the transaction that logs it and moves the partner's cursor; partners are
delivered side by side, one partner's changes one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

from tortoise import Tortoise


async def _prepare(database_url: str):
    from api.db import init_orm, migrate
    from api.settings import load_settings
    from loyalty.rules import load_rules
    from loyalty.tiers import override_tier
    from members.access import Caller, Role
    from members.addresses import Address
    from members.enums import Tier
    from members.services import Enrolment, enroll
    from tests.conftest import _recreate_postgres

    settings = replace(load_settings(environ={}, dotenv=None), database_url=database_url, webhook_allow_http=True,
                       metrics=False)
    if database_url.startswith("postgres"):
        await _recreate_postgres(database_url)
    await migrate(settings)
    await Tortoise.close_connections()
    await init_orm(settings)
    rules, admin = load_rules(), Caller(Role.ADMIN, "bench")
    member = await enroll(admin, Enrolment("Wang", "Fang", Address(country="CN", province="Beijing", city="Beijing")),
                          today=date(2026, 1, 10))
    return settings, rules, admin, member, override_tier, Tier


async def _run(args: argparse.Namespace, database_url: str) -> None:
    from api.webhooks import dispatcher
    from loyalty import webhooks
    from loyalty.models import PartnerWebhook, TierEvent
    from members.partners import add_partner
    from tests.api.webhook_receiver import Receiver

    settings, rules, admin, member, override_tier, Tier = await _prepare(database_url)
    for n in range(args.events):  # the backlog
        await override_tier(admin, str(member.id), (Tier.SILVER, Tier.GOLD)[n % 2], None, "bench",
                            rules=rules, today=date(2026, 11, 22))
    receiver = Receiver().start()
    receiver.secret = "whsec_bench"
    try:
        print(f"database: {database_url.split('://')[0]}; {await TierEvent.all().count():,} tier changes in the log")
        for count in args.partners:
            codes = [f"B{count}P{n}" for n in range(count)]
            for code in codes:
                await add_partner(code, code)
                await webhooks.set_webhook(code, receiver.url, now=datetime.now(timezone.utc), allow_http=True)
            # From the start of the log, and one secret for all: the one receiver checks each.
            await PartnerWebhook.filter(partner__code__in=codes).update(cursor=0, secret=receiver.secret)
            received = len(receiver.received)
            async with dispatcher(settings, rules, owner=f"bench-{count}") as running:
                began = time.perf_counter()
                turns = 0
                while await running.tick():
                    turns += 1
                seconds = time.perf_counter() - began
            got = receiver.received[received:]
            assert len(got) == args.events * count and all(r.verified and r.answered == 200 for r in got), len(got)
            print(f"{count} partner(s): {len(got):,} deliveries in {seconds:.2f} s "
                  f"({len(got) / seconds:,.0f}/s; {turns} turns of at most 100 per partner)")
    finally:
        receiver.stop()
        await Tortoise.close_connections()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--partners", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite://{Path(folder) / 'bench.db'}"
        asyncio.run(_run(args, url))


if __name__ == "__main__":
    main()
