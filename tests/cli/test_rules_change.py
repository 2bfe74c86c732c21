"""`loyalty rules preview|apply NEW_RULES_FILE`: the preview writes nothing, apply does what
the preview showed (the same summary, the same CSV), and a second apply changes nothing;
a bad rules file is one line. The new rules: J earns 400 % (was 300 %), SILVER is reached
with 10,000 qualifying miles (was 40,000)."""

from __future__ import annotations

from datetime import datetime

from loyalty import calendar as cal
from loyalty import ledger
from loyalty.models import LedgerEntry, RulesChangeRun, TierEvent
from loyalty.rulechange import rules_file_hash
from loyalty.rules import load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.models import Member
from members.services import Enrolment, enroll
from tests.cli.conftest import one_line_error, read_csv, run, yesterday
from tests.loyalty.test_rule_change import write_rules

RULES = load_rules()
ADMIN = Caller(Role.ADMIN, "t")


async def flown(settings, name: str, km: int) -> Member:
    """A member with a J flight of `km` yesterday (3 x km miles, no bonus)."""
    member = await enroll(ADMIN, Enrolment(name, "Fang", Address(country="CN", province="Beijing", city="Beijing")),
                          today=yesterday(settings))
    flight = ledger.FlightDetails("CA", "1501", yesterday(settings), "PEK", "SHA", km, "J")
    await ledger.flight_accrue(Caller(Role.AIRLINE, "t"), member.card_number, flight, f"F-{name}", rules=RULES,
                               today=datetime.now(settings.tz).date())
    return member


async def test_preview_then_apply_twice(db, tmp_path):
    a = await flown(db, "Wang", 3_000)  # 9,000 -> 12,000: SILVER
    c = await flown(db, "Zhao", 1_000)  # 3,000 -> 4,000
    path = write_rules(tmp_path)
    digest = rules_file_hash(path)
    today = datetime.now(db.tz).date()
    until = cal.upgrade_valid_until(today, 24)
    entries = await LedgerEntry.all().count()

    preview = run(db, tmp_path, "rules", "preview", str(path), "--csv", str(tmp_path / "preview.csv"))
    assert preview.returncode == 0, preview.stderr
    lines = preview.stdout.splitlines()
    assert lines[0] == (
        f"rules preview of {path} (sha256 {digest[:16]}) as of {today}: 2 members examined, 2 would change: "
        "2 adjustment entries, +4,000 redeemable miles, +4,000 qualifying miles, 2 segments; "
        "tier changes: STANDARD->SILVER 1 (preview: nothing written)"
    )
    assert lines[1:] == [
        f"  {a.card_number}: STANDARD -> SILVER until {until}, +3,000 miles (+3,000 qualifying, 1 segments) on 1 day(s)",
        f"  {c.card_number}: STANDARD, +1,000 miles (+1,000 qualifying, 1 segments) on 1 day(s)",
    ]
    assert "rules preview: [####################] 2/2 (100%)" in preview.stderr
    shown = read_csv(tmp_path / "preview.csv")
    assert shown == [
        {"card_number": a.card_number, "tier_before": "STANDARD", "tier_after": "SILVER", "valid_until": str(until),
         "redeemable_miles": "3000", "qualifying_miles": "3000", "qualifying_segments": "1", "days": "1"},
        {"card_number": c.card_number, "tier_before": "STANDARD", "tier_after": "STANDARD", "valid_until": "",
         "redeemable_miles": "1000", "qualifying_miles": "1000", "qualifying_segments": "1", "days": "1"},
    ]
    assert await LedgerEntry.all().count() == entries
    assert await TierEvent.all().count() == 0 and await RulesChangeRun.all().count() == 0

    applied = run(db, tmp_path, "rules", "apply", str(path), "--csv", str(tmp_path / "applied.csv"))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[0] == lines[0].replace("would change", "changed").replace(
        "rules preview", "rules apply").replace(" (preview: nothing written)", "")
    assert applied.stdout.splitlines()[1:] == lines[1:]
    assert read_csv(tmp_path / "applied.csv") == shown
    assert await LedgerEntry.all().count() == entries + 2
    assert [(m.tier.name, m.redeemable_miles) for m in await Member.all().order_by("id")] == [
        ("SILVER", 12_000), ("STANDARD", 4_000)]
    (record,) = await RulesChangeRun.all()
    assert (record.rules_hash, record.rules_path, record.actor.startswith("cli:")) == (digest, str(path), True)

    again = run(db, tmp_path, "rules", "apply", str(path))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"rules apply of {path} (sha256 {digest[:16]}) as of {today}: 2 members examined, 0 changed: "
        "0 adjustment entries, +0 redeemable miles, +0 qualifying miles, 0 segments; tier changes: none"
    ]
    assert await LedgerEntry.all().count() == entries + 2
    assert await TierEvent.all().count() == 1


async def test_a_bad_rules_file_is_one_line(db, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(write_rules(tmp_path).read_text(encoding="utf-8").replace("J = 400", "J = -5"), encoding="utf-8")
    for action in ("preview", "apply"):
        assert one_line_error(run(db, tmp_path, "rules", action, str(bad)), 2) == (
            f"loyalty: rules file {bad}: fare_classes.J must be a non-negative integer")
        assert one_line_error(run(db, tmp_path, "rules", action, str(tmp_path / "none.toml")), 2).startswith(
            f"loyalty: rules file {tmp_path / 'none.toml'}: cannot be read")
    assert one_line_error(run(db, tmp_path, "rules", "preview", str(write_rules(tmp_path)), "--csv",
                              str(tmp_path / "no" / "dir.csv")), 1).startswith("loyalty: cannot write")
