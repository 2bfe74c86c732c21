"""Operator safety (issue 13): dated jobs refuse a day after today unless --allow-future,
and --dry-run prints what would change and writes nothing; `token --demo` signs for the
demo server; a busy port, an unreachable database and a missing SQLite file are one
line before any work, and no command but `migrate`/`demo` creates an SQLite file."""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise import connections

from api.auth import decode_token
from api.settings import load_settings
from tests.api.conftest import api, enroll  # noqa: F401 - the api fixture, for posting data
from tests.api.loyalty_factories import loyalty_cli, loyalty_fly, loyalty_month_end, loyalty_override, loyalty_today
from tests.cli.conftest import one_line_error

ROOT = Path(__file__).resolve().parents[2]
JOBS = [["tiers", "review"], ["miles", "expire"], ["care", "refresh"]]


async def _snapshot() -> dict:
    """Every row a dated job may write: tier events, ledger entries, lots, the member
    columns the jobs set."""
    connection = connections.get("default")

    async def rows(sql: str) -> list:
        return [tuple(row.values()) for row in await connection.execute_query_dict(sql)]

    return {
        "tier_event": await rows("SELECT id, member_id, to_tier FROM tier_event ORDER BY id"),
        "ledger_entry": await rows("SELECT id, member_id, kind, redeemable_miles FROM ledger_entry ORDER BY id"),
        "credit_lot": await rows("SELECT id, remaining FROM credit_lot ORDER BY id"),
        "member": await rows(
            "SELECT id, tier, tier_valid_until, redeemable_miles, lifecycle_stage, value_segment, care_refreshed_on, "
            "care_priority, care_state_on, care_recheck_on FROM member ORDER BY id"
        ),
        "office_tier_count": await rows("SELECT office_id, tier, members FROM office_tier_count ORDER BY office_id, tier"),
    }


# ---- --as-of after today -------------------------------------------------------------------


@pytest.mark.parametrize("job", JOBS)
async def test_a_day_after_today_is_refused_without_allow_future(db, tmp_path, job):
    tomorrow = load_settings(environ={}, dotenv=None).today() + timedelta(days=1)
    line = one_line_error(loyalty_cli([*job, "--as-of", tomorrow.isoformat()], tmp_path, db.database_url), 1)
    assert line.startswith(f"loyalty: --as-of {tomorrow} is after today (")
    assert "--allow-future" in line and "--dry-run" in line
    allowed = loyalty_cli([*job, "--as-of", tomorrow.isoformat(), "--allow-future"], tmp_path, db.database_url)
    assert allowed.returncode == 0, allowed.stderr
    assert f"as of {tomorrow}:" in allowed.stdout


@pytest.mark.parametrize("job", JOBS)
async def test_today_needs_no_flag(db, tmp_path, job):
    done = loyalty_cli(job, tmp_path, db.database_url)
    assert done.returncode == 0, done.stderr


# ---- --dry-run -------------------------------------------------------------------------------


async def test_dry_runs_show_what_would_change_and_write_nothing(api, tmp_path):  # noqa: F811 - the fixture
    today = loyalty_today(api)
    ends = today + timedelta(days=30)
    dropped, kept = await enroll(api), await enroll(api)
    for member in (dropped, kept):
        assert (await loyalty_override(api, member, "SILVER", ends))["data"]["tierOverride"]["userErrors"] == []
    await loyalty_fly(api, kept, "KEEP", 12_000, "J")  # enough to retain SILVER
    flown = today - timedelta(days=1)
    await loyalty_fly(api, dropped, "OLD", 1000, "J", flown)  # 3,000 miles, good through 36 months on
    after_expiry = loyalty_month_end(flown.year, flown.month + 36) + timedelta(days=1)
    url = api.settings.database_url
    before = await _snapshot()

    review = loyalty_cli(["tiers", "review", "--dry-run", "--as-of", (ends + timedelta(days=1)).isoformat()], tmp_path, url)
    assert review.returncode == 0, review.stderr
    assert review.stdout.splitlines() == [
        f"tiers review as of {ends + timedelta(days=1)}: 2 examined, 1 retained, 1 downgraded, 2 tier changes "
        "(dry run: nothing written)",
        f"  {dropped['cardNumber']}: SILVER -> STANDARD",  # by (validUntil, id): enrolment order here
        f"  {kept['cardNumber']}: SILVER -> SILVER",
    ]

    expire = loyalty_cli(["miles", "expire", "--dry-run", "--as-of", after_expiry.isoformat()], tmp_path, url)
    assert expire.returncode == 0, expire.stderr
    lines = expire.stdout.splitlines()
    assert lines[0].startswith(f"miles expire as of {after_expiry}: ") and lines[0].endswith("(dry run: nothing written)")
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == sorted([dropped["cardNumber"], kept["cardNumber"]])
    assert "for 2 members" in lines[0]  # both flew; nothing was redeemed

    care = loyalty_cli(["care", "refresh", "--dry-run"], tmp_path, url)
    assert care.returncode == 0, care.stderr
    worklist, segments, *sample = care.stdout.splitlines()
    assert worklist.startswith(f"care worklist as of {today}: ") and worklist.endswith("(dry run: nothing written)")
    assert "2 members in 142 offices" in segments and "would change" in segments
    assert sample and all(line.startswith("  CA") and " -> " in line for line in sample)  # flyers leave LOW

    assert await _snapshot() == before

    # and the same day without --dry-run does write: the snapshot can tell
    done = loyalty_cli(["tiers", "review", "--allow-future", "--as-of", (ends + timedelta(days=1)).isoformat()], tmp_path, url)
    assert done.returncode == 0, done.stderr
    assert (await _snapshot())["tier_event"] != before["tier_event"]


async def test_a_dry_run_of_expiry_counts_a_member_once_across_batches(api):  # noqa: F811 - the fixture
    """Dry runs close no lots: the keyset walk meets a member with lots of several
    expiry days again in a later batch, and must not count them twice."""
    from loyalty.jobs import expire_miles

    member = await enroll(api)
    today = loyalty_today(api)
    first, second = today - timedelta(days=40), today - timedelta(days=5)
    await loyalty_fly(api, member, "A", 1000, "J", first)
    await loyalty_fly(api, member, "B", 1000, "J", second)
    as_of = loyalty_month_end(second.year, second.month + 36) + timedelta(days=1)
    preview = await expire_miles(as_of, batch_size=1, dry_run=True)
    assert (preview.members, preview.entries, preview.miles) == (1, 1, 6000)
    assert preview.sample == ((member["cardNumber"], 6000),)
    assert await expire_miles(as_of, batch_size=1) == preview  # what the real run then does


# ---- token --demo ----------------------------------------------------------------------------


def test_token_demo_signs_with_the_demo_servers_secret(tmp_path):
    done = loyalty_cli(["token", "--demo", "--role", "office", "--scope", "PEK01"], tmp_path)
    assert done.returncode == 0, done.stderr
    demo = load_settings(environ={}, dotenv=None).with_demo()  # what `loyalty demo` / `make run` serve with
    claims = decode_token(done.stdout.strip(), demo)
    assert (claims.role.value, claims.scope) == ("office", "PEK01")


# ---- ports, databases, files -------------------------------------------------------------------


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_busy_port_is_one_line_before_the_demo_data_is_made(tmp_path, busy_port):
    done = loyalty_cli(["demo", "--members", "5", "--port", str(busy_port)], tmp_path)
    line = one_line_error(done, 1)
    assert line == (f"loyalty: port {busy_port} on 127.0.0.1 is already in use (another server?): "
                    "choose another with --port (make run PORT=...)")
    assert list(tmp_path.iterdir()) == []  # no database made, no work done


def test_a_busy_port_is_one_line_for_serve(tmp_path, busy_port):
    line = one_line_error(loyalty_cli(["serve", "--demo", "--port", str(busy_port)], tmp_path), 1)
    assert f"port {busy_port} on 127.0.0.1 is already in use" in line


@pytest.mark.parametrize("url", ["postgres://postgres@127.0.0.1:1/x"])
def test_serve_against_an_unreachable_database_is_one_line(tmp_path, url):
    line = one_line_error(loyalty_cli(["serve", "--demo", "--port", "0"], tmp_path, url), 1)
    assert line.startswith("loyalty: cannot reach the database:"), line
    assert "migrat" not in line


@pytest.mark.parametrize("url", [None, "sqlite://loyalty.db", "sqlite://./sub/x.db"])
@pytest.mark.parametrize("args", [["ledger", "reconcile"], ["tiers", "review"], ["serve", "--demo", "--port", "0"]])
def test_a_missing_sqlite_file_is_refused_and_never_created(tmp_path, url, args):
    (tmp_path / "sub").mkdir()
    line = one_line_error(loyalty_cli(args, tmp_path, url), 1)
    assert line.startswith(f"loyalty: cannot open the SQLite database {tmp_path}/")
    assert "no such file (run `loyalty migrate` to create it" in line
    assert [p.name for p in tmp_path.rglob("*")] == ["sub"]


def test_migrate_creates_a_relative_sqlite_file_in_the_current_directory(tmp_path):
    done = loyalty_cli(["migrate"], tmp_path, "sqlite://./here.db")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "here.db").is_file()
    again = loyalty_cli(["ledger", "reconcile"], tmp_path, "sqlite://./here.db")
    assert (again.returncode, again.stdout) == (0, "ledger reconcile: 0 members checked, 0 difference(s)\n")


def test_make_run_takes_port_host_and_members():
    done = subprocess.run(["make", "-n", "run", "PORT=8123", "HOST=0.0.0.0", "MEMBERS=50"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "loyalty demo --members 50 --host 0.0.0.0 --port 8123" in done.stdout


def test_rebuild_worklist_has_no_dry_run(tmp_path, db):
    done = loyalty_cli(["care", "refresh", "--dry-run", "--rebuild-worklist"], tmp_path, db.database_url)
    assert one_line_error(done, 1) == "loyalty: --rebuild-worklist writes every elite member's state; it has no dry run"
