"""Bulk import benchmark: `loyalty import members` against a raw executemany of the same
rows, in one run, each on a fresh migrated database. Outside the test suite.

Run from the repository root (SQLite in a temporary directory by default):

    .venv/bin/python -m bench.imports                         # 100,000 rows, and 10,000 for memory
    .venv/bin/python -m bench.imports --rows 20000
    .venv/bin/python -m bench.imports --database-url postgres://postgres@127.0.0.1:5432/loyalty_bulk_bench_test

What it does: writes N reproducible member rows as a CSV file (card numbers given, as
in a migration from another system; every row has a phone, half an email, addresses
spread over the shipped address rules and some unknown cities). Then, each on a
database dropped, re-created and migrated just before (a PostgreSQL database name must
end in "test"):

- raw: the same rows, validated and given their office before the clock starts (with
  the enrolment's own functions), inserted with one executemany into `member`, their
  ids read back by card number, and one executemany of their `region_assignment` rows,
  in one transaction. The clock covers only the database work.
- import: `api.bulk.import_members` (what `loyalty import members FILE` calls) on the
  CSV file, in a child process, so that its peak RSS (getrusage ru_maxrss) is the
  import's own. The clock covers the whole call: reading the file, validation, lookups,
  writes and the rejects file.

Ratio = import rows/s / raw rows/s. The machine may be shared: `--repeat` rounds of raw
then import, and the best time of each is compared (the median ratio is printed too).
For flat memory the import also runs on 10,000 rows (fresh database again) and the two
peak RSS figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

from api.bulk import MEMBER_BATCH
from api.settings import load_settings

HEADER = ["card_number", "family_name", "given_name", "birth_date", "phone", "email",
          "country", "province", "city", "line", "postal_code"]
FAMILY = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "Smith", "Müller", "Tanaka", "Kim"]
GIVEN = ["芳", "伟", "娜", "敏", "静", "磊", "Anna", "Jun", "Lei", "Mei", "Hao", "Yan"]
TODAY = date(2026, 11, 20)
MEMORY_ROWS = 10_000


def write_rows(path: Path, rows: int, seed: int = 7) -> None:
    """N member rows, the same for the same N and seed, streamed to the file."""
    from members.cards import card_number
    from members.regions import region_data

    rng = random.Random(seed)
    places = [(r["country"], r.get("province") or "", r.get("city") or "") for r in region_data()["address_rules"]]
    places += [("CN", "", "Nowhere Town"), ("US", "", "Springfield"), ("DE", "", "Berlin")]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            country, province, city = rng.choice(places)
            writer.writerow([
                card_number(10_000_000 + n), rng.choice(FAMILY), rng.choice(GIVEN),
                date(1950 + rng.randrange(55), 1 + rng.randrange(12), 1 + rng.randrange(28)).isoformat(),
                f"+86 139 {n:08d}", f"m{n}@example.com" if n % 2 else "",
                country, province, city or "Beijing", f"{rng.randrange(1, 999)} Main Road", f"{rng.randrange(100000, 999999)}",
            ])


def _settings(database_url: str):
    return replace(load_settings(environ={}, dotenv=None), database_url=database_url)


async def _fresh_database(database_url: str) -> None:
    """Drop, re-create and migrate the database (with the region data)."""
    from tortoise import Tortoise

    from api.db import migrate

    if database_url.startswith(("postgres://", "postgresql://")):
        import asyncpg

        parsed = urlparse(database_url.replace("postgresql://", "postgres://"))
        name = parsed.path.lstrip("/")
        if not name.endswith("test"):
            raise SystemExit(f"refusing to drop database {name!r}: its name must end in 'test'")
        admin = await asyncpg.connect(host=parsed.hostname, port=parsed.port or 5432,
                                      user=parsed.username or "postgres", password=parsed.password, database="postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
    else:
        Path(database_url.removeprefix("sqlite://").split("?")[0]).unlink(missing_ok=True)
    await migrate(_settings(database_url))
    await Tortoise.close_connections()


async def raw_executemany(path: Path, database_url: str) -> tuple[int, float]:
    """(rows, seconds) of the raw insert of the file's rows into a fresh database."""
    from tortoise import Tortoise, connections
    from tortoise.transactions import in_transaction

    from api.db import init_orm
    from members.addresses import Address, AddressBook
    from members.bulk_insert import BulkInsert
    from members.models import Member, RegionAssignment
    from members.services import Enrolment, validate_enrolment

    await _fresh_database(database_url)
    await init_orm(_settings(database_url))
    try:
        book = await AddressBook.load()
        members = []
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                valid = validate_enrolment(Enrolment(
                    row["family_name"], row["given_name"],
                    Address(row["country"], row["city"], row["province"] or None, row["line"] or None,
                            row["postal_code"] or None),
                    date.fromisoformat(row["birth_date"]), row["phone"] or None, row["email"] or None,
                ), TODAY)
                members.append(valid.member_columns(row["card_number"], book.office_for(valid.address), TODAY))
        member_insert = BulkInsert(Member, list(members[0]))
        assignment_insert = BulkInsert(RegionAssignment, ["member_id", "office_id", "reason", "actor"])
        connection = connections.get("default")
        member_sql, assignment_sql = member_insert.sql(connection), assignment_insert.sql(connection)
        member_values = member_insert.values(tuple(m.values()) for m in members)
        offices = [m["office_id"] for m in members]
        started = time.perf_counter()
        async with in_transaction() as transaction:
            await transaction.execute_many(member_sql, member_values)
            ids = await transaction.execute_query_dict('SELECT "id" FROM "member" ORDER BY "id"')
            await transaction.execute_many(assignment_sql, assignment_insert.values(
                (row["id"], office, "enrolment", "system:import") for row, office in zip(ids, offices, strict=True)
            ))
        seconds = time.perf_counter() - started
        return len(members), seconds
    finally:
        await Tortoise.close_connections()


async def _import_child(path: Path, database_url: str, batch_size: int) -> dict:
    from tortoise import Tortoise

    from api import bulk
    from api.db import init_orm

    await init_orm(_settings(database_url))
    try:
        started = time.perf_counter()
        summary = await bulk.import_members(path, path.with_suffix(".rejected.csv"), today=TODAY,
                                            progress=lambda *_: None, batch_size=batch_size)
        seconds = time.perf_counter() - started
    finally:
        await Tortoise.close_connections()
    return {"taken": summary.taken, "present": summary.present, "rejected": summary.rejected, "seconds": seconds,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_import(path: Path, database_url: str, batch_size: int) -> dict:
    """The import of the file on a fresh database, in a child process."""
    asyncio.run(_fresh_database(database_url))
    child = subprocess.run(
        [sys.executable, "-m", "bench.imports", "--import-only", str(path), "--database-url", database_url,
         "--batch-size", str(batch_size)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--batch-size", type=int, default=MEMBER_BATCH, help="rows per transaction of the import")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of raw then import; the best of each counts")
    parser.add_argument("--import-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.import_only:
        print(json.dumps(asyncio.run(_import_child(args.import_only, args.database_url, args.batch_size))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as tmp:
        database_url = args.database_url or f"sqlite://{Path(tmp) / 'bench.db'}"
        source = Path(tmp) / "members.csv"
        write_rows(source, args.rows)
        kind = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
        print(f"{kind}, {args.rows} rows, import batches of {args.batch_size}, {args.repeat} rounds", flush=True)
        raw_times, import_times, rss = [], [], []
        for round_ in range(1, args.repeat + 1):
            rows, raw_seconds = asyncio.run(raw_executemany(source, database_url))
            result = run_import(source, database_url, args.batch_size)
            if (result["taken"], result["present"], result["rejected"]) != (rows, 0, 0):
                raise SystemExit(f"the import did not take every row: {result}")
            raw_times.append(raw_seconds)
            import_times.append(result["seconds"])
            rss.append(result["max_rss_mb"])
            print(f"round {round_}: raw executemany {rows / raw_seconds:,.0f} rows/s ({raw_seconds:.1f} s), "
                  f"import members {rows / result['seconds']:,.0f} rows/s ({result['seconds']:.1f} s), "
                  f"ratio {raw_seconds / result['seconds']:.2f}", flush=True)
        best_raw, best_import = args.rows / min(raw_times), args.rows / min(import_times)
        print(f"best of {args.repeat}: raw executemany {best_raw:,.0f} rows/s, import members {best_import:,.0f} rows/s, "
              f"ratio {best_import / best_raw:.2f}")
        print(f"median: ratio {statistics.median(raw_times) / statistics.median(import_times):.2f}")
        if args.rows > MEMORY_ROWS:
            small = Path(tmp) / "members-small.csv"
            write_rows(small, MEMORY_ROWS)
            small_result = run_import(small, database_url, args.batch_size)
            print(f"peak RSS of the import: {small_result['max_rss_mb']:.0f} MB at {MEMORY_ROWS:,} rows, "
                  f"{max(rss):.0f} MB at {args.rows:,} rows")


if __name__ == "__main__":
    main()
