"""The demo data set (`loyalty demo`, api.demo.build_demo): reproducible members over
every office and tier, with ledgers that the programme's own jobs and reads agree with.

300 members on a fixed day (150 for the tests of reruns and ids): every one of the 142
offices gets at least one member (members 0..141 take one office each)."""

from __future__ import annotations

from datetime import date

import jwt
import pytest
from tortoise import connections

from api.auth import decode_token
from api.db import SQLITE_CACHE_KIB
from api.demo import DEMO_CACHE_KIB, build_demo, demo_card_number
from care.models import CareCall, Feedback, FeedbackChange
from loyalty.jobs import expire_miles, miles_expiring_soon, reconcile
from loyalty.ledger import FlightDetails, flight_accrue
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind, TierChangeReason, TierEvent
from loyalty.rules import load_rules
from loyalty.tiers import at_risk_member_ids, review_tiers, tier_status
from members.access import Caller, Role
from members.addresses import Address, office_for_address
from members.cards import is_valid_card_number
from members.enums import Tier
from members.models import Member, Office, Partner, RegionAssignment
from members.regions import tier_counts
from members.services import Enrolment, enroll, member_email, member_phone

RULES = load_rules()
TODAY = date(2026, 11, 22)
N = 300
SMALL = 150  # still every office, for the tests of reruns and ids


async def build(settings, members: int = N, today: date = TODAY) -> tuple[dict, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    result = await build_demo(settings, members, rules=RULES, today=today, progress=lambda d, t: calls.append((d, t)))
    return result, calls


async def table_counts() -> dict[str, int]:
    return {
        model.__name__: await model.all().count()
        for model in (Member, RegionAssignment, LedgerEntry, CreditLot, TierEvent, Partner)
    }


async def people() -> list[tuple]:
    """Who the members are (not what they did): card, names, contacts (their keyed hashes: the
    sealed values differ by their random nonces), address, office."""
    return await Member.all().order_by("card_number").values_list(
        "card_number", "family_name", "given_name", "birth_date", "phone_hash", "email_hash",
        "address_country", "address_province", "address_city", "address_line", "address_postal_code", "office_id",
    )


async def check_summary_progress_and_one_token_per_role(settings, result, calls):
    assert calls[0] == (0, N) and calls[-1] == (N, N)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    lines = result["summary"].splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("demo data: 300 members (300 created now) in 142 of 142 offices: STANDARD ")
    assert "at risk of downgrade" in lines[1] and "expiring within 90 days" in lines[1]
    assert "http://127.0.0.1:8000/graphql" in lines[2]
    assert "http://127.0.0.1:8000/board" in lines[3]
    assert lines[4].startswith("  care: ") and "lifecycle stages NEW" in lines[4]

    tokens = result["tokens"]
    assert list(tokens) == ["member", "partner", "office", "branch", "airline", "admin"]
    claims = {role: decode_token(token, settings) for role, token in tokens.items()}
    assert all(claims[role].role is Role(role) for role in tokens)
    member = await Member.get(id=int(claims["member"].subject))
    assert member.tier is Tier.GOLD and member.card_number in {demo_card_number(i) for i in range(N)}
    assert claims["partner"].scope == "HOTEL1"
    assert await Partner.filter(code="HOTEL1", active=True).exists()
    office = await Office.get(code=claims["office"].scope).select_related("branch")
    assert claims["branch"].scope == office.branch.code
    vips = {
        office_id: sum(n for tier, n in counts.items() if tier.is_vip)
        for office_id, counts in (await tier_counts(Member.all(), "office_id")).items()
    }
    assert vips[office.id] == max(vips.values())
    for token in tokens.values():
        payload = jwt.decode(token, options={"verify_signature": False})
        assert payload["exp"] - payload["iat"] == 24 * 3600


async def check_every_office_has_members_whose_address_maps_to_it(settings, result, calls):
    members = await Member.all()
    assert len(members) == N
    assert len({m.office_id for m in members}) == await Office.all().count() == 142
    for member in members:
        address = Address(country=member.address_country, city=member.address_city, province=member.address_province)
        assert (await office_for_address(address)).id == member.office_id, member.card_number
    offices = {o.id: o.branch_id for o in await Office.all()}
    assert all(m.branch_id == offices[m.office_id] for m in members)
    assert await RegionAssignment.filter(reason="enrolment").count() == N


async def check_people_are_varied_and_unique(settings, result, calls):
    members = await Member.all()
    assert len({member_phone(m) for m in members}) == len({member_email(m) for m in members}) == N
    chinese = [m for m in members if any("\u4e00" <= c <= "\u9fff" for c in m.family_name)]
    assert 100 <= len(chinese) <= 250  # most mainland members write their name in characters
    assert len({m.birth_date.month for m in members}) == 12
    assert len({m.birth_date.timetuple().tm_yday // 30 for m in members}) >= 12


async def check_every_tier_in_roughly_the_programmes_shares(settings, result, calls):
    counts = (await tier_counts(Member.all()))[None]
    assert sum(counts.values()) == N
    assert 0.60 * N <= counts[Tier.STANDARD] <= 0.80 * N
    assert 0.10 * N <= counts[Tier.SILVER] <= 0.26 * N
    assert 0.04 * N <= counts[Tier.GOLD] <= 0.15 * N
    assert 1 <= counts[Tier.PLATINUM] <= 0.08 * N


async def check_ledgers_reconcile_and_the_daily_jobs_find_nothing_due(settings, result, calls):
    assert await reconcile() == (N, [])
    review = await review_tiers(TODAY, rules=RULES)
    assert (review.examined, review.events) == (0, 0)
    expiry = await expire_miles(TODAY)
    assert (expiry.members, expiry.miles) == (0, 0)
    # Every credit has its lot; the ledger holds every kind a member's history has.
    credits = await LedgerEntry.filter(redeemable_miles__gt=0).count()
    assert await CreditLot.all().count() == credits > 1000
    kinds = set(await LedgerEntry.all().distinct().values_list("kind", flat=True))
    assert {LedgerEntryKind(k) for k in kinds} == {
        LedgerEntryKind.FLIGHT, LedgerEntryKind.TIER_BONUS, LedgerEntryKind.PARTNER,
        LedgerEntryKind.REDEMPTION, LedgerEntryKind.EXPIRY,
    }
    assert not await Member.filter(redeemable_miles__lt=0).exists()


async def check_member_rows_agree_with_the_tier_event_log(settings, result, calls):
    events = await TierEvent.all().order_by("id")
    assert len(events) > 100
    # Positions increase with time: the log replays in the order things happened.
    assert [e.effective_at for e in events] == sorted(e.effective_at for e in events)
    by_member: dict[int, list[TierEvent]] = {}
    for event in events:
        by_member.setdefault(event.member_id, []).append(event)
    reasons = {e.reason for e in events}
    assert {TierChangeReason.UPGRADE, TierChangeReason.RETENTION, TierChangeReason.DOWNGRADE} <= reasons
    flights = set(await LedgerEntry.filter(kind=LedgerEntryKind.FLIGHT).values_list("id", flat=True))
    for member in await Member.all():
        history = by_member.get(member.id, [])
        tier = Tier.STANDARD
        for event in history:
            assert event.from_tier is tier, member.card_number
            assert event.office_id == member.office_id and event.card_number == member.card_number
            assert (event.cause_id in flights) is (event.reason is TierChangeReason.UPGRADE)
            tier = event.to_tier
        assert member.tier is tier
        if history:
            assert (member.tier_since, member.tier_valid_until) == (history[-1].since, history[-1].valid_until)
        assert (member.tier_valid_until is None) is (member.tier is Tier.STANDARD)
        assert member.tier is Tier.STANDARD or member.tier_valid_until >= TODAY


async def check_some_members_are_at_risk_and_some_have_miles_expiring_soon(settings, result, calls):
    at_risk = await at_risk_member_ids(Member.all(), rules=RULES, today=TODAY)
    assert 10 <= len(at_risk) <= 0.2 * N
    status = await tier_status(await Member.get(id=min(at_risk)), rules=RULES, today=TODAY)
    assert status.at_risk_of_downgrade is True and status.tier is not Tier.STANDARD
    expiring = [m.id for m in await Member.all() if await miles_expiring_soon(m.id, rules=RULES, today=TODAY) > 0]
    assert 30 <= len(expiring) <= 0.7 * N


CHECKS = [
    check_summary_progress_and_one_token_per_role,
    check_every_office_has_members_whose_address_maps_to_it,
    check_people_are_varied_and_unique,
    check_every_tier_in_roughly_the_programmes_shares,
    check_ledgers_reconcile_and_the_daily_jobs_find_nothing_due,
    check_member_rows_agree_with_the_tier_event_log,
    check_some_members_are_at_risk_and_some_have_miles_expiring_soon,
]


async def test_a_demo_of_300_members(db, subtests):
    """One build, checked from every side (each check is reported on its own)."""
    result, calls = await build(db)
    for check in CHECKS:
        with subtests.test(check.__name__.removeprefix("check_")):
            await check(db, result, calls)


async def test_a_second_run_adds_nothing_and_a_larger_one_tops_up(db):
    await build(db, SMALL)
    before = await table_counts()
    first = await Member.all().order_by("id").values_list("id", "card_number", "tier", "redeemable_miles")

    result, calls = await build(db, SMALL)

    assert await table_counts() == before
    assert calls == [(SMALL, SMALL)]
    assert "(0 created now)" in result["summary"]

    await build(db, SMALL + 20)

    assert await Member.all().count() == SMALL + 20
    assert await Member.all().order_by("id").limit(SMALL).values_list("id", "card_number", "tier", "redeemable_miles") == first
    assert await reconcile() == (SMALL + 20, [])


async def test_same_seed_same_people_whatever_the_day(db):
    await build(db, SMALL)
    first = await people()
    cards = [demo_card_number(i) for i in range(SMALL)]
    assert await Member.all().order_by("id").values_list("card_number", flat=True) == cards
    assert all(is_valid_card_number(card) for card in cards)
    assert len({demo_card_number(i) for i in range(100_000)}) == 100_000

    for model in (FeedbackChange, Feedback, CareCall, TierEvent, CreditLot):
        await model.all().delete()
    await LedgerEntry.filter(bonus_for_id__not_isnull=True).delete()
    await LedgerEntry.all().delete()
    await RegionAssignment.all().delete()
    await Member.all().delete()
    await build(db, SMALL, today=date(2027, 4, 30))

    assert await people() == first


async def test_the_services_carry_on_after_the_demo(db):
    """Ids given by the demo do not collide with later enrolments and postings
    (PostgreSQL: the sequences were moved past them)."""
    await build(db, SMALL)
    top_member = await Member.all().order_by("-id").first()
    top_entry = await LedgerEntry.all().order_by("-id").first()
    admin = Caller(Role.ADMIN, "t")

    member = await enroll(admin, Enrolment("Demo", "After", Address(country="CN", city="Beijing")), today=TODAY)
    posted = await flight_accrue(
        Caller(Role.AIRLINE, "t"), top_member.card_number,
        FlightDetails("CA", "1501", TODAY, "PEK", "SHA", 1088, "Y"), "after-demo-1", rules=RULES, today=TODAY,
    )

    assert member.id > top_member.id and posted.entry.id > top_entry.id
    assert await reconcile() == (SMALL + 1, [])


@pytest.mark.parametrize("members", [0, 5])
async def test_small_runs_work(db, members):
    result, calls = await build(db, members)

    assert await Member.all().count() == members
    assert calls[-1] == (members, members)
    assert ("member" in result["tokens"]) is (members > 0)
    assert await reconcile() == (members, [])


async def test_the_build_gives_the_connection_its_page_cache_back(db):
    # The build raises SQLite's page cache for itself; PRAGMA cache_size holds for the
    # connection, which outlives it (a server's, this session's): the connection's own
    # setting (api.db's default, or DATABASE_URL's) comes back, and a larger one is kept.
    connection = connections.get("default")
    if connection.capabilities.dialect != "sqlite":
        return  # PostgreSQL: the server's settings

    async def cache_size() -> int:
        _, rows = await connection.execute_query("PRAGMA cache_size")
        return list(rows[0])[0]

    assert await cache_size() == -SQLITE_CACHE_KIB
    await build(db, 5)
    assert await cache_size() == -SQLITE_CACHE_KIB
    larger = -2 * DEMO_CACHE_KIB
    await connection.execute_query(f"PRAGMA cache_size = {larger}")
    try:
        await build(db, 10)
        assert await cache_size() == larger
    finally:
        await connection.execute_query(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
