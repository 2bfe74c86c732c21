"""Helpers for the bulk CSV commands: write a CSV, run `loyalty` on the test session's
database (SQLite or PostgreSQL) as an operator would, read a CSV back."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from tests.api.loyalty_factories import cli_environment, loyalty_cli
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


@contextlib.asynccontextmanager
async def running_cli(args: list, cwd: Path, database_url: str, **env: str):
    """`loyalty ARGS` (or, when ARGS starts with a Path, that script with the rest) as
    a child process left running, its three pipes open, for the life of the block;
    killed at the end if it has not exited (a test that failed half-way)."""
    command = [sys.executable, str(args[0]), *args[1:]] if isinstance(args[0], Path) else [sys.executable, "-m", "api.cli", *args]
    child = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=cli_environment(database_url, **env),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield child
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def lines_until(stream: asyncio.StreamReader, text: str, count: int = 1, seconds: float = 60) -> str:
    """A child's output up to the ``count``-th line containing ``text``; a pipe that
    ends first, or ``seconds`` without it, fails the test."""
    lines: list[str] = []
    async with asyncio.timeout(seconds):
        while sum(text in line for line in lines) < count:
            lines.append((await stream.readline()).decode())
            assert lines[-1], "".join(lines)
    return "".join(lines)


async def finished(child: asyncio.subprocess.Process, seconds: float = 60) -> tuple[str, str]:
    """Its stdin closed, the rest of its stdout and stderr once it has exited."""
    if child.stdin is not None and not child.stdin.is_closing():
        child.stdin.close()
    async with asyncio.timeout(seconds):
        out, err = await child.communicate()
    return out.decode(), err.decode()
