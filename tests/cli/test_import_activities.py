"""`loyalty import activities FILE`: flights posted as the airline and partner activities
under the partner's registered code, through loyalty.ledger (rules, bonus, upgrades,
events), idempotent by externalRef; rejected rows with the service's reasons."""

from __future__ import annotations

from loyalty.models import LedgerEntry, LedgerEntryKind, TierEvent
from members.cards import card_number
from members.enums import Tier
from members.models import Member
from members.partners import add_partner, disable_partner
from tests.cli.conftest import one_line_error, read_csv, run, write_csv, yesterday

HEADER = ["kind", "card_number", "family_name", "external_ref", "activity_date", "carrier", "flight_number",
          "origin", "destination", "distance_km", "fare_class", "partner_code", "miles", "description"]
WANG, LI = card_number(11_111_111), card_number(22_222_222)


async def _members(db, tmp_path) -> None:
    source = write_csv(tmp_path / "members.csv", ["card_number", "family_name", "given_name", "country", "city"], [
        [WANG, "王", "芳", "CN", "Beijing"], [LI, "Li", "Lei", "CN", "Shanghai"],
    ])
    assert run(db, tmp_path, "import", "members", str(source)).stdout.startswith("import members: 2 taken")


def flight(card: str, ref: str, day, km: int, fare: str) -> list:
    return ["FLIGHT", card, "", ref, day.isoformat(), "CA", "1501", "PEK", "SHA", km, fare, "", "", ""]


def partner(card: str, family: str, ref: str, day, code: str, miles) -> list:
    return ["PARTNER", card, family, ref, day.isoformat(), "", "", "", "", "", "", code, miles, "2 nights"]


async def test_flights_and_partner_rows_post_through_the_services_once(db, tmp_path):
    await _members(db, tmp_path)
    await add_partner("HOTELCO", "Hotel Co")
    await add_partner("OLDBANK", "Old Bank")
    await disable_partner("OLDBANK")
    day = yesterday(db)
    rows = [
        flight(WANG, "F-1", day, 1000, "J"),                 # 3,000 miles
        partner(WANG, " 王 ", "H-1", day, "HOTELCO", 500),       # 500 miles; names match space-insensitively
        flight(LI, "F-2", day, 14000, "J"),                  # 42,000 qualifying miles: SILVER
        partner(LI, "Wrong", "H-2", day, "HOTELCO", 500),    # NAME_MISMATCH
        partner(LI, "Li", "H-3", day, "OLDBANK", 500),       # disabled partner
        partner(LI, "Li", "H-4", day, "NOSUCH", 500),        # unregistered partner
        flight(WANG, "F-3", day, 1000, "ZZ"),                # unknown fare class
        ["BUS", WANG, "", "B-1", day.isoformat()] + [""] * 9,
        flight(WANG, "F-4", day, "far", "Y"),                # not a number
    ]
    source = write_csv(tmp_path / "acts.csv", HEADER, rows)
    done = run(db, tmp_path, "import", "activities", str(source))
    assert done.returncode == 0, done.stderr
    rejects = tmp_path / "acts.rejected.csv"
    assert done.stdout == f"import activities: 3 taken, 0 already present, 6 rejected (see {rejects})\n"
    assert [(r["external_ref"], r["reason"].split(":")[0]) for r in read_csv(rejects)] == [
        ("H-2", "NAME_MISMATCH"), ("H-3", "FORBIDDEN"), ("H-4", "FORBIDDEN"), ("F-3", "INVALID"),
        ("B-1", "INVALID"), ("F-4", "INVALID"),
    ]
    assert read_csv(rejects)[2]["reason"] == "FORBIDDEN: partner NOSUCH is not registered or not active"

    wang, li = await Member.get(card_number=WANG), await Member.get(card_number=LI)
    assert wang.redeemable_miles == 3_500 and wang.tier is Tier.STANDARD
    entry = await LedgerEntry.get(external_ref="F-1")
    assert (entry.source, entry.qualifying_miles, entry.qualifying_segments, entry.redeemable_miles) == ("AIRLINE", 3_000, 300, 3_000)
    assert (await LedgerEntry.get(external_ref="H-1")).source == "HOTELCO"
    assert (li.tier, li.redeemable_miles) == (Tier.SILVER, 42_000)  # the upgrading flight earns STANDARD's 0 % bonus
    event = await TierEvent.get(member_id=li.id)
    assert (event.to_tier, event.actor) == (Tier.SILVER, "system:import")

    again = run(db, tmp_path, "import", "activities", str(source))
    assert again.stdout == f"import activities: 0 taken, 3 already present, 6 rejected (see {rejects})\n"
    assert await LedgerEntry.filter(kind=LedgerEntryKind.FLIGHT).count() == 2
    assert (await Member.get(card_number=WANG)).redeemable_miles == 3_500

    changed = write_csv(tmp_path / "changed.csv", HEADER, [flight(WANG, "F-1", day, 1200, "J")])
    conflict = run(db, tmp_path, "import", "activities", str(changed))
    assert conflict.stdout.startswith("import activities: 0 taken, 0 already present, 1 rejected")
    assert read_csv(tmp_path / "changed.rejected.csv")[0]["reason"] == (
        "IDEMPOTENCY_CONFLICT: this externalRef was already used for a different posting")
    assert (await Member.get(card_number=WANG)).redeemable_miles == 3_500


async def test_a_row_outside_the_claims_window_or_for_an_unknown_card_is_rejected(db, tmp_path):
    await _members(db, tmp_path)
    day = yesterday(db)
    source = write_csv(tmp_path / "a.csv", HEADER, [
        flight(WANG, "OLD", day.replace(year=day.year - 1), 1000, "Y"),
        flight(card_number(33_333_333), "NOBODY", day, 1000, "Y"),
    ])
    done = run(db, tmp_path, "import", "activities", str(source))
    assert done.stdout.startswith("import activities: 0 taken, 0 already present, 2 rejected")
    assert [r["reason"].split(":")[0] for r in read_csv(tmp_path / "a.rejected.csv")] == ["INVALID", "NOT_FOUND"]
    assert await LedgerEntry.all().count() == 0


async def test_a_file_without_the_required_columns_is_one_line(db, tmp_path):
    source = write_csv(tmp_path / "x.csv", ["kind", "card_number"], [["FLIGHT", WANG]])
    line = one_line_error(run(db, tmp_path, "import", "activities", str(source)), 1)
    assert line.startswith(f"loyalty: {source} lacks the required column(s) external_ref, activity_date")
