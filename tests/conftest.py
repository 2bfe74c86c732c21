"""Test database: SQLite in a temporary file by default; PostgreSQL when
DATABASE_URL names one (its database name must end in "test": it is wiped)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
from tortoise import Tortoise, connections

from api.db import migrate
from api.settings import load_settings

# Tables holding test-made rows, children first. Region data stays loaded.
MUTABLE_TABLES = [
    "job_run",
    "member_access",
    "rules_change_run",
    "feedback_change",
    "office_satisfaction_day",
    "greeting_sent",
    "feedback",
    "care_call",
    "tier_event",
    "credit_lot",
    "ledger_entry",
    "member_status_change",
    "region_assignment",
    "idempotency_record",
    "member_credential",
    "refresh_token",
    "member_erasure",
    "member_consent_change",
    "member",
    "webhook_delivery",
    "partner_webhook",
    "partner",
]


def _test_database_url(tmp_dir: Path) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        name = urlparse(url).path.lstrip("/")
        if not name.endswith("test"):
            pytest.exit(f"refusing to wipe database {name!r}: a test database name must end in 'test'", returncode=2)
        return url
    return f"sqlite://{tmp_dir / 'test.db'}"


async def _recreate_postgres(url: str) -> None:
    import asyncpg

    parsed = urlparse(url.replace("postgresql://", "postgres://"))
    name = parsed.path.lstrip("/")
    admin = await asyncpg.connect(
        host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
        password=parsed.password, database="postgres",
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session", autouse=True)
def contact_keys():
    """The phone/email keys of the test settings (the demo keys), also for tests that
    seal or hash without a database (api.db configures them again, the same)."""
    from members import contacts

    contacts.configure(load_settings(environ={}, dotenv=None).contact_keys())


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _test_database_url(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def settings(database_url: str):
    from dataclasses import replace

    # LOYALTY_GROUP_COMMIT=on runs the suite with group commit on PostgreSQL too.
    base = load_settings(environ={k: v for k, v in os.environ.items() if k == "LOYALTY_GROUP_COMMIT"}, dotenv=None)
    return replace(base, database_url=database_url, jwt_secret="test-secret-0123456789-0123456789-abcdef")


@pytest.fixture(scope="session")
async def database(settings):
    """Migrated database with the shipped region data, for the whole session."""
    if settings.database_url.startswith("postgres"):
        await _recreate_postgres(settings.database_url)
    await migrate(settings)
    await Tortoise.close_connections()
    from api.db import init_orm

    await init_orm(settings)
    yield settings
    await Tortoise.close_connections()


# The wipe below takes well under a second; this long means the connection is held.
WIPE_TIMEOUT_SECONDS = 60


@pytest.fixture
async def db(database):
    """A clean slate of members, ledgers and partners for each test."""
    try:
        async with asyncio.timeout(WIPE_TIMEOUT_SECONDS):
            await _wipe()
    except TimeoutError:
        # Every later test would wait the same way: end the run with the reason instead.
        pytest.exit(
            f"the test database did not answer the wipe in {WIPE_TIMEOUT_SECONDS} s: its connection is held "
            "(SQLite's one connection, or PostgreSQL's pool) by a task that never gave it back, as a task "
            "cancelled while entering in_transaction() does; see the test that ran before", returncode=3,
        )
    yield database


async def _wipe() -> None:
    connection = connections.get("default")
    # Entries point at entries (reversals, bonuses): remove the pointing ones first.
    await connection.execute_script("DELETE FROM goodwill_credit")  # points at entries, members, feedback
    await connection.execute_script("DELETE FROM miles_claim")  # points at entries and members
    await connection.execute_script("DELETE FROM tier_event")
    await connection.execute_script("DELETE FROM credit_lot")
    await connection.execute_script("DELETE FROM ledger_entry WHERE reverses_id IS NOT NULL")
    await connection.execute_script("DELETE FROM ledger_entry WHERE bonus_for_id IS NOT NULL")
    for table in MUTABLE_TABLES:
        await connection.execute_script(f"DELETE FROM {table}")
    # The office x tier rollup stays with the offices (region data): no members, no counts.
    await connection.execute_script("UPDATE office_tier_count SET members = 0")
    # The VIP care rollup: the member triggers took every deleted VIP out; the rows left
    # hold zeros.
    await connection.execute_script("DELETE FROM office_care_count")


def pytest_report_header(config):
    url = os.environ.get("DATABASE_URL", "")
    return f"database: {'PostgreSQL ' + url if url.startswith('postgres') else 'SQLite (temporary file)'}"


def pytest_collection_modifyitems(config, items):
    """Mark every test that touches the database, so a PostgreSQL run can select them."""
    for item in items:
        if "db" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
