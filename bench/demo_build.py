"""Time `loyalty demo`'s build (api.demo.build_demo, no server) on a fresh SQLite file,
for this tree and, with --compare-rev / --compare-tree, another code in the same run,
the versions alternating round after round so that a change of the machine's load
falls on both.

    .venv/bin/python -m bench.demo_build --members 10000 --compare-rev main --rounds 3

Each build runs in its own process (PYTHONPATH = the code measured), on the fixed day
of the demo tests. Reported per build: "ledger" = from the start to the last member's
rows written (members, entries, lots; the tier events, the rollups and the care data
come after), "total" = the whole build_demo, "cpu" = the process's CPU time (user +
system, migrations included): on a shared machine the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.hotpath import _source_of

ROOT = Path(__file__).resolve().parent.parent
TODAY = "2026-11-22"

_CHILD = r"""
import asyncio, json, sys, time
from datetime import date
from tortoise import Tortoise
from api.db import migrate
from api.demo import build_demo
from api.settings import load_settings
from loyalty.rules import load_rules

async def main(members, path, today):
    settings = load_settings(environ={"DATABASE_URL": f"sqlite://{path}", "LOYALTY_DEMO": "1"}, dotenv=None).with_demo()
    await migrate(settings)
    marks = {}
    started = time.perf_counter()

    def progress(done, total):
        if done == total:
            marks.setdefault("ledger", time.perf_counter() - started)

    await build_demo(settings, members, rules=load_rules(settings.rules_path), today=date.fromisoformat(today),
                     progress=progress)
    marks["total"] = time.perf_counter() - started
    marks["cpu"] = time.process_time()
    await Tortoise.close_connections()
    print(json.dumps(marks))

asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""


def build(source: Path, members: int, directory: Path) -> dict[str, float]:
    path = directory / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(source), "DATABASE_URL": ""}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(members), str(path), TODAY], cwd=source, env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare-rev", help="also measure the code of this git revision")
    parser.add_argument("--compare-tree", type=Path, help="also measure the code in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        versions = {"this tree": ROOT}
        if args.compare_rev:
            versions[args.compare_rev] = _source_of(args.compare_rev, Path(tmp) / "rev")
        if args.compare_tree:
            versions[args.compare_tree.name] = args.compare_tree.resolve()
        results: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
        for round_ in range(1, args.rounds + 1):
            for name, source in versions.items():
                marks = build(source, args.members, Path(tmp))
                results[name].append(marks)
                print(f"round {round_} {name:>12}: ledger {marks['ledger']:6.1f} s  total {marks['total']:6.1f} s  "
                      f"cpu {marks['cpu']:6.1f} s", flush=True)
        print(f"\n{args.members:,} members, best of {args.rounds} (load average {os.getloadavg()[0]:.1f})")
        base = min(r["cpu"] for r in results["this tree"])
        for name, runs in results.items():
            best = {key: min(r[key] for r in runs) for key in ("ledger", "total", "cpu")}
            print(f"{name:>12}: ledger {best['ledger']:6.1f} s  total {best['total']:6.1f} s  cpu {best['cpu']:6.1f} s"
                  f"  (cpu {best['cpu'] / base:.2f} x this tree's)")


if __name__ == "__main__":
    main()
