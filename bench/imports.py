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
import os
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


async def _server_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving this database (from /proc:
    the server runs on this machine); {} on SQLite, whose engine runs in this process."""
    from tortoise import connections

    connection = connections.get("default")
    if connection.capabilities.dialect != "postgres":
        return {}
    _, rows = await connection.execute_query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for row in rows:
        try:
            fields = Path(f"/proc/{row['pid']}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[row["pid"]] = (int(fields[11]) + int(fields[12])) / ticks
    return cpu


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread, SQLite's included
    return usage.ru_utime + usage.ru_stime


async def _measured(work) -> dict:
    """Wall and CPU seconds (this process, plus the database server's backends) of `work()`."""
    server_before, own_before, started = await _server_cpu(), _own_cpu(), time.perf_counter()
    result = await work()
    seconds, own = time.perf_counter() - started, _own_cpu() - own_before
    server_after = await _server_cpu()
    server = sum(after - server_before.get(pid, 0.0) for pid, after in server_after.items())
    return {**result, "seconds": seconds, "cpu_seconds": own + server, "server_cpu_seconds": server,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


async def _raw_child(path: Path, database_url: str, batch_size: int) -> dict:
    """The raw insert of the file's rows: rows validated and given their office before the
    clock starts; measured: one executemany of members, their ids, one of assignments."""
    from tortoise import Tortoise, connections
    from tortoise.transactions import in_transaction

    from api.db import init_orm
    from members.addresses import Address, AddressBook
    from members.bulk_insert import BulkInsert
    from members.models import Member, RegionAssignment
    from members.services import Enrolment, validate_enrolment

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

        async def insert() -> dict:
            async with in_transaction() as transaction:
                await transaction.execute_many(member_sql, member_values)
                ids = await transaction.execute_query_dict('SELECT "id" FROM "member" ORDER BY "id"')
                await transaction.execute_many(assignment_sql, assignment_insert.values(
                    (row["id"], office, "enrolment", "system:import") for row, office in zip(ids, offices, strict=True)
                ))
            return {"taken": len(members), "present": 0, "rejected": 0}

        return await _measured(insert)
    finally:
        await Tortoise.close_connections()


async def _import_child(path: Path, database_url: str, batch_size: int) -> dict:
    """`api.bulk.import_members` on the file, as `loyalty import members FILE` runs it."""
    from tortoise import Tortoise

    from api import bulk
    from api.db import init_orm

    await init_orm(_settings(database_url))
    try:
        async def run() -> dict:
            summary = await bulk.import_members(path, path.with_suffix(".rejected.csv"), today=TODAY,
                                                progress=lambda *_: None, batch_size=batch_size)
            return {"taken": summary.taken, "present": summary.present, "rejected": summary.rejected}

        return await _measured(run)
    finally:
        await Tortoise.close_connections()


CHILDREN = {"raw": _raw_child, "import": _import_child}


def run_child(kind: str, path: Path, database_url: str, batch_size: int) -> dict:
    """`kind` on a fresh database, in a child process (this one never holds the rows, so
    the child's peak RSS, which Linux carries over exec from its parent, is its own)."""
    asyncio.run(_fresh_database(database_url))
    child = subprocess.run(
        [sys.executable, "-m", "bench.imports", "--child", kind, str(path), "--database-url", database_url,
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
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path = args.child
        print(json.dumps(asyncio.run(CHILDREN[kind](Path(path), args.database_url, args.batch_size))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as tmp:
        database_url = args.database_url or f"sqlite://{Path(tmp) / 'bench.db'}"
        source = Path(tmp) / "members.csv"
        write_rows(source, args.rows)
        kind = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
        print(f"{kind}, {args.rows} rows, import batches of {args.batch_size}, {args.repeat} rounds", flush=True)
        raws, imports = [], []
        for round_ in range(1, args.repeat + 1):
            raw = run_child("raw", source, database_url, args.batch_size)
            done = run_child("import", source, database_url, args.batch_size)
            if (done["taken"], done["present"], done["rejected"]) != (args.rows, 0, 0):
                raise SystemExit(f"the import did not take every row: {done}")
            raws.append(raw)
            imports.append(done)
            print(f"round {round_}: raw executemany {args.rows / raw['seconds']:,.0f} rows/s "
                  f"({raw['seconds']:.1f} s, CPU {raw['cpu_seconds']:.1f} s), "
                  f"import members {args.rows / done['seconds']:,.0f} rows/s "
                  f"({done['seconds']:.1f} s, CPU {done['cpu_seconds']:.1f} s), "
                  f"ratio {raw['seconds'] / done['seconds']:.2f}", flush=True)

        def best(results: list[dict], key: str) -> float:
            return min(result[key] for result in results)

        def median(results: list[dict], key: str) -> float:
            return statistics.median(result[key] for result in results)

        print(f"best of {args.repeat}: raw executemany {args.rows / best(raws, 'seconds'):,.0f} rows/s, "
              f"import members {args.rows / best(imports, 'seconds'):,.0f} rows/s, "
              f"ratio {best(raws, 'seconds') / best(imports, 'seconds'):.2f}")
        print(f"median ratio {median(raws, 'seconds') / median(imports, 'seconds'):.2f}; "
              f"CPU-time ratio (this process + database backends) "
              f"{median(raws, 'cpu_seconds') / median(imports, 'cpu_seconds'):.2f}")
        if args.rows > MEMORY_ROWS:
            small = Path(tmp) / "members-small.csv"
            write_rows(small, MEMORY_ROWS)
            small_result = run_child("import", small, database_url, args.batch_size)
            print(f"peak RSS of the import process: {small_result['max_rss_mb']:.0f} MB at {MEMORY_ROWS:,} rows, "
                  f"{max(result['max_rss_mb'] for result in imports):.0f} MB at {args.rows:,} rows")


if __name__ == "__main__":
    main()
