"""Missing-miles claims over HTTP: a member claims a flight within the claims window; the
airline or an admin approves it (the flight posted once, however often approved, even
after the window has closed since the claim) or rejects it with a reason; the member
sees the status. Bad claims and decisions are refused and change nothing."""

from __future__ import annotations

from datetime import timedelta

from loyalty.models import LedgerEntry, MilesClaim
from members.models import Member
from tests.api.conftest import USER_ERRORS, as_member, data, enroll, error_codes
from tests.api.loyalty_factories import loyalty_flight, loyalty_fly, loyalty_months_back, loyalty_today

CLAIM = "id status reason cardNumber carrier flightNumber flightDate entry { kind qualifyingMiles redeemableMiles externalRef }"
SUBMIT = "mutation($input: MilesClaimSubmitInput!) { milesClaimSubmit(input: $input) { claim { %s } %s } }" % (CLAIM, USER_ERRORS)
DECIDE = "mutation($input: MilesClaimDecideInput!) { milesClaimDecide(input: $input) { claim { %s } %s } }" % (CLAIM, USER_ERRORS)
LIST = "query($s: ClaimStatus) { milesClaims(status: $s) { totalCount edges { node { id status } } } }"
AIRLINE, ADMIN = ("airline",), ("admin",)


async def submit(api, member: dict, day=None, key: str | None = None, **changes) -> dict:
    flight = loyalty_flight(day or loyalty_today(api) - timedelta(days=10), 1000, "J", **changes)
    variables = {"input": {"flight": flight, **({"idempotencyKey": key} if key else {})}}
    return data(await api.gql(SUBMIT, variables, as_=as_member(member)))["milesClaimSubmit"]


async def decide(api, claim_id: str, approve: bool, as_=AIRLINE, reason: str | None = None) -> dict:
    variables = {"input": {"claimId": claim_id, "approve": approve, **({"reason": reason} if reason else {})}}
    return data(await api.gql(DECIDE, variables, as_=as_))["milesClaimDecide"]


def refused(payload: dict) -> list[tuple]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def test_an_approved_claim_posts_the_flight_once(api):
    member = await enroll(api, "PEK01")
    claim = (await submit(api, member))["claim"]
    assert (claim["status"], claim["cardNumber"], claim["entry"]) == ("PENDING", member["cardNumber"], None)
    approved = await decide(api, claim["id"], True)
    # 1,000 km in J: 3,000 qualifying and redeemable miles (RULES: J earns 300 %).
    assert approved["claim"]["status"] == "APPROVED"
    assert approved["claim"]["entry"] == {"kind": "FLIGHT", "qualifyingMiles": 3_000, "redeemableMiles": 3_000,
                                          "externalRef": f"CLAIM-{claim['id']}"}
    again = await decide(api, claim["id"], True, as_=ADMIN)
    assert again["userErrors"] == [] and again["claim"]["status"] == "APPROVED"
    assert await LedgerEntry.filter(member_id=int(member["id"]), kind="FLIGHT").count() == 1
    assert (await Member.get(id=int(member["id"]))).redeemable_miles == 3_000
    mine = data(await api.gql(LIST, as_=as_member(member)))["milesClaims"]
    assert mine["totalCount"] == 1 and mine["edges"][0]["node"]["status"] == "APPROVED"


async def test_a_claim_made_in_time_is_approved_after_the_window_closed(api):
    member = await enroll(api, "PEK01")
    today = loyalty_today(api)
    earliest = loyalty_months_back(today, 6)  # the claims window (claims_window_months = 6)
    claim = (await submit(api, member, day=earliest))["claim"]
    # Judged again a day later the flight would be out of the window; the claim keeps its day.
    await MilesClaim.filter(id=int(claim["id"])).update(submitted_on=today)
    assert (await decide(api, claim["id"], True))["claim"]["status"] == "APPROVED"


async def test_a_rejection_needs_a_reason_and_ends_the_claim(api):
    member = await enroll(api, "PEK01")
    claim = (await submit(api, member))["claim"]
    assert refused(await decide(api, claim["id"], False)) == [("INVALID", ["input", "reason"])]
    rejected = await decide(api, claim["id"], False, reason="not on the passenger list")
    assert (rejected["claim"]["status"], rejected["claim"]["reason"]) == ("REJECTED", "not on the passenger list")
    assert refused(await decide(api, claim["id"], True)) == [("INVALID_TRANSITION", ["input", "claimId"])]
    assert await LedgerEntry.all().count() == 0
    # Rejected: the same flight may be claimed again.
    assert (await submit(api, member))["userErrors"] == []


async def test_bad_claims_are_refused_and_write_nothing(api):
    member = await enroll(api, "PEK01")
    today = loyalty_today(api)
    assert refused(await submit(api, member, day=today + timedelta(days=1))) == [("INVALID", ["input", "flight", "date"])]
    assert refused(await submit(api, member, day=loyalty_months_back(today, 6) - timedelta(days=1))) == [
        ("INVALID", ["input", "flight", "date"])
    ]
    assert refused(await submit(api, member, fareClass="?"))[0][0] == "INVALID"
    assert refused(await submit(api, member, carrier="C"))[0] == ("INVALID", ["input", "flight", "carrier"])
    await loyalty_fly(api, member, "already-1", day=today - timedelta(days=10))  # credited by the airline already
    assert refused(await submit(api, member)) == [("DUPLICATE", ["input", "flight"])]
    assert (await submit(api, member, flightNumber="1502"))["userErrors"] == []
    assert refused(await submit(api, member, flightNumber="1502")) == [("DUPLICATE", ["input", "flight"])]
    assert await MilesClaim.all().count() == 1


async def test_who_may_claim_decide_and_read(api):
    member, other = await enroll(api, "PEK01"), await enroll(api, "PEK01")
    claim = (await submit(api, member, key="claim-1"))["claim"]
    assert (await submit(api, member, key="claim-1"))["claim"]["id"] == claim["id"]  # a retry
    variables = {"input": {"flight": loyalty_flight(loyalty_today(api) - timedelta(days=3))}}
    for role in (AIRLINE, ADMIN, ("office", "PEK01")):
        assert error_codes(await api.gql(SUBMIT, variables, as_=role)) == ["FORBIDDEN"]
    for role in (as_member(member), ("office", "PEK01"), ("partner", "HOTELCO")):
        assert error_codes(await api.gql(DECIDE, {"input": {"claimId": claim["id"], "approve": True}}, as_=role)) == ["FORBIDDEN"]
    assert data(await api.gql(LIST, as_=as_member(other)))["milesClaims"]["totalCount"] == 0
    assert data(await api.gql(LIST, {"s": "PENDING"}, as_=AIRLINE))["milesClaims"]["totalCount"] == 1
    assert data(await api.gql(LIST, {"s": "APPROVED"}, as_=ADMIN))["milesClaims"]["totalCount"] == 0
    assert refused(await decide(api, "999999", True)) == [("NOT_FOUND", ["input", "claimId"])]


async def test_an_approval_and_a_rejection_at_once_leave_one_consistent_outcome(api):
    import asyncio

    member = await enroll(api, "PEK01")
    claim = (await submit(api, member))["claim"]
    await asyncio.gather(decide(api, claim["id"], True), decide(api, claim["id"], False, reason="no record"))
    row = await MilesClaim.get(id=int(claim["id"]))
    flights = await LedgerEntry.filter(member_id=int(member["id"]), kind="FLIGHT").count()
    if row.status.value == "APPROVED":
        assert row.entry_id is not None and flights == 1
    else:
        assert row.status.value == "REJECTED" and row.entry_id is None and flights == 0


async def test_a_refused_posting_puts_the_claim_back_to_pending(api):
    from tests.api.conftest import set_status

    member = await enroll(api, "PEK01")
    claim = (await submit(api, member))["claim"]
    await set_status(api, member, "SUSPENDED")
    assert refused(await decide(api, claim["id"], True)) == [("MEMBER_NOT_ACTIVE", ["input", "cardNumber"])]
    assert (await MilesClaim.get(id=int(claim["id"]))).status.value == "PENDING"
    await set_status(api, member, "ACTIVE")
    assert (await decide(api, claim["id"], True))["claim"]["status"] == "APPROVED"


async def test_an_upgrade_from_a_claim_is_recorded_on_the_day_of_the_approval(api):
    member = await enroll(api, "PEK01")
    today = loyalty_today(api)
    # 14,000 km in J: 42,000 qualifying miles, over SILVER's 40,000.
    claim = (await submit(api, member, day=today - timedelta(days=30), distanceKm=14_000))["claim"]
    await MilesClaim.filter(id=int(claim["id"])).update(submitted_on=today - timedelta(days=20))  # claimed 20 days ago
    assert (await decide(api, claim["id"], True))["claim"]["status"] == "APPROVED"
    row = await Member.get(id=int(member["id"]))
    assert (row.tier.name, row.tier_recorded_on) == ("SILVER", today)


async def test_a_page_of_claims_runs_the_same_statements_whatever_its_size(api):
    from tests.statements import counted_statements

    query = "{ milesClaims { edges { node { id status entry { id kind } } } } }"
    counts = []
    for n in (1, 3):
        member = await enroll(api, "PEK01")
        for k in range(n if not counts else n - 1):
            claim = (await submit(api, member, flightNumber=f"15{k}{n}"))["claim"]
            await decide(api, claim["id"], True)
        with counted_statements() as statements:
            assert len(data(await api.gql(query, as_=ADMIN))["milesClaims"]["edges"]) == n
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
