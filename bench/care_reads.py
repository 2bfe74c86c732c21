"""Time the care reads (careCallsDue of an office, a branch, everyone; regionStats of an
office; officeStats of all 142 offices) as domain calls on a SQLite database built by
`loyalty demo` (and grown by bench/grow_sqlite.py): p50 and p99 in ms.

    .venv/bin/python bench/care_reads.py /path/to/loyalty.db [RUNS] [YYYY-MM-DD]
    .venv/bin/python bench/care_reads.py postgres://postgres@127.0.0.1:5432/NAME [RUNS] [YYYY-MM-DD]

The day defaults to the demo's (give the day the demo was built).
"""
import asyncio, statistics, sys, time
from datetime import date, datetime, timezone
from tortoise import Tortoise

DB, RUNS = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30
TODAY = date.fromisoformat(sys.argv[3]) if len(sys.argv) > 3 else date.today()

async def main():
    from api.db import tortoise_config
    await Tortoise.init(config=tortoise_config(DB if "://" in DB else f"sqlite://{DB}"))
    from care.calls import care_calls_due
    from care.stats import office_stats, region_stats
    from loyalty.rules import load_rules
    from members.access import Caller, Role, resolve_caller
    rules = load_rules()
    admin = Caller(Role.ADMIN, "bench")
    office = await resolve_caller(Role.OFFICE, "bench", "PEK01")
    branch = await resolve_caller(Role.BRANCH, "bench", "NCB")
    now = datetime.combine(TODAY, datetime.min.time(), tzinfo=timezone.utc)
    cases = {
        "careCallsDue office first 50": lambda: care_calls_due(office, rules, TODAY, first=50),
        "careCallsDue branch first 50": lambda: care_calls_due(branch, rules, TODAY, first=50),
        "careCallsDue admin first 50": lambda: care_calls_due(admin, rules, TODAY, first=50),
        "regionStats office": lambda: region_stats(office, rules, TODAY, now=now),
        "officeStats admin (142 rows)": lambda: office_stats(admin, rules, TODAY, now=now),
    }
    for name, call in cases.items():
        await call()  # warm
        times = []
        for _ in range(RUNS):
            t = time.perf_counter(); result = await call(); times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
        extra = f"total {result.total_count}" if hasattr(result, "total_count") else ""
        print(f"{name:32s} p50 {statistics.median(times):8.1f} ms  p99 {p99:8.1f} ms  {extra}", flush=True)
    await Tortoise.close_connections()

asyncio.run(main())
