"""Group commit of concurrent postings (members.group_commit, issue 12): the postings of
concurrent requests commit in one transaction, each in its own savepoint, with every
guarantee of one transaction per request. Commits are counted at the driver (each
transaction's COMMIT), never timed. Group commit is switched on for these tests, so they
run it on PostgreSQL too."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from tortoise.exceptions import OperationalError

from loyalty.jobs import reconcile
from loyalty.ledger import FlightDetails, flight_accrue, partner_accrue, redeem
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind, TierChangeReason, TierEvent
from members.enums import MemberStatus, Tier
from members.errors import DomainError
from members.models import Member
from tests.loyalty.test_posting_concurrency import (
    ADMIN, AIRLINE, FLIGHT, RULES, TODAY, assert_invariant, codes, new_member,
)
from tests.transactions import batched, commits_counted, failing_commits, group_commit_on  # noqa: F401 (fixtures)

LONG_HAUL = FlightDetails("CA", "981", date(2026, 3, 15), "PEK", "JFK", 5000, "B")  # 5,000 miles, 1 segment

pytestmark = pytest.mark.usefixtures("group_commit_on")


def fly(member: Member, ref: str, flight: FlightDetails = FLIGHT):
    return flight_accrue(AIRLINE, member.card_number, flight, ref, rules=RULES, today=TODAY)


async def test_20_concurrent_accruals_commit_in_one_transaction(db, commits_counted):
    members = [await new_member() for _ in range(20)]
    commits_counted.clear()
    results = await asyncio.gather(*(fly(member, f"F{n}") for n, member in enumerate(members)))
    assert len(commits_counted) == 1  # 20 postings, 1 COMMIT (one transaction per request: 20)
    assert [r.member.redeemable_miles for r in results] == [3000] * 20
    assert await LedgerEntry.filter(kind=LedgerEntryKind.FLIGHT).count() == 20
    assert await CreditLot.all().count() == 20
    for member in members:
        await assert_invariant(member)
    assert await reconcile() == (20, [])


async def test_a_flight_in_a_batch_is_one_trip_to_the_sqlite_drivers_thread(db, commits_counted, monkeypatch):
    # members.driver: the posting's savepoint and its three statements in one call on
    # aiosqlite's thread; the batch adds its BEGIN (Tortoise: two calls) and its COMMIT.
    import aiosqlite

    from tests.statements import is_postgres

    if is_postgres():
        pytest.skip("aiosqlite's thread: SQLite only")
    members = [await new_member() for _ in range(20)]
    calls = []
    real = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        calls.append(fn)
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    commits_counted.clear()
    results = await batched(*(fly(member, f"T{n}") for n, member in enumerate(members)), monkeypatch=monkeypatch)
    assert len(commits_counted) == 1
    assert [r.member.redeemable_miles for r in results] == [3000] * 20
    assert len(calls) <= 20 + 3, len(calls)
    assert await reconcile() == (20, [])


async def test_a_bad_posting_in_a_batch_rolls_back_only_itself(db, commits_counted, monkeypatch):
    good, suspended, poor = await new_member(), await new_member(), await new_member()
    await Member.filter(id=suspended.id).update(status=MemberStatus.SUSPENDED)
    await fly(poor, "P0")  # 3,000 miles
    commits_counted.clear()
    results = await batched(
        fly(good, "G1"),
        fly(suspended, "S1"),  # MEMBER_NOT_ACTIVE: its UPDATE matched nothing
        flight_accrue(AIRLINE, "CA000000000", FLIGHT, "X1", rules=RULES, today=TODAY),  # valid format, no member
        redeem(ADMIN, str(poor.id), 3001, "too much", "k-1", rules=RULES, today=TODAY),  # INSUFFICIENT_MILES
        redeem(ADMIN, str(poor.id), 1000, "lounge", "k-2", rules=RULES, today=TODAY),
        fly(good, "P0"),  # P0 is another member's flight: IDEMPOTENCY_CONFLICT after the unique index refused it
        fly(good, "G2"),
        monkeypatch=monkeypatch,
    )
    assert len(commits_counted) == 1
    assert codes(results) == ["IDEMPOTENCY_CONFLICT", "INSUFFICIENT_MILES", "MEMBER_NOT_ACTIVE", "NOT_FOUND"]
    assert [r.member.redeemable_miles for r in (results[0], results[6])] == [3000, 6000]
    assert results[4].member.redeemable_miles == 2000
    assert (await Member.get(id=good.id)).redeemable_miles == 6000
    assert (await Member.get(id=suspended.id)).redeemable_miles == 0
    assert (await Member.get(id=poor.id)).redeemable_miles == 2000
    assert await LedgerEntry.filter(member_id=suspended.id).count() == 0
    assert await LedgerEntry.filter(member_id=poor.id, kind=LedgerEntryKind.REDEMPTION).count() == 1
    for member in (good, suspended, poor):
        await assert_invariant(member)
    assert await reconcile() == (3, [])


async def test_a_replay_within_one_batch_posts_once(db, commits_counted, monkeypatch):
    member, other = await new_member(), await new_member()
    commits_counted.clear()
    results = await batched(
        *(fly(member, "SAME") for _ in range(5)),
        flight_accrue(AIRLINE, other.card_number, FLIGHT, "SAME", rules=RULES, today=TODAY),  # other content
        *(redeem(ADMIN, str(member.id), 500, "bag", "one-key", rules=RULES, today=TODAY) for _ in range(3)),
        monkeypatch=monkeypatch,
    )
    assert len(commits_counted) == 1
    flights, conflict, redemptions = results[:5], results[5], results[6:]
    assert isinstance(conflict, DomainError) and conflict.code == "IDEMPOTENCY_CONFLICT"
    assert len({r.entry.id for r in flights}) == 1 and [r.replayed for r in flights] == [False, True, True, True, True]
    assert len({r.entry.id for r in redemptions}) == 1
    assert (await Member.get(id=member.id)).redeemable_miles == 2500  # 3,000 once, 500 once
    assert (await Member.get(id=other.id)).redeemable_miles == 0
    await assert_invariant(member)
    assert await reconcile() == (2, [])


async def test_a_replay_across_batches_posts_once(db, commits_counted):
    member = await new_member()
    commits_counted.clear()
    first = await asyncio.gather(fly(member, "A"), fly(member, "B"))
    again = await asyncio.gather(fly(member, "A"), fly(member, "B"), fly(member, "C"))
    assert len(commits_counted) == 2
    assert [r.entry.id for r in again[:2]] == [r.entry.id for r in first]
    assert [r.replayed for r in again] == [True, True, False]
    assert (await Member.get(id=member.id)).redeemable_miles == 9000
    assert await LedgerEntry.filter(member_id=member.id).count() == 3
    await assert_invariant(member)


async def test_an_upgrade_in_a_batch_writes_its_event_with_its_flight(db, commits_counted):
    member = await new_member()
    commits_counted.clear()
    results = await asyncio.gather(*(fly(member, f"L{n}", LONG_HAUL) for n in range(10)))
    assert len(commits_counted) == 1
    # The 8th reaches 40,000 and upgrades; the two after it earn SILVER's 25 % (1,250).
    (event,) = await TierEvent.filter(member_id=member.id)
    assert (event.from_tier, event.to_tier, event.reason) == (Tier.STANDARD, Tier.SILVER, TierChangeReason.UPGRADE)
    assert [r.tier_event.id if r.tier_event else None for r in results] == [None] * 7 + [event.id, None, None]
    assert event.cause_id == results[7].entry.id
    assert [r.member.tier for r in results] == [Tier.STANDARD] * 7 + [Tier.SILVER] * 3
    assert (await Member.get(id=member.id)).redeemable_miles == 52_500
    await assert_invariant(member)
    assert await reconcile() == (1, [])


async def test_a_batch_whose_commit_fails_runs_each_posting_again_alone(db, commits_counted, failing_commits):
    members = [await new_member() for _ in range(6)]
    failing_commits.append(1)  # the batch's COMMIT fails: nothing of it is committed
    commits_counted.clear()
    results = await asyncio.gather(*(fly(member, f"F{n}") for n, member in enumerate(members)),
                                   fly(members[0], "L1", LONG_HAUL))
    assert len(commits_counted) == 1 + 7  # the failed batch's, then one transaction each
    assert [r.replayed for r in results] == [False] * 7
    assert await LedgerEntry.filter(kind=LedgerEntryKind.FLIGHT).count() == 7
    assert (await Member.get(id=members[0].id)).redeemable_miles == 8000
    assert await reconcile() == (6, [])


async def test_no_request_hears_of_success_when_nothing_commits(db, commits_counted, failing_commits, monkeypatch):
    members = [await new_member() for _ in range(4)]
    commits_counted.clear()
    failing_commits.extend([1] * 5)  # the batch's COMMIT and each posting's own
    results = await batched(*(fly(member, f"F{n}", LONG_HAUL) for n, member in enumerate(members)),
                            redeem(ADMIN, str(members[0].id), 1, "pen", "k", rules=RULES, today=TODAY),
                            monkeypatch=monkeypatch)
    assert [type(r) for r in results[:4]] == [OperationalError] * 4
    assert isinstance(results[4], DomainError) and results[4].code == "INSUFFICIENT_MILES"  # alone, its own answer
    assert len(commits_counted) == 5  # the redemption's refusal rolled back, with no COMMIT
    assert await LedgerEntry.all().count() == 0
    assert await TierEvent.all().count() == 0
    assert [m.redeemable_miles for m in await Member.all()] == [0] * 4
    assert await reconcile() == (4, [])


async def test_partner_credits_share_the_batch(db, commits_counted, monkeypatch):
    from members.access import Caller, Role

    members = [await new_member() for _ in range(4)]
    partner = Caller(Role.ADMIN, "ops")
    commits_counted.clear()
    results = await batched(*(
        partner_accrue(partner, m.card_number, "Wang", 700, date(2026, 3, 10), None, f"P{n}", rules=RULES, today=TODAY)
        for n, m in enumerate(members)
    ), fly(members[0], "F0"), monkeypatch=monkeypatch)
    assert len(commits_counted) == 1
    # The flight queues first (a partner credit reads its member and the partner's 24 hours first).
    assert [r.member.redeemable_miles for r in results] == [3700, 700, 700, 700, 3000]
    assert await reconcile() == (4, [])
