"""bench.dataset: a data set whose upgrade fails ends the bench with one line and a
non-zero exit status. It hung: the failed migration runner left the SQLite driver's
worker thread open, which kept the process alive after the traceback. Subprocesses,
with a timeout, so a hang fails the test instead of the suite."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A migrated, empty data set of 10 members' shape (the record says pool 10) built by this
# data code under an older schema, whose first migration is recorded as not applied:
# the upgrade runs it again, and it fails (its tables exist).
PREPARE = """
import asyncio, json, sqlite3, sys
from dataclasses import asdict
from tortoise import Tortoise
from api.db import migrate
from bench import dataset

async def main(url):
    try:
        await migrate(dataset.settings_for(url))
    finally:
        await Tortoise.close_connections()

url, path = sys.argv[1], sys.argv[2]
asyncio.run(main(url))
info = dataset.DatasetInfo(10, 10, "2026-12-01", dataset.code_fingerprint().split("-")[0] + "-older", "2026-12-01T00:00:00", 1.0, {})
db = sqlite3.connect(path)
db.execute(f"CREATE TABLE {dataset.META_TABLE} (info TEXT NOT NULL)")
db.execute(f"INSERT INTO {dataset.META_TABLE} VALUES (?)", [json.dumps(asdict(info))])
db.execute("DELETE FROM tortoise_migrations WHERE id = (SELECT MIN(id) FROM tortoise_migrations)")
db.commit()
"""


def test_a_failing_migration_ends_the_bench_with_one_line(tmp_path):
    path = tmp_path / "set10.db"
    url = f"sqlite://{path}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "-c", PREPARE, url, str(path)], cwd=ROOT, env=env, check=True, timeout=120)
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--small-url", url, "--large-url", f"sqlite://{tmp_path / 'set20.db'}",
         "--members-small", "10", "--members-large", "20", "--pool", "10", "--no-reads", "--no-jobs"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"bench.dataset: {url}: a migration failed ("), result.stderr
    # The data set keeps its record: nothing claims it was upgraded.
    record = sqlite3.connect(path).execute("SELECT info FROM bench_dataset").fetchone()[0]
    assert json.loads(record)["code"].endswith("-older")
