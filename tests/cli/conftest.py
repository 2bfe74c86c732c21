"""Helpers for the bulk CSV commands: write a CSV, run `loyalty` on the test session's
database (SQLite or PostgreSQL) as an operator would, read a CSV back."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path

from tests.api.loyalty_factories import loyalty_cli
from tests.api.test_cli import one_line_error  # noqa: F401 - re-exported for the tests here


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(text_or_path) -> list[dict]:
    text = text_or_path.read_text(encoding="utf-8") if isinstance(text_or_path, Path) else text_or_path
    return list(csv.DictReader(io.StringIO(text)))


def run(settings, tmp_path: Path, *args: str):
    """`loyalty ARGS` on the session's database; the CompletedProcess."""
    return loyalty_cli(list(args), tmp_path, settings.database_url)


def yesterday(settings) -> date:
    return datetime.now(settings.tz).date() - timedelta(days=1)
