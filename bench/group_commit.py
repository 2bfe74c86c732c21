"""Group commit of the write path alone (issue 12): concurrent flightAccrue postings
through the service (loyalty.ledger.flight_accrue, no HTTP, no GraphQL) with group
commit on and off, interleaved rounds, each round on a fresh copy of the 10k data set.
Outside the test suite.

    .venv/bin/python -m bench.group_commit                 # SQLite, bench/data/hotpath10k.db
    .venv/bin/python -m bench.group_commit --rounds 5 --postings 2000 --concurrency 16

Each round copies the data set (bench.hotpath builds it), opens it in this process and
posts `--postings` flights (J, 1,000 km, yesterday), each to the next ACTIVE member of a
shuffled list under its own externalRef, from `--concurrency` tasks at once. It counts
the COMMITs (at the driver) and the process's CPU time. Ratio = on / off postings per
second of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from bench import dataset
from bench.dataset import sqlite_path
from bench.hotpath import DEFAULT_URL, MEMBERS


async def _round(source: Path, copy: Path, mode: str, postings: int, concurrency: int) -> dict:
    from tortoise import Tortoise, connections
    from tortoise.backends.sqlite.client import SqliteTransactionWrapper

    from api.db import init_orm
    from api.settings import load_settings
    from loyalty.ledger import FlightDetails, flight_accrue
    from loyalty.rules import load_rules
    from members.access import Caller, Role

    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, copy)
    settings = load_settings(environ={"DATABASE_URL": f"sqlite://{copy}", "LOYALTY_GROUP_COMMIT": mode}, dotenv=None)
    await init_orm(settings)
    commits = 0
    real_commit = SqliteTransactionWrapper.commit

    async def counted(self):
        nonlocal commits
        commits += 1
        await real_commit(self)

    SqliteTransactionWrapper.commit = counted
    try:
        rows = await connections.get("default").execute_query_dict(
            "SELECT card_number FROM member WHERE status = 'ACTIVE' ORDER BY id")
        cards = [row["card_number"] for row in rows]
        random.Random(12).shuffle(cards)
        rules, today = load_rules(settings.rules_path), settings.today()
        flight = FlightDetails("CA", "1501", today - timedelta(days=1), "PEK", "SHA", 1000, "J")
        airline, numbers = Caller(Role.AIRLINE, "bench"), iter(range(postings))

        async def poster() -> None:
            for n in numbers:
                await flight_accrue(airline, cards[n % len(cards)], flight, f"gc-{n}", rules=rules, today=today)

        commits, started, cpu = 0, time.perf_counter(), time.process_time()
        await asyncio.gather(*(poster() for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        SqliteTransactionWrapper.commit = real_commit
        await Tortoise.close_connections()
    return {"rate": postings / seconds, "commits": commits, "cpu_ms": 1000 * cpu / postings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="the 10k SQLite data set (built here if missing)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postings", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(dataset.ensure(args.database_url, MEMBERS, MEMBERS, rebuild=False,
                               progress=lambda message: print(message, file=sys.stderr, flush=True)))
    source = sqlite_path(args.database_url)
    dataset._checkpoint_sqlite(source)
    copy = source.with_name(source.stem + "-group-commit.db")
    results: dict[str, list[dict]] = {"on": [], "off": []}
    load_before = __import__("os").getloadavg()[0]
    for round_ in range(args.rounds):
        for mode in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
            result = asyncio.run(_round(source, copy, mode, args.postings, args.concurrency))
            results[mode].append(result)
            print(f"round {round_ + 1} group commit {mode}: {result['rate']:,.0f} postings/s, "
                  f"{result['commits']:,} COMMITs, {result['cpu_ms']:.2f} ms CPU a posting", file=sys.stderr, flush=True)
    load_after = __import__("os").getloadavg()[0]
    ratios = [on["rate"] / off["rate"] for on, off in zip(results["on"], results["off"])]
    print(f"#### {args.rounds} interleaved rounds of {args.postings:,} postings, {args.concurrency} at once; "
          f"load average {load_before:.1f} before, {load_after:.1f} after\n")
    print("| group commit | postings/s, median | COMMITs a round, median | CPU ms a posting, median |")
    print("|---|---:|---:|---:|")
    for mode in ("on", "off"):
        rows = results[mode]
        print(f"| {mode} | {statistics.median(r['rate'] for r in rows):,.0f} | "
              f"{statistics.median(r['commits'] for r in rows):,.0f} | {statistics.median(r['cpu_ms'] for r in rows):.2f} |")
    print(f"\non / off, same round: median {statistics.median(ratios):.2f} "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
