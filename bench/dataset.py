"""Bench data sets: the demo's members (`api.demo.build_demo`, the programme's rules
engine) as a pool, grown to any multiple of it by copying the pool in SQL.

A data set of N members is the demo's first P members (the pool, P = --pool, 10,000 by
default) plus N/P - 1 copies of them. A copy is the pool with every id moved past the
ones before it (members, ledger entries, lots, tier events, care calls, feedback and
whatever else hangs off a member by a foreign key), and what must be unique made
unique: a new card number (Luhn-valid, the demo's own numbering continued), phone and
email, and externalRefs suffixed with the copy number. Each copy takes the name of
another pool member, so names do not repeat in blocks. Offices, tiers, balances and
dates are the pool's: the same 142 offices with N/P times the members each, and a
ledger that still reconciles member by member.

Everything is INSERT ... SELECT, one statement per table and copy, the columns read from
the models' meta (a column added later is copied as it is; a new unique column stops
the build with a message saying what to do). Derived state is then recomputed by the
daily jobs in DERIVED_JOBS (add a new job there when a change adds derived state that
lives outside the copied tables).

A built data set records its parameters and two fingerprints in the table
`bench_dataset`: of the code that shapes its data (the demo, the rules engine, the
rules file, this module) and of the schema (models, migrations, the code of the derived
state). The bench reuses a data set whose record matches; when only the schema differs
it upgrades the data set in place (pending migrations, then DERIVED_JOBS, the same
steps a full build ends with), which gives the data a full build would give as long as
what the schema change adds is derived state recomputed by DERIVED_JOBS or filled by its
migration; otherwise (or with --rebuild) it builds it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
META_TABLE = "bench_dataset"
MAP_TABLE = "bench_member_map"
DEFAULT_POOL = 10_000
# A copy's member takes the name of pool member (i + copy * NAME_STEP) mod pool.
NAME_STEP = 7_919
# What shapes a data set: a change to any of these files, or to DATASET_VERSION (raise it
# when the copying below changes what it writes), rebuilds it.
DATASET_VERSION = 1
# (The copying below is versioned by DATASET_VERSION, not by this file's text.)
DATA_FILES = (
    "api/demo.py", "api/demo_care.py", "loyalty/book.py", "loyalty/engine.py", "loyalty/calendar.py", "loyalty/rules.py",
    "loyalty/default_rules.toml", "members/data/regions.json",
)
SCHEMA_FILES = ("members/models.py", "loyalty/models.py", "care/models.py", "care/segments.py", "members/regions.py",
                "care/region_counts.py")


@dataclass(frozen=True)
class DatasetInfo:
    members: int
    pool: int
    today: str  # the demo's "today": ledgers run to it, nothing is due on it
    code: str
    built_at: str
    build_seconds: float
    steps: dict[str, float]  # seconds per build step


def _digest(label: str, paths: list[Path]) -> str:
    digest = hashlib.sha256(label.encode())
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()[:16]


def code_fingerprint() -> str:
    """``<data>-<schema>``: what shapes the data, then what shapes the schema."""
    data = _digest(f"dataset {DATASET_VERSION}", [ROOT / name for name in DATA_FILES])
    schema = _digest("schema", [ROOT / name for name in SCHEMA_FILES] + sorted((ROOT / "migrations").glob("*.py")))
    return f"{data}-{schema}"


def same_data(code: str, other: str) -> bool:
    """Both fingerprints name the same data (their schemas may differ)."""
    return code.split("-")[0] == other.split("-")[0]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite://").split("?", 1)[0])


# ---- database files and databases -------------------------------------------------------


async def _admin_connection(url: str):
    import asyncpg

    parsed = urlparse(url.replace("postgresql://", "postgres://"))
    admin = await asyncpg.connect(
        host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
        password=parsed.password, database="postgres",
    )
    return admin, parsed.path.lstrip("/")


def check_disposable(url: str) -> None:
    """PostgreSQL databases the bench drops must be named ..._test (as the test suite's)."""
    if is_postgres(url) and not urlparse(url).path.rstrip("/").endswith("_test"):
        raise SystemExit(f"{url}: a PostgreSQL database the bench may drop must have a name ending in _test")


async def drop_and_create(url: str, template_url: str | None = None) -> None:
    """An empty database at `url`, or a copy of `template_url`'s (same kind)."""
    check_disposable(url)
    if is_postgres(url):
        admin, name = await _admin_connection(url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if template_url is None:
                await admin.execute(f'CREATE DATABASE "{name}"')
            else:
                template = urlparse(template_url).path.lstrip("/")
                # A template must have no other session: end the bench's own leftovers.
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    template,
                )
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await admin.close()
        return
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if template_url is not None:
        source = sqlite_path(template_url)
        _checkpoint_sqlite(source)
        shutil.copyfile(source, path)


def _checkpoint_sqlite(path: Path) -> None:
    """Fold the WAL into the main file, so a file copy is the whole database."""
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


# ---- the record of a built data set -----------------------------------------------------


async def read_info(url: str) -> DatasetInfo | None:
    """The record of the data set at `url`, None when there is none (or no database)."""
    if is_postgres(url):
        import asyncpg

        try:
            connection = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
        except (OSError, asyncpg.PostgresError):
            return None
        try:
            exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", META_TABLE)
            value = await connection.fetchval(f"SELECT info FROM {META_TABLE} LIMIT 1") if exists else None
        finally:
            await connection.close()
    else:
        import sqlite3

        path = sqlite_path(url)
        if not path.exists():
            return None
        connection = sqlite3.connect(path)
        try:
            row = connection.execute(f"SELECT info FROM {META_TABLE} LIMIT 1").fetchone()
        except sqlite3.Error:
            row = None
        finally:
            connection.close()
        value = row[0] if row else None
    return DatasetInfo(**json.loads(value)) if value else None


async def _write_info(connection, info: DatasetInfo) -> None:
    await connection.execute_script(f"DROP TABLE IF EXISTS {META_TABLE}; CREATE TABLE {META_TABLE} (info TEXT NOT NULL)")
    await connection.execute_query(f"INSERT INTO {META_TABLE} (info) VALUES ({_param(connection, 1)})", [json.dumps(asdict(info))])


def _param(connection, index: int) -> str:
    return f"${index}" if connection.capabilities.dialect == "postgres" else "?"


# ---- copying the pool ---------------------------------------------------------------


def _member_models() -> list[type]:
    """Member and every model that hangs off it by foreign keys (directly or through
    another such model), parents before children."""
    from tortoise import Tortoise

    from members.models import Member

    models = [m for app in Tortoise.apps.values() for m in app.values()]
    ordered: list[type] = [Member]
    changed = True
    while changed:
        changed = False
        for model in models:
            if model in ordered:
                continue
            parents = [model._meta.fields_map[name].related_model for name in _foreign_keys(model)]
            if any(parent in ordered for parent in parents) and all(p in ordered or p is model or not _hangs_off_member(p, models) for p in parents):
                ordered.append(model)
                changed = True
    return ordered


def _hangs_off_member(model: type, models: list[type], seen: frozenset = frozenset()) -> bool:
    from members.models import Member

    if model is Member:
        return True
    if model in seen:
        return False
    return any(
        _hangs_off_member(model._meta.fields_map[name].related_model, models, seen | {model}) for name in _foreign_keys(model)
    )


def _foreign_keys(model: type) -> list[str]:
    meta = model._meta
    return sorted(set(meta.fk_fields) | set(meta.o2o_fields))


def _unique_groups(model: type) -> list[set[str]]:
    """The model's unique column sets: single unique columns and unique_together groups."""
    meta = model._meta

    def column(name: str) -> str:
        field = meta.fields_map[name]
        return meta.fields_db_projection[getattr(field, "source_field", None) or name]

    groups = [{column(name)} for name, f in meta.fields_map.items() if getattr(f, "unique", False) and not f.pk
              and (name in meta.fields_db_projection or getattr(f, "source_field", None))]
    groups += [{column(name) for name in group} for group in meta.unique_together or ()]
    return groups


# Columns made unique per copy: table -> column -> SQL over the source row `t` and the
# copy's member-map row `x` ({copy} is the copy number).
_MEMBER_MAPPED = ("card_number", "phone_cipher", "phone_hash", "email_cipher", "email_hash", "family_name", "given_name")
_PER_COPY = {
    "ledger_entry": {"external_ref": "t.external_ref || '~{copy}'"},
    "tier_event": {"card_number": "x.card_number"},
    "refresh_token": {"token_hash": "t.token_hash || '~{copy}'"},  # the demo signs nobody in: no rows
    "greeting_sent": {"greeting_key": "t.greeting_key || '~{copy}'"},
}


def _copy_statement(model: type, copy: int, strides: dict[type, int]) -> str:
    """INSERT ... SELECT of the pool's rows of `model` as copy number `copy`."""
    from members.models import Member

    meta = model._meta
    table = meta.db_table
    offsets = {}  # column -> offset added
    pk_column = meta.fields_db_projection[meta.pk_attr]
    offsets[pk_column] = copy * strides[model]
    member_column = None
    for name in _foreign_keys(model):
        field = meta.fields_map[name]
        column = meta.fields_db_projection[field.source_field]
        if field.related_model in strides:
            offsets[column] = copy * strides[field.related_model]
            if field.related_model is Member:
                member_column = column
    special = {column: sql.format(copy=copy) for column, sql in _PER_COPY.get(table, {}).items()}
    if model is Member:
        special.update({column: f"x.{column}" for column in _MEMBER_MAPPED})
    unique = set().union(*(g for g in _unique_groups(model) if not g & (set(offsets) | set(special))))
    if unique:
        raise SystemExit(
            f"bench.dataset: {table}.{', '.join(sorted(unique))} is unique and the bench does not know how to make it "
            f"unique per copy: add it to _PER_COPY in bench/dataset.py"
        )
    columns, values = [], []
    for column in meta.fields_db_projection.values():
        columns.append(f'"{column}"')
        if column in special:
            values.append(special[column])
        elif column in offsets:
            values.append(f't."{column}" + {offsets[column]}' if offsets[column] else f't."{column}"')
        else:
            values.append(f't."{column}"')
    join = ""
    if model is Member:
        join = f' JOIN {MAP_TABLE} x ON x.id = t."{pk_column}" + {offsets[pk_column]}'
    elif any("x." in value for value in values):
        join = f' JOIN {MAP_TABLE} x ON x.id = t."{member_column}" + {offsets[member_column]}'
    return (
        f'INSERT INTO "{table}" ({", ".join(columns)}) SELECT {", ".join(values)} FROM "{table}" t{join} '
        f'WHERE t."{pk_column}" <= {strides[model]} ORDER BY t."{pk_column}"'
    )


def member_map_rows(pool: list[dict[str, Any]], copy: int) -> list[tuple]:
    """(new id, card number, sealed phone, phone hash, sealed email, email hash, family
    name, given name) of copy `copy`'s members, from the pool's members (ids 1..P in demo
    order, their phone and email opened)."""
    from api.demo import demo_card_number, demo_phone_digits
    from members import contacts
    from members.services import email_hash, phone_hash

    keys = contacts.current()

    size = len(pool)
    rows = []
    for row in pool:
        index = row["id"] - 1 + copy * size  # the demo member index this copy stands for
        named = pool[(row["id"] - 1 + copy * NAME_STEP) % size]
        phone = email = None
        if row["phone"]:
            old, new = demo_phone_digits(row["id"] - 1), demo_phone_digits(index)
            # The pool's 9 digits sit at the end of the phone, possibly spaced.
            phone = _replace_digits(row["phone"], old, new)
        if row["email"]:
            local, _, domain = row["email"].rpartition("@")
            email = f"{local.rsplit('.', 1)[0]}.{index}@{domain}"
        rows.append((
            row["id"] + copy * size, demo_card_number(index), keys.seal(phone, "phone"), phone and phone_hash(phone),
            keys.seal(email, "email"), email and email_hash(email), named["family_name"], named["given_name"],
        ))
    return rows


def _replace_digits(text: str, old: str, new: str) -> str:
    """`text` with its last len(old) digits (which spell `old`) replaced by `new`."""
    chars = list(text)
    position = len(old)
    for i in range(len(chars) - 1, -1, -1):
        if position == 0:
            break
        if chars[i].isdigit():
            position -= 1
            chars[i] = new[position]
    return "".join(chars)


async def _fill_member_map(connection, rows: list[tuple]) -> None:
    if connection.capabilities.dialect == "postgres":
        async with connection.acquire_connection() as raw:
            await raw.copy_records_to_table(MAP_TABLE, records=rows)
    else:
        placeholders = ", ".join("?" * len(rows[0]))
        await connection.execute_many(f"INSERT INTO {MAP_TABLE} VALUES ({placeholders})", rows)


async def replicate(copies: int, progress: Callable[[str], None]) -> dict[str, float]:
    """Add `copies` copies of the pool (the members there now, ids 1..P). Seconds per step."""
    from tortoise import connections
    from tortoise.functions import Max
    from tortoise.transactions import in_transaction

    from members import contacts
    from members.models import Member

    models = _member_models()
    strides = {}
    for model in models:
        row = await model.all().annotate(top=Max("id")).first().values("top")
        strides[model] = int((row or {}).get("top") or 0)
    pool = await Member.filter(id__lte=strides[Member]).order_by("id").values(
        "id", "phone_cipher", "email_cipher", "family_name", "given_name")
    keys = contacts.current()
    for row in pool:
        row["phone"], row["email"] = keys.open(row.pop("phone_cipher"), "phone"), keys.open(row.pop("email_cipher"), "email")
    if [row["id"] for row in pool] != list(range(1, len(pool) + 1)):
        raise SystemExit("bench.dataset: the pool's member ids must be 1..P (a fresh demo database)")
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        # One connection for the session settings: foreign keys not checked row by row
        # (the copied keys are the pool's, moved together), secondary indexes rebuilt
        # once at the end (a sort) rather than grown row by row.
        async with in_transaction() as transaction:
            await transaction.execute_script("SET LOCAL session_replication_role = replica; SET LOCAL maintenance_work_mem = '512MB'")
            dropped = await _drop_secondary_indexes(transaction, [m._meta.db_table for m in models])
            steps = await _copy_pool(transaction, models, strides, pool, copies, progress)
            began = time.perf_counter()
            for definition in dropped:
                await transaction.execute_query(definition)
            steps["indexes"] = time.perf_counter() - began
            progress(f"{len(dropped)} secondary indexes rebuilt in {steps['indexes']:.1f} s")
            for model in models:
                table = model._meta.db_table
                await transaction.execute_query(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT MAX(id) FROM \"{table}\"))"
                )
        return steps
    # A disposable database being built: no journal, no fsync, no foreign key checks,
    # a 1 GB page cache; secondary indexes rebuilt at the end, as on PostgreSQL.
    for pragma in ("journal_mode = OFF", "synchronous = OFF", "foreign_keys = OFF", "cache_size = -1000000"):
        await connection.execute_query(f"PRAGMA {pragma}")
    dropped = await _drop_secondary_indexes(connection, [m._meta.db_table for m in models])
    steps = await _copy_pool(connection, models, strides, pool, copies, progress)
    began = time.perf_counter()
    for definition in dropped:
        await connection.execute_query(definition)
    steps["indexes"] = time.perf_counter() - began
    progress(f"{len(dropped)} secondary indexes rebuilt in {steps['indexes']:.1f} s")
    for pragma in ("foreign_keys = ON", "synchronous = NORMAL", "journal_mode = WAL"):
        await connection.execute_query(f"PRAGMA {pragma}")
    return steps


async def _copy_pool(connection, models: list[type], strides: dict[type, int], pool: list[dict], copies: int,
                     progress: Callable[[str], None]) -> dict[str, float]:
    steps: dict[str, float] = {}
    await connection.execute_script(
        f"DROP TABLE IF EXISTS {MAP_TABLE}; CREATE TABLE {MAP_TABLE} (id INTEGER PRIMARY KEY, card_number TEXT, "
        f"phone_cipher TEXT, phone_hash TEXT, email_cipher TEXT, email_hash TEXT, family_name TEXT, given_name TEXT)"
    )
    began = time.perf_counter()
    for copy in range(1, copies + 1):
        await _fill_member_map(connection, member_map_rows(pool, copy))
    steps["member map"] = time.perf_counter() - began
    progress(f"member map: {copies * len(pool):,} rows in {steps['member map']:.1f} s")
    for model in models:
        if not strides[model]:
            continue  # no rows in the pool (nor anything to make unique per copy)
        began = time.perf_counter()
        for copy in range(1, copies + 1):
            await connection.execute_query(_copy_statement(model, copy, strides))
        table = model._meta.db_table
        steps[table] = time.perf_counter() - began
        progress(f"{table}: {copies} copies of {strides[model]:,} rows in {steps[table]:.1f} s")
    await connection.execute_script(f"DROP TABLE {MAP_TABLE}")
    return steps


async def _drop_secondary_indexes(connection, tables: list[str]) -> list[str]:
    """Drop the indexes of `tables` that no constraint owns; their definitions, to create
    them again once the rows are in: one sort per index instead of a B-tree insert at a
    random place per row (the ledger's (source, posted_at) and the members' office
    orders). Unique constraints stay (SQLite cannot drop its autoindexes; PostgreSQL's
    are the constraints'), and they keep checking the copies."""
    if connection.capabilities.dialect == "postgres":
        rows = (await connection.execute_query(
            "SELECT i.indexname AS name, i.indexdef AS definition FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", [tables],
        ))[1]
    else:
        marks = ", ".join("?" for _ in tables)
        rows = (await connection.execute_query(
            f"SELECT name, sql AS definition FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks}) ORDER BY name", tables,
        ))[1]
    for row in rows:
        await connection.execute_query(f'DROP INDEX "{row["name"]}"')
    return [row["definition"] for row in rows]


# ---- derived state ---------------------------------------------------------------------


async def _care_refresh(rules, today: date, tz) -> None:
    """`loyalty care refresh` for the day: stages and segments, then the worklist state
    of the members due a recheck (after a migration that marks them, all VIPs)."""
    from care.calls import refresh_care_due
    from care.segments import refresh_segments

    await refresh_segments(rules, today, timezone=tz)
    await refresh_care_due(rules, today)


async def _tier_count_rollup(rules, today: date, tz) -> None:
    """The office x tier rollup (members.regions) is not member-linked, so not copied."""
    from tortoise.transactions import in_transaction

    from members.regions import rebuild_tier_counts

    async with in_transaction() as connection:
        await rebuild_tier_counts(connection)


async def _care_counts(rules, today: date, tz) -> None:
    """The VIP care rollup (care.counts): its triggers count copies as they are
    inserted, but its retain thresholds come from the rules at first use."""
    from care.counts import ensure_care_counts

    await ensure_care_counts(rules)


async def _stats_counts(rules, today: date, tz) -> None:
    """The region statistics rollup (care.region_counts): its triggers count copies as
    they are inserted, but the local days of tier events come from the time zone at
    first use."""
    from care.region_counts import ensure_stats_counts

    await ensure_stats_counts(tz)


# The daily jobs that compute derived state, as `loyalty` runs them: run after copying,
# so state kept outside the copied tables (or computed from the whole table) is right.
DERIVED_JOBS: dict[str, Callable[..., Any]] = {
    "care refresh": _care_refresh, "tier count rollup": _tier_count_rollup, "care counts": _care_counts,
    "stats counts": _stats_counts,
}


# ---- building ----------------------------------------------------------------------------


def settings_for(url: str):
    from api.settings import load_settings

    return load_settings(environ={"DATABASE_URL": url, "LOYALTY_DEMO": "1"}, dotenv=None).with_demo()


async def _migrate(settings, url: str) -> None:
    """Pending migrations on the data set at `url`. A failure ends the bench with one
    line (exit status 1), the connections closed first: the SQLite driver's worker
    thread, left open by the failed migration runner, would keep the process from
    exiting (the bench hung after the traceback)."""
    from tortoise import Tortoise

    from api.db import migrate

    try:
        await migrate(settings)
    except Exception as error:  # noqa: BLE001 - one line for the operator, whatever the migration raised
        await Tortoise.close_connections()
        detail = (str(error).splitlines() or [""])[0]
        raise SystemExit(
            f"bench.dataset: {url}: a migration failed ({type(error).__name__}: {detail}); "
            "fix the migration, or build the data set again with --rebuild"
        ) from None


async def ensure(url: str, members: int, pool: int, *, rebuild: bool, progress: Callable[[str], None],
                 pool_url: str | None = None, upgrade: bool = False, upgrade_skip: tuple[str, ...] = ()) -> DatasetInfo:
    """The data set of `members` members at `url`: reused when its record matches,
    else built. `pool_url` names a data set of `pool` members built by the same code
    to start from (and take the day of) instead of running the demo again."""
    code = code_fingerprint()
    info = await read_info(url)
    if not rebuild and info is not None and (info.members, info.pool, info.code) == (members, pool, code):
        progress(f"{url}: reusing the data set built {info.built_at} ({members:,} members)")
        return info
    if not rebuild and info is not None and (info.members, info.pool) == (members, pool) and (
        upgrade or same_data(info.code, code)
    ):
        note = "" if same_data(info.code, code) else f" (--upgrade: its data code {info.code.split('-')[0]} differs)"
        progress(f"{url}: upgrading the data set built {info.built_at} to this schema (migrations, derived state){note}")
        return await _upgrade(url, info, code, progress, upgrade_skip)
    if members % pool or members < pool:
        raise SystemExit(f"--members {members} must be a multiple of the pool ({pool})")
    today = datetime.now(settings_for(url).tz).date()
    source = None
    if pool_url is not None and members > pool:
        source_info = await read_info(pool_url)
        if source_info is not None and (source_info.members, source_info.code) == (pool, code):
            # The same pool, whatever day it was built on: the copies share its day.
            source, today = pool_url, date.fromisoformat(source_info.today)
    return await _build(url, members, pool, code, today, source, progress)


async def _build(url: str, members: int, pool: int, code: str, today: date, source: str | None,
                 progress: Callable[[str], None]) -> DatasetInfo:
    from tortoise import Tortoise, connections

    from api.demo import build_demo
    from loyalty.rules import load_rules

    settings = settings_for(url)
    rules = load_rules(settings.rules_path)
    steps: dict[str, float] = {}
    started = began = time.perf_counter()
    await drop_and_create(url, template_url=source)
    if source is None:
        progress(f"{url}: migrating and running the demo for the pool of {pool:,} members")
        await _migrate(settings, url)
        await build_demo(settings, pool, rules=rules, today=today, progress=lambda done, total: None)
        steps["demo pool"] = time.perf_counter() - began
        await Tortoise.close_connections()
    else:
        steps["copy pool"] = time.perf_counter() - began
        progress(f"{url}: pool copied from {source} in {steps['copy pool']:.1f} s")
    # Migrations the pool's database lacks (none when built by this code) run here too.
    await _migrate(settings, url)
    try:
        if members > pool:
            steps.update(await replicate(members // pool - 1, progress))
        await _derive(settings, rules, today, steps, progress)
        connection = connections.get("default")
        info = DatasetInfo(members, pool, today.isoformat(), code, datetime.now().isoformat(timespec="seconds"),
                           round(time.perf_counter() - started, 1), {k: round(v, 1) for k, v in steps.items()})
        await _write_info(connection, info)
    finally:
        await Tortoise.close_connections()
    if not is_postgres(url):
        _checkpoint_sqlite(sqlite_path(url))
    progress(f"{url}: {members:,} members built in {info.build_seconds:.0f} s")
    return info


async def _upgrade(url: str, info: DatasetInfo, code: str, progress: Callable[[str], None],
                   skip: tuple[str, ...] = ()) -> DatasetInfo:
    """Bring a data set built by the same data code to this schema: the steps a build
    runs after its copies (pending migrations, DERIVED_JOBS but those in ``skip``: jobs
    the operator knows the new schema leaves as they were, ANALYZE)."""
    from tortoise import Tortoise, connections

    from loyalty.rules import load_rules

    settings = settings_for(url)
    rules = load_rules(settings.rules_path)
    today = date.fromisoformat(info.today)
    steps: dict[str, float] = {}
    started = began = time.perf_counter()
    await _migrate(settings, url)
    steps["upgrade: migrations"] = time.perf_counter() - began
    try:
        await _derive(settings, rules, today, steps, progress, upgrade=True, skip=skip)
        connection = connections.get("default")
        upgraded = DatasetInfo(
            info.members, info.pool, info.today, code, info.built_at,
            round(info.build_seconds + time.perf_counter() - started, 1), {**info.steps, **{k: round(v, 1) for k, v in steps.items()}},
        )
        await _write_info(connection, upgraded)
    finally:
        await Tortoise.close_connections()
    if not is_postgres(url):
        _checkpoint_sqlite(sqlite_path(url))
    progress(f"{url}: upgraded in {time.perf_counter() - started:.0f} s")
    return upgraded


async def _derive(settings, rules, today: date, steps: dict[str, float], progress: Callable[[str], None],
                  *, upgrade: bool = False, skip: tuple[str, ...] = ()) -> None:
    """DERIVED_JOBS, then planner statistics (PostgreSQL)."""
    from tortoise import connections

    for name, job in DERIVED_JOBS.items():
        if name in skip:
            progress(f"{name}: skipped (--upgrade-skip)")
            continue
        began = time.perf_counter()
        await job(rules, today, settings.tz)
        steps[("upgrade: " if upgrade else "") + name] = time.perf_counter() - began
        progress(f"{name}: {time.perf_counter() - began:.1f} s")
    connection = connections.get("default")
    began = time.perf_counter()
    if connection.capabilities.dialect == "postgres":
        # What autovacuum would do soon after a load: planner statistics.
        await connection.execute_script("ANALYZE")
    steps["upgrade: analyze" if upgrade else "analyze"] = time.perf_counter() - began


def size_label(members: int) -> str:
    if members % 1_000_000 == 0:
        return f"{members // 1_000_000}m"
    if members % 1_000 == 0:
        return f"{members // 1_000}k"
    return str(members)


def url_for(template: str, members: int) -> str:
    return template.format(size=size_label(members))


def environment_note() -> str:
    load = os.getloadavg()
    return f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min), {os.cpu_count()} CPUs"
