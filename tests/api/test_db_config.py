"""api.db.tortoise_config: the SQLite settings the project gives every connection, and
DATABASE_URL's own query winning over them."""

from __future__ import annotations

from tortoise import connections
from tortoise.backends.base.config_generator import expand_db_url

from api.db import SQLITE_CACHE_KIB, tortoise_config


def _credentials(url: str) -> dict:
    return expand_db_url(tortoise_config(url)["connections"]["default"])["credentials"]


def test_sqlite_connections_get_the_project_defaults():
    credentials = _credentials("sqlite:///srv/loyalty.db")
    assert credentials["file_path"] == "/srv/loyalty.db"
    assert int(credentials["busy_timeout"]) == 10000
    assert int(credentials["journal_size_limit"]) == 64 * 1024 * 1024
    assert int(credentials["cache_size"]) == -SQLITE_CACHE_KIB


def test_a_setting_in_the_database_url_wins():
    credentials = _credentials("sqlite:///srv/loyalty.db?cache_size=-2000&mmap_size=2147483648&busy_timeout=500")
    assert (int(credentials["cache_size"]), int(credentials["busy_timeout"])) == (-2000, 500)
    assert int(credentials["mmap_size"]) == 2147483648


async def test_the_connection_runs_with_the_page_cache(db):
    connection = connections.get("default")
    if connection.capabilities.dialect != "sqlite":
        return  # PostgreSQL: the server's settings
    _, rows = await connection.execute_query("PRAGMA cache_size")
    assert list(rows[0])[0] == -SQLITE_CACHE_KIB
