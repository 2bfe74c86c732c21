"""The `loyalty` command as an operator runs it (a child process): token, migrate, partner
add/list/disable, tiers review, miles expire, ledger reconcile; progress on long jobs;
every operator mistake is one line on stderr, a non-zero exit and no traceback.

Commands that need no data run on temporary SQLite files; the jobs run on the test
session's database (so on PostgreSQL too) after the data was posted through the API."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from api.auth import decode_token
from api.settings import load_settings
from loyalty.rules import DEFAULT_RULES_PATH
from members.models import Member
from tests.api.conftest import enroll
from tests.api.loyalty_factories import (
    loyalty_cli, loyalty_fly, loyalty_history, loyalty_miles, loyalty_month_end, loyalty_override, loyalty_redeem,
    loyalty_today,
)

SECRET = "cli-test-secret-0123456789-0123456789"
UNREACHABLE = "postgres://postgres@127.0.0.1:1/x"


def one_line_error(done, code: int | None = None) -> str:
    """The single stderr line of a refused command (non-zero exit, nothing on stdout)."""
    assert done.returncode != 0 and (code is None or done.returncode == code), (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert done.stdout == ""
    return lines[0]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> str:
    """A temporary SQLite database after `loyalty migrate`."""
    folder = tmp_path_factory.mktemp("cli")
    url = f"sqlite://{folder / 'loyalty.db'}"
    done = loyalty_cli(["migrate"], folder, url)
    assert done.returncode == 0, done.stderr
    return url


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite://")


# ---- token -----------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "article"), [("office", "an"), ("branch", "a"), ("partner", "a")])
def test_a_scoped_token_without_scope_is_one_line(tmp_path, role, article):
    done = loyalty_cli(["token", "--role", role], tmp_path, LOYALTY_JWT_SECRET=SECRET)
    assert one_line_error(done, 1) == f"loyalty: {article} {role} token needs --scope ({article} {role} code)"


def test_a_member_token_needs_its_member_id(tmp_path):
    done = loyalty_cli(["token", "--role", "member"], tmp_path, LOYALTY_JWT_SECRET=SECRET)
    assert one_line_error(done, 1) == "loyalty: a member token needs --sub MEMBER_ID"


def test_a_token_is_signed_for_the_server(tmp_path):
    done = loyalty_cli(["token", "--role", "office", "--scope", "PEK01", "--ttl", "15m"], tmp_path, LOYALTY_JWT_SECRET=SECRET)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert len(done.stdout.splitlines()) == 1
    claims = decode_token(token, load_settings(environ={"LOYALTY_JWT_SECRET": SECRET}, dotenv=None))
    assert (claims.role.value, claims.scope, claims.subject) == ("office", "PEK01", "office-cli")
    other = load_settings(environ={"LOYALTY_JWT_SECRET": SECRET[::-1]}, dotenv=None)
    with pytest.raises(Exception):
        decode_token(token, other)


def test_a_token_needs_a_secret(tmp_path):
    done = loyalty_cli(["token", "--role", "admin"], tmp_path)
    assert one_line_error(done, 2) == "loyalty: LOYALTY_JWT_SECRET is not set (32+ bytes needed; or use --demo)"


# ---- migrate -----------------------------------------------------------------------------


def test_migrate_creates_a_new_sqlite_database_and_is_safe_to_run_again(tmp_path):
    url = f"sqlite://{tmp_path / 'new.db'}"
    first = loyalty_cli(["migrate"], tmp_path, url)
    assert (first.returncode, first.stdout) == (0, "migrations applied; region data loaded\n"), first.stderr
    assert "applied models.0001_initial" in first.stderr
    # No LOYALTY_DATA_KEYS / LOYALTY_LOOKUP_KEY outside production: the demo keys, said loudly.
    assert "WARNING: LOYALTY_DATA_KEYS and LOYALTY_LOOKUP_KEY not set to a key of yours" in first.stderr
    with sqlite3.connect(sqlite_path(url)) as connection:
        counts = [connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("branch", "office")]
    assert counts == [6, 142]
    again = loyalty_cli(["migrate"], tmp_path, url)
    assert (again.returncode, again.stdout) == (0, "migrations applied; region data loaded\n")
    assert "applied models." not in again.stderr  # nothing left to apply
    with sqlite3.connect(sqlite_path(url)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM office").fetchone()[0] == 142


# ---- partner -----------------------------------------------------------------------------


def test_partner_add_list_disable(tmp_path, migrated):
    def run(*args):
        return loyalty_cli(["partner", *args], tmp_path, migrated)

    added = run("add", "HOTELCO", "--name", "Hotel Co")
    assert (added.returncode, added.stdout) == (0, "registered: HOTELCO Hotel Co\n")
    again = run("add", "HOTELCO", "--name", "Hotel Co")
    assert (again.returncode, again.stdout) == (0, "already registered: HOTELCO Hotel Co\n")
    assert run("add", "BANK88", "--name", "Bank 88").returncode == 0
    assert one_line_error(run("add", "HOTELCO", "--name", "Other Name"), 1) == (
        "loyalty: partner HOTELCO is already registered as 'Hotel Co'"
    )
    for bad in ("hotelco", "H", "TOO-LONG-CODE", "ADMIN"):
        assert "must be 2-12 upper-case letters or digits" in one_line_error(run("add", bad, "--name", "X"), 1)
    listed = run("list")
    assert listed.stdout.splitlines() == ["BANK88       active   Bank 88", "HOTELCO      active   Hotel Co"]
    assert run("disable", "HOTELCO").stdout == "disabled: HOTELCO Hotel Co\n"
    assert run("list").stdout.splitlines()[1] == "HOTELCO      disabled Hotel Co"
    assert one_line_error(run("disable", "NOSUCH"), 1) == "loyalty: no partner NOSUCH"


# ---- jobs on the session's database -----------------------------------------------------


async def test_tiers_review_as_of_retains_or_downgrades_what_ends_before_it(api, tmp_path):
    today = loyalty_today(api)
    ends = today + timedelta(days=30)
    kept, dropped, later = await enroll(api), await enroll(api), await enroll(api)
    for member, until in ((kept, ends), (dropped, ends), (later, ends + timedelta(days=400))):
        assert (await loyalty_override(api, member, "SILVER", until))["data"]["tierOverride"]["userErrors"] == []
    await loyalty_fly(api, kept, "KEEP", 12_000, "J")  # 36,000 miles: SILVER's 35,000 retain threshold

    # validUntil itself is still held: --as-of that day decides nothing
    same_day = loyalty_cli(["tiers", "review", "--allow-future", "--as-of", ends.isoformat()], tmp_path, api.settings.database_url)
    assert same_day.stdout == f"tiers review as of {ends}: 0 examined, 0 retained, 0 downgraded, 0 tier changes\n"

    as_of = ends + timedelta(days=1)
    done = loyalty_cli(["tiers", "review", "--allow-future", "--as-of", as_of.isoformat()], tmp_path, api.settings.database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"tiers review as of {as_of}: 2 examined, 1 retained, 1 downgraded, 2 tier changes\n"
    assert done.stderr.splitlines()[-1].startswith("review: [####################] 2/2 (100%)")  # progress

    renewed = loyalty_month_end(ends.year, ends.month + 12).isoformat()
    assert (await loyalty_history(api, kept))[0] == {"fromTier": "SILVER", "toTier": "SILVER", "reason": "RETENTION", "validUntil": renewed}
    assert (await loyalty_history(api, dropped))[0] == {"fromTier": "SILVER", "toTier": "STANDARD", "reason": "DOWNGRADE", "validUntil": None}
    assert [(await loyalty_miles(api, m))["tier"] for m in (kept, dropped, later)] == ["SILVER", "STANDARD", "SILVER"]
    assert len(await loyalty_history(api, later)) == 1

    again = loyalty_cli(["tiers", "review", "--allow-future", "--as-of", as_of.isoformat()], tmp_path, api.settings.database_url)
    assert again.stdout == f"tiers review as of {as_of}: 0 examined, 0 retained, 0 downgraded, 0 tier changes\n"


async def test_miles_expire_as_of_posts_expiry_for_what_is_left(api, tmp_path):
    member = await enroll(api)
    day = loyalty_today(api) - timedelta(days=1)
    await loyalty_fly(api, member, "OLD", 1000, "J", day)  # 3,000 miles
    assert (await loyalty_redeem(api, member["id"], 1000, "spend"))["data"]["milesRedeem"]["userErrors"] == []
    good_through = loyalty_month_end(day.year, day.month + 36)

    def expire(as_of):
        return loyalty_cli(["miles", "expire", "--allow-future", "--as-of", as_of.isoformat()], tmp_path, api.settings.database_url)

    assert expire(good_through).stdout == f"miles expire as of {good_through}: 0 miles expired in 0 entries for 0 members\n"
    after = good_through + timedelta(days=1)
    done = expire(after)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"miles expire as of {after}: 2000 miles expired in 1 entries for 1 members\n"
    assert "expiry: [####################] 1/1 (100%)" in done.stderr
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 0
    from loyalty.models import LedgerEntry, LedgerEntryKind

    expiry = await LedgerEntry.get(member_id=int(member["id"]), kind=LedgerEntryKind.EXPIRY)
    assert (expiry.redeemable_miles, expiry.activity_date, expiry.source) == (-2000, good_through, "SYSTEM")
    assert expire(after).stdout == f"miles expire as of {after}: 0 miles expired in 0 entries for 0 members\n"
    reconciled = loyalty_cli(["ledger", "reconcile"], tmp_path, api.settings.database_url)
    assert (reconciled.returncode, reconciled.stdout) == (0, "ledger reconcile: 1 members checked, 0 difference(s)\n")


async def test_ledger_reconcile_names_every_difference_and_fails(api, tmp_path):
    members = [await enroll(api) for _ in range(3)]
    for n, member in enumerate(members):
        await loyalty_fly(api, member, f"R{n}")
    clean = loyalty_cli(["ledger", "reconcile"], tmp_path, api.settings.database_url)
    assert (clean.returncode, clean.stdout) == (0, "ledger reconcile: 3 members checked, 0 difference(s)\n")
    assert "reconcile: [####################] 3/3 (100%)" in clean.stderr  # progress on stderr
    await Member.filter(id=int(members[1]["id"])).update(redeemable_miles=3001)  # a running total gone wrong
    broken = loyalty_cli(["ledger", "reconcile"], tmp_path, api.settings.database_url)
    assert broken.returncode == 1
    assert broken.stdout.splitlines() == [
        f"DIFFERENCE {members[1]['cardNumber']}: balance 3001, ledger sum 3000, lots 3000",
        "ledger reconcile: 3 members checked, 1 difference(s)",
    ]
    assert "Traceback" not in broken.stderr


# ---- operator mistakes: one line, non-zero, no traceback -----------------------------------


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["tiers", "review", "--as-of", "2027-13-01"], 2, "'2027-13-01' is not a date (YYYY-MM-DD)"),
        (["miles", "expire", "--as-of", "tomorrow"], 2, "'tomorrow' is not a date"),
        (["token", "--role", "admin", "--ttl", "soon"], 2, "'soon' is not a duration"),
        (["token", "--role", "pilot"], 2, "invalid choice: 'pilot'"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        (["ledger", "reconcile", "--all"], 2, "unrecognized arguments: --all"),
        (["partner", "add", "HOTELCO"], 2, "the following arguments are required: --name"),
    ],
)
def test_a_bad_flag_is_one_line(tmp_path, args, code, expected):
    line = one_line_error(loyalty_cli(args, tmp_path, LOYALTY_JWT_SECRET=SECRET), code)
    assert line.startswith("loyalty") and expected in line


@pytest.mark.parametrize(
    "args", [["ledger", "reconcile"], ["migrate"], ["tiers", "review"], ["miles", "expire"], ["partner", "list"]]
)
def test_an_unreachable_database_is_one_line(tmp_path, args):
    line = one_line_error(loyalty_cli(args, tmp_path, UNREACHABLE), 1)
    assert line.startswith("loyalty: cannot reach the database:")


@pytest.mark.parametrize("args", [["migrate"], ["ledger", "reconcile"], ["partner", "list"]])
def test_an_sqlite_file_that_cannot_be_opened_is_one_line(tmp_path, args):
    """A folder that does not exist: `migrate` used to wait forever here."""
    url = f"sqlite://{tmp_path / 'no-such-folder' / 'x.db'}"
    line = one_line_error(loyalty_cli(args, tmp_path, url), 1)
    assert line.startswith(f"loyalty: cannot open the SQLite database {tmp_path / 'no-such-folder' / 'x.db'}")


def test_a_database_not_yet_migrated_says_so(tmp_path):
    url = f"sqlite://{tmp_path / 'fresh.db'}"
    assert "run `loyalty migrate`" in one_line_error(loyalty_cli(["ledger", "reconcile"], tmp_path, url), 1)


def test_a_database_url_of_another_kind_is_one_line(tmp_path):
    line = one_line_error(loyalty_cli(["ledger", "reconcile"], tmp_path, "mysql://root@localhost/x"), 2)
    assert line == "loyalty: DATABASE_URL must start with sqlite:// or postgres:// (got mysql://...)"


def test_a_bad_time_zone_is_one_line(tmp_path):
    line = one_line_error(loyalty_cli(["ledger", "reconcile"], tmp_path, LOYALTY_TIMEZONE="Mars/Olympus"), 2)
    assert "LOYALTY_TIMEZONE" in line


@pytest.mark.parametrize(
    ("secret", "expected"),
    [(None, "LOYALTY_JWT_SECRET is not set"), ("short", "LOYALTY_JWT_SECRET is 5 bytes; at least 32 are needed")],
)
def test_serve_refuses_to_start_without_a_secret(tmp_path, migrated, secret, expected):
    env = {"LOYALTY_JWT_SECRET": secret} if secret else {}
    line = one_line_error(loyalty_cli(["serve", "--port", "1"], tmp_path, migrated, **env), 2)
    assert line.startswith(f"loyalty: {expected}")


def _rules_file(tmp_path, old: str, new: str) -> str:
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "rules.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("window_months = 12", "window_months = 0", "window_months must be an integer >= 1"),
        ("bonus_percent = 30", "bonus_percent = -30", "tiers.GOLD.bonus_percent"),
        ("upgrade_segments = 25", "upgrade_segments = 25.125", "tiers.SILVER.upgrade_segments"),
        ("J = 300", "J = 300\nJJ = 10", "fare_classes"),
        ("[tiers.PLATINUM]", "[tiers.DIAMOND]", "tiers.DIAMOND"),
    ],
)
@pytest.mark.parametrize("command", [["tiers", "review"], ["serve", "--port", "1"]])
def test_a_bad_rules_file_is_one_line_naming_the_field(tmp_path, migrated, old, new, field, command):
    rules = _rules_file(tmp_path, old, new)
    done = loyalty_cli(command, tmp_path, migrated, LOYALTY_RULES=rules, LOYALTY_JWT_SECRET=SECRET)
    line = one_line_error(done, 2)
    assert line.startswith(f"loyalty: rules file {rules}:") and field in line


def test_a_missing_rules_file_is_one_line(tmp_path, migrated):
    done = loyalty_cli(["tiers", "review"], tmp_path, migrated, LOYALTY_RULES=str(tmp_path / "nope.toml"))
    assert "cannot be read" in one_line_error(done, 2)
