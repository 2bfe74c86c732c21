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

Activities (`--activities N`, 0 to skip): N reproducible activity rows (four flights to
one partner stay, on the cards of ACTIVITY_MEMBERS members, dates within the claims
window), each kind on a fresh database where the members were imported and the partner
registered before the clock starts:

- activities raw: the rows parsed and checked before the clock (ActivityImport.prepare:
  earnings and fingerprints) and the members' ids looked up; timed: one executemany of
  the rows' ledger entries (one entry per row, no tier bonus), their ids read back, one
  executemany of their credit lots and one of the members' balance updates, in one
  transaction. A floor: the import also writes bonuses, upgrades and their events, and
  the retention totals.
- activities import: `api.bulk.import_activities` (what `loyalty import activities FILE`
  calls), timed whole.
- activities one by one (before): each row through flight_accrue / partner_accrue in its
  own transaction, as `import activities` did before it was batched (first round only).
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
from datetime import date, timedelta
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


ACTIVITY_MEMBERS = 5_000
PARTNER_CODE = "HOTELCO"
ACTIVITY_HEADER = ["kind", "card_number", "family_name", "external_ref", "activity_date", "carrier", "flight_number",
                   "origin", "destination", "distance_km", "fare_class", "partner_code", "miles", "description"]
AIRPORTS = ["PEK", "PVG", "SHA", "CAN", "CTU", "SZX", "KMG", "XIY", "HKG", "FRA", "LHR", "JFK", "NRT", "SIN"]
FARES = "JCDYBMHQVWSTLK"


def write_activity_rows(path: Path, members_path: Path, rows: int, seed: int = 11) -> None:
    """N activity rows on the members of `members_path`: four flights to one partner stay."""
    with members_path.open(encoding="utf-8", newline="") as handle:
        members = [(row["card_number"], row["family_name"]) for row in csv.DictReader(handle)]
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ACTIVITY_HEADER)
        for n in range(rows):
            card, family = rng.choice(members)
            day = (TODAY - timedelta(days=rng.randrange(1, 150))).isoformat()
            if n % 5 == 4:
                writer.writerow(["PARTNER", card, family, f"P-{n}", day, "", "", "", "", "", "", PARTNER_CODE,
                                 rng.randrange(100, 2000), "2 nights"])
            else:
                origin, destination = rng.sample(AIRPORTS, 2)
                writer.writerow(["FLIGHT", card, "", f"F-{n}", day, "CA", str(rng.randrange(1, 9999)), origin,
                                 destination, rng.randrange(300, 12000), rng.choice(FARES), "", "", ""])


async def _with_members(database_url: str, members_path: Path) -> None:
    """The activities' members imported and the partner registered (not timed)."""
    from api import bulk
    from api.db import init_orm
    from members.partners import add_partner

    await init_orm(_settings(database_url))
    await bulk.import_members(members_path, members_path.with_suffix(".rejected.csv"), today=TODAY,
                              progress=lambda *_: None)
    await add_partner(PARTNER_CODE, "Hotel Co")


def _activity_rows(path: Path) -> list:
    from api import bulk

    with path.open(encoding="utf-8", newline="") as handle:
        return [bulk._activity_row(row) for row in csv.DictReader(handle)]


def _activity_summary(outcomes: list) -> dict:
    return {"taken": sum(o is True for o in outcomes), "present": sum(o is False for o in outcomes),
            "rejected": sum(not isinstance(o, bool) for o in outcomes)}


async def _activities_raw_child(path: Path, database_url: str, batch_size: int) -> dict:
    """The rows' ledger entries, lots and balances inserted raw (see the module docstring)."""
    from tortoise import Tortoise, connections
    from tortoise.transactions import in_transaction

    from api import bulk
    from loyalty import calendar as cal
    from loyalty.ledger import AIRLINE_SOURCE, ActivityImport, _ReadyFlight
    from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind
    from loyalty.rules import load_rules
    from members.bulk_insert import BulkInsert
    from members.models import Member

    members_path = path.with_name("activity-members.csv")
    await _with_members(database_url, members_path)
    try:
        rules = load_rules()
        importer = ActivityImport(bulk.SystemCaller(bulk.Role.AIRLINE, "bench"), None, rules=rules, today=TODAY)
        prepared = importer.prepare(_activity_rows(path))
        ids = dict(await Member.all().values_list("card_number", "id"))
        entries, lots, balances = [], [], []
        for item in prepared:
            if isinstance(item, _ReadyFlight):
                earning, flight = item.earning, item.flight
                member_id = ids[item.card]
                entries.append((member_id, LedgerEntryKind.FLIGHT, flight.date, earning.qualifying_miles,
                                earning.segments_hundredths, earning.redeemable_miles, AIRLINE_SOURCE, item.ref,
                                item.print_))
                miles, day = earning.redeemable_miles, flight.date
            else:
                credit = item.credit
                member_id = ids[credit.card]
                entries.append((member_id, LedgerEntryKind.PARTNER, credit.activity_date, 0, 0, credit.miles,
                                PARTNER_CODE, credit.ref, credit.print_))
                miles, day = credit.miles, credit.activity_date
            lots.append((member_id, cal.credit_expiry(day, rules.credit_validity_months), miles))
            balances.append([miles, member_id])
        entry_insert = BulkInsert(LedgerEntry, ["member_id", "kind", "activity_date", "qualifying_miles",
                                                "qualifying_segments", "redeemable_miles", "source", "external_ref",
                                                "fingerprint"])
        lot_insert = BulkInsert(CreditLot, ["entry_id", "member_id", "expires_on", "remaining"])
        connection = connections.get("default")
        postgres = connection.capabilities.dialect == "postgres"
        entry_sql, lot_sql = entry_insert.sql(connection), lot_insert.sql(connection)
        balance_sql = ('UPDATE "member" SET "redeemable_miles" = "redeemable_miles" + '
                       + ("$1 WHERE \"id\" = $2" if postgres else "? WHERE \"id\" = ?"))
        entry_values = entry_insert.values(entries)

        async def insert() -> dict:
            async with in_transaction() as transaction:
                await transaction.execute_many(entry_sql, entry_values)
                rows = await transaction.execute_query_dict('SELECT "id" FROM "ledger_entry" ORDER BY "id"')
                await transaction.execute_many(lot_sql, lot_insert.values(
                    (row["id"], *lot) for row, lot in zip(rows, lots, strict=True)))
                await transaction.execute_many(balance_sql, balances)
            return {"taken": len(entries), "present": 0, "rejected": 0}

        return await _measured(insert)
    finally:
        await Tortoise.close_connections()


async def _activities_import_child(path: Path, database_url: str, batch_size: int) -> dict:
    """`api.bulk.import_activities` on the file, as `loyalty import activities FILE` runs it."""
    from tortoise import Tortoise

    from api import bulk
    from loyalty.rules import load_rules

    await _with_members(database_url, path.with_name("activity-members.csv"))
    try:
        async def run() -> dict:
            summary = await bulk.import_activities(path, path.with_suffix(".rejected.csv"), rules=load_rules(),
                                                   today=TODAY, progress=lambda *_: None)
            return {"taken": summary.taken, "present": summary.present, "rejected": summary.rejected}

        return await _measured(run)
    finally:
        await Tortoise.close_connections()


async def _activities_one_by_one_child(path: Path, database_url: str, batch_size: int) -> dict:
    """Each row through flight_accrue / partner_accrue in its own transaction (the import
    before it was batched)."""
    from tortoise import Tortoise

    from api import bulk
    from loyalty.ledger import FlightRow, flight_accrue, partner_accrue
    from loyalty.rules import load_rules
    from members.errors import DomainError, ForbiddenError

    await _with_members(database_url, path.with_name("activity-members.csv"))
    try:
        rules = load_rules()
        airline = bulk.SystemCaller(bulk.Role.AIRLINE, bulk.IMPORT_ACTOR)
        partner = bulk.SystemCaller(bulk.Role.PARTNER, bulk.IMPORT_ACTOR, PARTNER_CODE)

        async def run() -> dict:
            outcomes: list = []
            for row in _activity_rows(path):
                try:
                    if isinstance(row, FlightRow):
                        result = await flight_accrue(airline, row.card_number, row.flight, row.external_ref,
                                                     rules=rules, today=TODAY)
                    else:
                        result = await partner_accrue(partner, row.card_number, row.family_name, row.miles,
                                                      row.activity_date, row.description, row.external_ref,
                                                      rules=rules, today=TODAY)
                    outcomes.append(not result.replayed)
                except (DomainError, ForbiddenError) as error:
                    outcomes.append(error)
            return _activity_summary(outcomes)

        return await _measured(run)
    finally:
        await Tortoise.close_connections()


CHILDREN = {
    "raw": _raw_child, "import": _import_child, "activities-raw": _activities_raw_child,
    "activities-import": _activities_import_child, "activities-one-by-one": _activities_one_by_one_child,
}


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
    parser.add_argument("--activities", type=int, default=5_000, help="activity rows (0: members only)")
    parser.add_argument("--activity-rounds", type=int, default=2, help="rounds of the activities' raw, import, one by one")
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
        if args.activities:
            _activities(args, Path(tmp), database_url)


def _activities(args: argparse.Namespace, tmp: Path, database_url: str) -> None:
    members_path, source = tmp / "activity-members.csv", tmp / "activities.csv"
    write_rows(members_path, ACTIVITY_MEMBERS)
    write_activity_rows(source, members_path, args.activities)
    print(f"activities: {args.activities} rows on {ACTIVITY_MEMBERS:,} members, "
          f"{args.activity_rounds} rounds", flush=True)
    results: dict[str, list[dict]] = {"activities-raw": [], "activities-import": [], "activities-one-by-one": []}
    expected = None
    for round_ in range(1, args.activity_rounds + 1):
        line = []
        for kind, label in (("activities-raw", "raw"), ("activities-import", "import"),
                            ("activities-one-by-one", "one by one")):
            if kind == "activities-one-by-one" and round_ > 1:
                continue  # the slow "before": first round only
            done = run_child(kind, source, database_url, args.batch_size)
            if kind != "activities-raw":
                if expected is None:
                    expected = (done["taken"], done["present"], done["rejected"])
                if (done["taken"], done["present"], done["rejected"]) != expected:
                    raise SystemExit(f"{label} did not give the same outcomes: {done} against {expected}")
            results[kind].append(done)
            line.append(f"{label} {args.activities / done['seconds']:,.0f} rows/s "
                        f"({done['seconds']:.1f} s, CPU {done['cpu_seconds']:.1f} s)")
        print(f"round {round_}: " + ", ".join(line), flush=True)
    best = {kind: min(r["seconds"] for r in rs) for kind, rs in results.items()}
    cpu = {kind: statistics.median(r["cpu_seconds"] for r in rs) for kind, rs in results.items()}
    print(f"best of {args.activity_rounds}: raw {args.activities / best['activities-raw']:,.0f} rows/s, "
          f"import {args.activities / best['activities-import']:,.0f} rows/s "
          f"(ratio {best['activities-raw'] / best['activities-import']:.2f}, CPU "
          f"{cpu['activities-raw'] / cpu['activities-import']:.2f}), one by one "
          f"{args.activities / best['activities-one-by-one']:,.0f} rows/s "
          f"(ratio {best['activities-raw'] / best['activities-one-by-one']:.2f}, CPU "
          f"{cpu['activities-raw'] / cpu['activities-one-by-one']:.2f}); outcomes {expected} (taken, present, rejected)")


if __name__ == "__main__":
    main()
