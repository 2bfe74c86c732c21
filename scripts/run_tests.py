"""Run the whole suite: on SQLite always, then the database tests on PostgreSQL and
the fan-out tests on Redis when those servers answer. Says what it skipped.

Environment: TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/loyalty_test),
TEST_REDIS_URL (default redis://127.0.0.1:6379/15), REQUIRE_SERVICES=1 to fail
instead of skipping when one is down (CI sets it). The /board browser tests need
Chromium at /usr/bin/chromium; without it they skip (or, with REQUIRE_SERVICES=1, fail).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from urllib.parse import urlparse

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/loyalty_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
CHROMIUM = "/usr/bin/chromium"  # Debian's package; tests/api/test_board.py drives it


def reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=2):
            return True
    except OSError:
        return False


def postgres_answers(url: str) -> bool:
    if not reachable(url):
        return False
    import asyncpg

    async def ping() -> bool:
        parsed = urlparse(url)
        try:
            connection = await asyncpg.connect(host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres", database="postgres", timeout=5)
        except Exception:  # noqa: BLE001 - any failure means "not available"
            return False
        await connection.close()
        return True

    return asyncio.run(ping())


def pytest(label: str, env: dict[str, str], *args: str) -> int:
    print(f"\n===== {label} =====", flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", "-q", *args], env={**os.environ, **env})


def main() -> int:
    skipped: list[str] = []
    have_redis = reachable(REDIS_URL)
    have_postgres = postgres_answers(POSTGRES_URL)
    have_chromium = os.access(CHROMIUM, os.X_OK)
    if REQUIRE and not (have_redis and have_postgres and have_chromium):
        required = (("PostgreSQL", have_postgres), ("Redis", have_redis), (f"Chromium at {CHROMIUM}", have_chromium))
        missing = [name for name, ok in required if not ok]
        print(f"run_tests: required services or tools missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    base_env = {"DATABASE_URL": ""}
    if have_redis:
        base_env["TEST_REDIS_URL"] = REDIS_URL
    else:
        skipped.append(f"Redis fan-out tests (no Redis at {REDIS_URL})")
    if not have_chromium:
        skipped.append(f"browser tests of /board (no Chromium at {CHROMIUM}; apt-get install chromium)")
    results = [pytest("all tests on SQLite", base_env)]
    if have_postgres:
        results.append(pytest("database tests on PostgreSQL", {**base_env, "DATABASE_URL": POSTGRES_URL}, "-m", "db"))
    else:
        skipped.append(f"every database test on PostgreSQL (no PostgreSQL at {POSTGRES_URL})")
    print()
    for line in skipped:
        print(f"SKIPPED: {line}")
    failed = any(code not in (0,) for code in results)
    print("test run:", "FAILED" if failed else "passed", f"({len(results)} pytest run(s))")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
