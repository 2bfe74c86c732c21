"""bench.scale.catch_up: reads served on a later day than the data set's first run that
day's worklist refresh, as the scheduler would (session 6 measured careCallsDue between
midnight and the refresh, 2.3 times its 10k p99, and took it for a regression). On a
migrated SQLite file with one member whose worklist state is stale on the served day."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, sys
from datetime import date
from tortoise import Tortoise
from api.db import migrate
from bench import dataset
from bench.scale import catch_up

async def prepare(url):
    from api.db import init_orm
    from tests.care.history import member_at
    try:
        await migrate(dataset.settings_for(url))
        await init_orm(dataset.settings_for(url))
        await member_at("PEK01")
    finally:
        await Tortoise.close_connections()

url, path = sys.argv[1], sys.argv[2]
asyncio.run(prepare(url))
import sqlite3
db = sqlite3.connect(path)
db.execute("UPDATE member SET care_recheck_on = '2026-12-02', care_state_on = '2026-12-01'")
db.commit()
info = dataset.DatasetInfo(10, 10, "2026-12-01", "code", "2026-12-01T00:00:00", 1.0, {})
lines = []
for served, run in (("2026-12-01", True), ("2026-12-02", False), ("2026-12-02", True)):
    print(asyncio.run(catch_up(url, info, lines.append, run=run, served=date.fromisoformat(served))))
"""


def test_reads_on_a_later_day_run_that_days_worklist_refresh_first(tmp_path):
    path = tmp_path / "set.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    # One member, enrolled through the service, its worklist state made stale on
    # 2026-12-02 (recheck day come, state computed on 2026-12-01).
    result = subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite://{path}", str(path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    same, window, caught_up = result.stdout.strip().splitlines()
    assert same == "served on the data set's day (2026-12-01)"
    assert window.startswith("served on 2026-12-02, 1 day(s) after the data set's day (2026-12-01), before that day's")
    assert caught_up.startswith("served on 2026-12-02, 1 day(s) after the data set's day (2026-12-01); that day's "
                                "worklist refresh ran first, as the scheduler runs it (1 members rechecked")
    state_on, recheck_on = sqlite3.connect(path).execute("SELECT care_state_on, care_recheck_on FROM member").fetchone()
    assert state_on == "2026-12-02" and (recheck_on is None or recheck_on > "2026-12-02")
