"""Races over HTTP: many identical or competing requests at once through the whole
stack (httpx ASGITransport, asyncio.gather). The database decides: one entry per
externalRef, never a negative balance; afterwards `loyalty ledger reconcile` finds
every balance equal to its ledger. On SQLite and on PostgreSQL (a real pool)."""

from __future__ import annotations

import asyncio

from loyalty.jobs import reconcile
from loyalty.models import LedgerEntry, LedgerEntryKind
from tests.api.conftest import data, enroll
from tests.api.loyalty_factories import (
    ADMIN, loyalty_assert_balanced, loyalty_cli, loyalty_flight, loyalty_flight_accrue, loyalty_fly, loyalty_miles,
    loyalty_redeem, loyalty_reverse, loyalty_today,
)


async def _no_difference() -> int:
    """Reconcile every member with the service the CLI calls; the number checked."""
    checked, differences = await reconcile()
    assert differences == []
    return checked


async def _fifty_identical_flights(api, member: dict) -> list[dict]:
    flight = loyalty_flight(loyalty_today(api), 1000, "J")
    results = await asyncio.gather(
        *(loyalty_flight_accrue(api, member["cardNumber"], "CA1501-RACE", flight) for _ in range(50))
    )
    return [data(result)["flightAccrue"] for result in results]


async def _thirty_redemptions_of_1000(api, member: dict) -> list[dict]:
    results = await asyncio.gather(*(loyalty_redeem(api, member["id"], 1000, f"race-{n}") for n in range(30)))
    return [data(result)["milesRedeem"] for result in results]


async def test_the_same_flight_50_times_at_once_posts_one_entry(api):
    member = await enroll(api)
    payloads = await _fifty_identical_flights(api, member)
    assert [p["userErrors"] for p in payloads] == [[]] * 50
    ids = {p["entry"]["id"] for p in payloads}
    assert len(ids) == 1
    assert await LedgerEntry.filter(member_id=int(member["id"])).values_list("id", flat=True) == [int(ids.pop())]
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 3000
    await loyalty_assert_balanced(member)
    assert await _no_difference() == 1


async def test_30_redemptions_of_1000_from_10000_at_once_exactly_10_succeed(api):
    member = await enroll(api)
    await loyalty_fly(api, member, "TEN", 10_000, "B")  # 10,000 miles
    payloads = await _thirty_redemptions_of_1000(api, member)
    succeeded = [p for p in payloads if not p["userErrors"]]
    refused = [p for p in payloads if p["userErrors"]]
    assert len(succeeded) == 10
    assert [[e["code"] for e in p["userErrors"]] for p in refused] == [["INSUFFICIENT_MILES"]] * 20
    # each success saw its own balance after it: 9,000 down to 0, none below
    assert sorted(p["member"]["redeemableMiles"] for p in succeeded) == list(range(0, 10_000, 1000))
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 0
    assert await LedgerEntry.filter(member_id=int(member["id"]), kind=LedgerEntryKind.REDEMPTION).count() == 10
    await loyalty_assert_balanced(member)
    assert await _no_difference() == 1


async def test_10_reversals_of_one_flight_at_once_reverse_it_once(api):
    member = await enroll(api)
    flight = (await loyalty_fly(api, member, "REV", 14_000, "J"))["entry"]  # 42,000: SILVER
    results = await asyncio.gather(*(loyalty_reverse(api, flight["id"], f"rev-{n}") for n in range(10)))
    payloads = [data(result)["ledgerEntryReverse"] for result in results]
    assert sorted(tuple(e["code"] for e in p["userErrors"]) for p in payloads) == [()] + [("ALREADY_REVERSED",)] * 9
    assert await LedgerEntry.filter(member_id=int(member["id"]), kind=LedgerEntryKind.REVERSAL).count() == 1
    assert await loyalty_miles(api, member) == {"tier": "STANDARD", "redeemableMiles": 0, "milesExpiringSoon": 0}
    await _no_difference()


async def test_after_the_races_loyalty_ledger_reconcile_reports_no_difference(api, tmp_path):
    """Everything at once for two members, then the operator's command on the same database."""
    first, second = await enroll(api), await enroll(api)
    await loyalty_fly(api, second, "TEN", 10_000, "B")
    flights, redemptions = await asyncio.gather(
        _fifty_identical_flights(api, first), _thirty_redemptions_of_1000(api, second)
    )
    assert len({p["entry"]["id"] for p in flights}) == 1
    assert sum(not p["userErrors"] for p in redemptions) == 10
    assert await _no_difference() == 2
    done = loyalty_cli(["ledger", "reconcile"], tmp_path, api.settings.database_url)
    assert (done.returncode, done.stdout.splitlines()[-1]) == (0, "ledger reconcile: 2 members checked, 0 difference(s)"), done.stderr
    assert "Traceback" not in done.stderr
