"""Database wiring: the Tortoise config, migrations and region data loading."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate as run_migrations

from api.settings import Settings, load_settings

MODEL_MODULES = ["members.models", "loyalty.models", "care.models"]
# SQLite's page cache per connection, in KiB (PRAGMA cache_size = -N).
SQLITE_CACHE_KIB = 64 * 1024


def tortoise_config(database_url: str) -> dict[str, Any]:
    url = database_url
    if url.startswith("sqlite://"):
        # WAL lets readers run beside the single writer; busy_timeout makes a
        # second writer wait instead of failing at once. journal_size_limit: the WAL
        # file is kept (up to 64 MiB) after a checkpoint and written over, where
        # Tortoise's default (16 KiB) cut it back each time, so that most commits grew
        # the file and their sync also had to write the file system's metadata: 3-6 ms
        # a commit against 1 ms once the file is reused (bench/RESULTS.md, group commit).
        # cache_size: SQLITE_CACHE_KIB of SQLite's own page cache per connection (its
        # default is 2 MB, less than the interior pages of a 1,000,000-member file's
        # indexes, so at that size nearly every index lookup read a page from the OS
        # again: bench/RESULTS.md, Scale). The URL's own query comes after these
        # defaults, so a setting given in DATABASE_URL wins.
        path, _, query = url.partition("?")
        defaults = f"busy_timeout=10000&journal_size_limit={64 * 1024 * 1024}&cache_size=-{SQLITE_CACHE_KIB}"
        url = f"{path}?{defaults}" + (f"&{query}" if query else "")
    elif url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    return {
        "connections": {"default": url},
        "apps": {"models": {"models": MODEL_MODULES, "migrations": "migrations", "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


def _env_config() -> dict[str, Any]:
    return tortoise_config(load_settings().database_url)


# For the `tortoise` CLI: `tortoise -c api.db.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = _env_config()


async def migrate(settings: Settings, progress: Callable[[str], None] | None = None) -> None:
    """Apply pending migrations and load/refresh the shipped region data. Idempotent."""
    from members.regions import load_region_data

    # The contact encryption migration seals the phones and emails already stored with
    # the configured keys (migrations/0018_contact_encryption.py).
    configure_contact_keys(settings)

    def report(event: str, app_label: str, name: str) -> None:
        if progress and event == "apply_done":
            progress(f"applied {app_label}.{name}")

    await run_migrations(config=tortoise_config(settings.database_url), progress=report)
    # The migration runner leaves the models uninitialised: initialise them to load data.
    await Tortoise.close_connections()
    await init_orm(settings)
    if settings.database_url.startswith("sqlite://"):
        # Nothing a migration replaced (a plain phone) is left in a write-ahead log beside the file.
        await connections.get("default").execute_script("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = await load_region_data()
    if progress:
        progress(f"region data: {counts}")


def configure_contact_keys(settings: Settings) -> None:
    """Hand the phone/email keys of the settings to the domain (members.contacts)."""
    from members import contacts

    contacts.configure(settings.contact_keys())


def configure_writes(settings: Settings) -> None:
    """This process's group commit mode (members.group_commit), from LOYALTY_GROUP_COMMIT."""
    from members import group_commit

    group_commit.configure(settings.group_commit)


async def init_orm(settings: Settings) -> None:
    configure_contact_keys(settings)
    configure_writes(settings)
    await Tortoise.init(config=tortoise_config(settings.database_url), _enable_global_fallback=True)


async def ping() -> None:
    """One round trip to the default connection: raises the driver's error when the
    database cannot be reached (the migration planner reads a missing database as one
    with no migrations applied)."""
    await connections.get("default").execute_query("SELECT 1")


async def pending_migrations(settings: Settings) -> list[str]:
    """Names of migrations not yet applied on the default connection (needs an initialised
    ORM). An unreachable database raises (ping) rather than reading as none applied."""
    await ping()
    from tortoise.migrations.executor import MigrationExecutor

    apps = tortoise_config(settings.database_url)["apps"]
    executor = MigrationExecutor(connections.get("default"), apps)
    steps = await executor.plan(None)
    return [f"{step.migration.app_label}.{step.migration.name}" for step in steps if not step.backward]
