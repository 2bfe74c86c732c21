"""Time the finance reports and a rules preview on two data set sizes (issue 15).

    .venv/bin/python -m bench.finance                      # 10k and 100k members, SQLite files in bench/data/
    .venv/bin/python -m bench.finance --database-url postgres://postgres@127.0.0.1:5432/loyalty_fin_{size}_test

For each size: the open lots and the credits of the last 12 months (what the reports
read), then the median of 5 runs of `milesLiability` (today), of `milesBreakage` (the
last 12 credit months), and one `loyalty rules preview` pass with J earning 400 % (a full
pass over the members: its time should grow with the members, its memory not).
Data sets: bench/dataset.py (the demo's members as a pool, copied).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench import dataset
from bench.dataset import DEFAULT_POOL, size_label, url_for

DEFAULT_URL = f"sqlite://{dataset.ROOT / 'bench' / 'data' / 'finance{size}.db'}"


async def measure(url: str) -> dict:
    from tortoise import Tortoise

    from api.db import init_orm
    from loyalty import calendar as cal
    from loyalty.liability import miles_breakage, miles_liability
    from loyalty.models import CreditLot, LedgerEntry
    from loyalty.rulechange import change_rules, rules_file_hash
    from loyalty.rules import DEFAULT_RULES_PATH, load_rules
    from members.access import Caller, Role

    settings = dataset.settings_for(url)
    await init_orm(settings)
    try:
        today = datetime.now(settings.tz).date()
        admin = Caller(Role.ADMIN, "bench")
        start = cal.add_months(cal.month_start(today), -11)
        counts = {
            "open lots": await CreditLot.filter(remaining__gt=0, expires_on__gte=today).count(),
            "credits of 12 months": await LedgerEntry.filter(redeemable_miles__gt=0, activity_date__gte=start).count(),
        }

        async def timed(work) -> float:
            times = []
            for _ in range(5):
                began = time.perf_counter()
                await work()
                times.append(time.perf_counter() - began)
            return statistics.median(times) * 1000

        liability = await timed(lambda: miles_liability(admin, None, today=today))
        breakage = await timed(lambda: miles_breakage(admin, start, today))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rules.toml"
            path.write_text(DEFAULT_RULES_PATH.read_text(encoding="utf-8").replace("J = 300", "J = 400"), encoding="utf-8")
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            began = time.perf_counter()
            report = await change_rules(load_rules(path), rules_file_hash(path), current=load_rules(), today=today)
            preview = time.perf_counter() - began
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {**counts, "liability ms": round(liability, 1), "breakage ms": round(breakage, 1),
                "preview s": round(preview, 1), "preview members": report.examined, "would change": report.changed,
                "max RSS growth MB": round((rss_after - rss_before) / 1024, 1)}
    finally:
        await Tortoise.close_connections()


async def main(args: argparse.Namespace) -> None:
    results = {}
    small_url = url_for(args.database_url, args.members_small)
    for members in (args.members_small, args.members_large):
        url = url_for(args.database_url, members)
        await dataset.ensure(url, members, args.pool, rebuild=False, progress=print,
                             pool_url=small_url if members > args.pool else None, upgrade=True)
        results[size_label(members)] = await measure(url)
    keys = list(next(iter(results.values())))
    print("| | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{row[key]:,}" if isinstance(row[key], int) else str(row[key])
                                        for row in results.values()) + " |")
    print(dataset.environment_note())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL, help="with {size} (10k / 100k)")
    parser.add_argument("--members-small", type=int, default=10_000)
    parser.add_argument("--members-large", type=int, default=100_000)
    parser.add_argument("--pool", type=int, default=DEFAULT_POOL)
    asyncio.run(main(parser.parse_args()))
