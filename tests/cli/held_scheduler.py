"""`loyalty ARGS` with the scheduler's daily jobs replaced by two held ones, for the
tests of how the command stops (tests/cli/test_scheduler.py): run as
`python tests/cli/held_scheduler.py scheduler [--once]`.

Each job prints "<job> entered" on stdout, then waits for a line on stdin: "last" ends
it (it was in its last batch), "more" reaches its checkpoint between two batches first
(where a scheduler asked to stop ends it)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api import cli, scheduler  # noqa: E402 - after the path


def held(name: str):
    async def job(settings, rules, day, checkpoint):
        print(f"{name} entered", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if line.strip() == "more":
            checkpoint(1, 2)
        return f"{name} done", {"batches": 2}

    return job


scheduler.JOBS = {name: held(name) for name in ("first", "second")}

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
