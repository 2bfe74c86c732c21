"""`loyalty report liability [--as-of D]` and `loyalty report breakage --from --to`: CSV on
stdout with a totals line, the summary on stderr; bad days one line."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.reports import BREAKAGE_COLUMNS, LIABILITY_COLUMNS
from loyalty import calendar as cal
from tests.cli.conftest import one_line_error, read_csv, run, yesterday
from tests.cli.test_rules_change import flown


async def test_liability_and_breakage_as_csv(db, tmp_path):
    await flown(db, "Wang", 1_000)  # 3,000 miles yesterday
    await flown(db, "Li", 2_000)  # 6,000
    day = yesterday(db)
    expires = cal.credit_expiry(day, 36)

    done = run(db, tmp_path, "report", "liability")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == ",".join(LIABILITY_COLUMNS)
    assert read_csv(done.stdout) == [
        {"expiry_month": expires.strftime("%Y-%m"), "tier": "STANDARD", "office_code": "PEK01", "branch_code": "NCB",
         "miles": "9000", "members": "2"},
        {"expiry_month": "total", "tier": "", "office_code": "", "branch_code": "", "miles": "9000", "members": ""},
    ]
    today = datetime.now(db.tz).date()
    assert done.stderr.splitlines()[-1] == f"liability as of {today}: 9,000 miles outstanding in 1 rows"
    after = run(db, tmp_path, "report", "liability", "--as-of", (expires + timedelta(days=1)).isoformat())
    assert read_csv(after.stdout) == [
        {"expiry_month": "total", "tier": "", "office_code": "", "branch_code": "", "miles": "0", "members": ""}]

    done = run(db, tmp_path, "report", "breakage", "--from", day.isoformat(), "--to", day.isoformat())
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        ",".join(BREAKAGE_COLUMNS), f"{day:%Y-%m},2,9000,0,0", "total,2,9000,0,0"]
    assert done.stderr.splitlines()[-1] == f"breakage {day:%Y-%m}..{day:%Y-%m}: 0 of 9,000 credited miles expired (0.00 %)"


async def test_bad_days_are_one_line(db, tmp_path):
    before = (datetime.now(db.tz).date() - timedelta(days=1)).isoformat()
    assert "is before today" in one_line_error(run(db, tmp_path, "report", "liability", "--as-of", before), 1)
    assert one_line_error(run(db, tmp_path, "report", "breakage", "--from", "2025-02-01", "--to", "2025-01-01"), 1) == (
        "loyalty: to must not be before from")
    assert one_line_error(run(db, tmp_path, "report", "breakage", "--from", "2015-01-01", "--to", "2025-01-01"), 1) == (
        "loyalty: the range may span at most 120 months")
    assert one_line_error(run(db, tmp_path, "report", "breakage", "--from", "2025-01-01"), 2).startswith("loyalty report breakage:")
