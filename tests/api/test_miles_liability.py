"""milesLiability and milesBreakage over HTTP: admin only, the figures grouped, totals past
32 bits, bad days refused with INVALID (the numbers themselves: tests/loyalty/test_liability.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from loyalty import calendar as cal
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind
from tests.api.conftest import data, enroll, error_codes
from tests.api.loyalty_factories import loyalty_fly, loyalty_today

LIABILITY = """query($asOf: Date, $office: String!) { milesLiability(asOf: $asOf) { asOf totalMiles
  byExpiryMonth { month miles } byTier { tier miles } byOffice { officeCode branchCode miles }
  rows(officeCode: $office) { expiryMonth tier officeCode branchCode miles members } } }"""
BREAKAGE = """query($f: Date!, $t: Date!) { milesBreakage(from: $f, to: $t) { from to creditedMiles expiredMiles
  basisPoints months { month credits creditedMiles expiredMiles basisPoints } } }"""
BIG = 3_000_000_000  # past 2^31


def month(day: date) -> str:
    return day.strftime("%Y-%m")


async def test_liability_and_breakage_for_an_admin(api):
    beijing = await enroll(api, "PEK01")
    tianjin = await enroll(api, "TSN01")
    await loyalty_fly(api, beijing, "F1")  # J 1,000 km yesterday: 3,000
    today = loyalty_today(api)
    day = today - timedelta(days=1)
    expires = cal.credit_expiry(day, 36)
    # A credit too large for a 32-bit Int, written as the services would (entry, lot).
    entry = await LedgerEntry.create(member_id=int(tianjin["id"]), kind=LedgerEntryKind.PARTNER, activity_date=day,
                                     redeemable_miles=BIG, source="HOTELCO")
    await CreditLot.create(entry_id=entry.id, member_id=int(tianjin["id"]), expires_on=expires, remaining=BIG)

    result = data(await api.gql(LIABILITY, {"office": "pek01"}, as_=("admin",)))["milesLiability"]
    assert (result["asOf"], result["totalMiles"]) == (today.isoformat(), BIG + 3_000)
    assert result["byExpiryMonth"] == [{"month": month(expires), "miles": BIG + 3_000}]
    assert result["byTier"] == [{"tier": "STANDARD", "miles": BIG + 3_000}]
    assert [(o["officeCode"], o["miles"]) for o in result["byOffice"]] == [("PEK01", 3_000), ("TSN01", BIG)]
    assert result["rows"] == [{"expiryMonth": month(expires), "tier": "STANDARD", "officeCode": "PEK01",
                               "branchCode": result["byOffice"][0]["branchCode"], "miles": 3_000, "members": 1}]

    later = data(await api.gql(LIABILITY, {"asOf": (expires + timedelta(days=1)).isoformat(), "office": "PEK01"},
                               as_=("admin",)))["milesLiability"]
    assert (later["totalMiles"], later["byExpiryMonth"], later["rows"]) == (0, [], [])

    breakage = data(await api.gql(BREAKAGE, {"f": day.isoformat(), "t": day.isoformat()}, as_=("admin",)))
    assert breakage["milesBreakage"] == {
        "from": cal.month_start(day).isoformat(), "to": cal.month_end(day).isoformat(),
        "creditedMiles": BIG + 3_000, "expiredMiles": 0, "basisPoints": 0,
        "months": [{"month": month(day), "credits": 2, "creditedMiles": BIG + 3_000, "expiredMiles": 0, "basisPoints": 0}],
    }


@pytest.mark.parametrize("role", [("office", "PEK01"), ("branch", "NCB"), ("airline",), ("partner", "HOTELCO")])
async def test_staff_other_than_admin_are_refused(api, role):
    assert error_codes(await api.gql(LIABILITY, {"office": "PEK01"}, as_=role)) == ["FORBIDDEN"]
    assert error_codes(await api.gql(BREAKAGE, {"f": "2025-01-01", "t": "2025-01-31"}, as_=role)) == ["FORBIDDEN"]


async def test_bad_days_are_invalid(api):
    yesterday = (loyalty_today(api) - timedelta(days=1)).isoformat()
    result = await api.gql(LIABILITY, {"asOf": yesterday, "office": "PEK01"}, as_=("admin",))
    assert error_codes(result) == ["INVALID"]
    assert error_codes(await api.gql(LIABILITY, {"office": "NOPE1"}, as_=("admin",))) == ["NOT_FOUND"]
    # A code longer than the column (8) names no office: NOT_FOUND, not an internal error.
    assert error_codes(await api.gql(LIABILITY, {"office": "X" * 300}, as_=("admin",))) == ["NOT_FOUND"]
    for first, last in (("2025-02-01", "2025-01-31"), ("2015-01-01", "2025-01-31")):
        assert error_codes(await api.gql(BREAKAGE, {"f": first, "t": last}, as_=("admin",))) == ["INVALID"]


async def test_the_calendar_edges_are_answered(api):
    for first, last in (("9999-12-01", "9999-12-31"), ("0001-01-01", "0001-01-31")):
        result = data(await api.gql(BREAKAGE, {"f": first, "t": last}, as_=("admin",)))["milesBreakage"]
        assert (result["from"], result["to"], result["creditedMiles"], len(result["months"])) == (first, last, 0, 1)
    result = data(await api.gql(LIABILITY, {"asOf": "9999-12-31", "office": "PEK01"}, as_=("admin",)))
    assert result["milesLiability"]["totalMiles"] == 0
