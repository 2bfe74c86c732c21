"""Loyalty reads: keyset-paged ledger and tier history (newest first), the tierChanges
event log (oldest first by position, scoped like members; AUTH.md), and entries by id."""

from __future__ import annotations

from datetime import date

import pytest

from loyalty import reads
from loyalty.models import LedgerEntry, LedgerEntryKind, TierEvent
from loyalty.rules import load_rules
from loyalty.tiers import override_tier
from members.access import Caller, Role, resolve_caller
from members.addresses import Address
from members.enums import Tier
from members.errors import DomainError, ForbiddenError
from members.models import Member, Office
from members.paging import encode_cursor
from members.services import Enrolment, assign_region, enroll

RULES = load_rules()
D = date.fromisoformat
ADMIN = Caller(Role.ADMIN, "t")
TODAY = D("2026-11-22")
BEIJING = Address(country="CN", province="Beijing", city="Beijing")  # PEK01, branch NCB
TIANJIN = Address(country="CN", province="Tianjin", city="Tianjin")  # TSN01, branch NCB
SHANGHAI = Address(country="CN", province="Shanghai", city="Shanghai")  # PVG01, branch ECB


async def new_member(name: str = "Wang", address: Address = BEIJING) -> Member:
    return await enroll(ADMIN, Enrolment(name, "Fang", address), today=D("2026-01-10"))


async def post(member: Member, kind: LedgerEntryKind, miles: int) -> LedgerEntry:
    """An entry that does not touch the balance (0 redeemable), enough for reads."""
    return await LedgerEntry.create(
        member_id=member.id, kind=kind, activity_date=TODAY, qualifying_miles=miles, source="AIRLINE",
    )


async def change_tier(member: Member, tier: Tier) -> TierEvent:
    _, event = await override_tier(ADMIN, str(member.id), tier, None, "test", rules=RULES, today=TODAY)
    return event


async def walk(fetch, first: int) -> tuple[list, int]:
    """Every item of a paged list, following end cursors; and how many pages it took."""
    items, after, pages = [], None, 0
    while True:
        page = await fetch(first, after)
        pages += 1
        assert len(page.items) == len(page.cursors) <= first
        items.extend(page.items)
        if not page.has_next_page:
            return items, pages
        after = page.end_cursor


# ---- member ledger and tier history ------------------------------------------------


async def test_ledger_pages_walk_every_entry_newest_first(db):
    member = await new_member()
    other = await new_member("Other")
    entries = [await post(member, LedgerEntryKind.FLIGHT, i) for i in range(45)]
    await post(other, LedgerEntryKind.FLIGHT, 1)

    items, pages = await walk(lambda first, after: reads.member_ledger(member.id, first, after, None), 20)

    assert pages == 3
    assert [e.id for e in items] == [e.id for e in reversed(entries)]


async def test_ledger_default_page_is_20_and_first_is_checked(db):
    member = await new_member()
    for i in range(25):
        await post(member, LedgerEntryKind.FLIGHT, i)

    page = await reads.member_ledger(member.id, None, None, None)
    assert (len(page.items), page.has_next_page) == (20, True)
    assert len((await reads.member_ledger(member.id, 100, None, None)).items) == 25
    empty = await reads.member_ledger(member.id, 0, None, None)
    assert (empty.items, empty.has_next_page) == ([], True)
    for first in (101, -1):
        with pytest.raises(DomainError) as error:
            await reads.member_ledger(member.id, first, None, None)
        assert (error.value.code, error.value.field) == ("INVALID", ("first",))


async def test_entries_posted_while_paging_are_neither_skipped_nor_repeated(db):
    member = await new_member()
    old = [await post(member, LedgerEntryKind.FLIGHT, i) for i in range(6)]

    first_page = await reads.member_ledger(member.id, 3, None, None)
    await post(member, LedgerEntryKind.FLIGHT, 99)  # newer than the first page: belongs before it
    second_page = await reads.member_ledger(member.id, 3, first_page.end_cursor, None)

    assert [e.id for e in first_page.items + second_page.items] == [e.id for e in reversed(old)]
    assert second_page.has_next_page is False


async def test_ledger_kinds_filter(db):
    member = await new_member()
    flights = [await post(member, LedgerEntryKind.FLIGHT, i) for i in range(5)]
    partners = [await post(member, LedgerEntryKind.PARTNER, 0) for _ in range(3)]
    expiry = await post(member, LedgerEntryKind.EXPIRY, 0)

    items, _ = await walk(lambda first, after: reads.member_ledger(member.id, first, after, [LedgerEntryKind.FLIGHT]), 2)
    assert [e.id for e in items] == [e.id for e in reversed(flights)]
    page = await reads.member_ledger(member.id, 50, None, [LedgerEntryKind.PARTNER, LedgerEntryKind.EXPIRY])
    assert [e.id for e in page.items] == [expiry.id] + [e.id for e in reversed(partners)]
    assert (await reads.member_ledger(member.id, 50, None, [])).items == []


@pytest.mark.parametrize(
    "cursor",
    ["not a cursor", encode_cursor("tierHistory", [5]), encode_cursor("ledger", ["5"]), encode_cursor("ledger", [1, 2]), ""],
)
async def test_a_foreign_or_broken_cursor_is_invalid(db, cursor):
    member = await new_member()
    await post(member, LedgerEntryKind.FLIGHT, 1)
    if cursor == "":
        # An empty after is treated as no cursor at all.
        assert len((await reads.member_ledger(member.id, 5, cursor, None)).items) == 1
        return
    with pytest.raises(DomainError) as error:
        await reads.member_ledger(member.id, 5, cursor, None)
    assert (error.value.code, error.value.field) == ("INVALID", ("after",))


async def test_tier_history_newest_first(db):
    member = await new_member()
    other = await new_member("Other")
    events = [await change_tier(member, tier) for tier in (Tier.SILVER, Tier.GOLD, Tier.PLATINUM, Tier.GOLD, Tier.STANDARD)]
    await change_tier(other, Tier.GOLD)

    items, pages = await walk(lambda first, after: reads.member_tier_history(member.id, first, after), 2)

    assert pages == 3
    assert [e.id for e in items] == [e.id for e in reversed(events)]
    default = await reads.member_tier_history(member.id, None, None)
    assert len(default.items) == 5 and not default.has_next_page
    with pytest.raises(DomainError):
        await reads.member_tier_history(member.id, 2, encode_cursor("ledger", [events[-1].id]))


# ---- tierChanges: the event log ----------------------------------------------------


async def test_tier_changes_oldest_first_strictly_after_the_cursor(db):
    members = [await new_member(f"M{i}") for i in range(4)]
    events = [await change_tier(m, tier) for m in members for tier in (Tier.SILVER, Tier.GOLD)]

    items, pages = await walk(lambda first, after: reads.tier_changes(ADMIN, after, first, None, None), 3)

    assert pages == 3
    assert [e.id for e in items] == [e.id for e in events]
    # Resume from any edge: everything after it, in order, nothing before or at it.
    middle = events[3]
    cursor = reads.cursor_for(middle)
    assert reads.position_from_cursor(cursor) == middle.id
    page = await reads.tier_changes(ADMIN, cursor, 50, None, None)
    assert [e.id for e in page.items] == [e.id for e in events[4:]]
    assert page.cursors == [reads.cursor_for(e) for e in events[4:]]
    assert (await reads.tier_changes(ADMIN, reads.cursor_for(events[-1]), 50, None, None)).items == []
    # The feed resumes from a bare position.
    start = await reads.tier_changes(ADMIN, encode_cursor("tierChanges", [0]), 50, None, None)
    assert [e.id for e in start.items] == [e.id for e in events]


async def test_tier_changes_default_page_is_50(db):
    member = await new_member()
    for i in range(26):
        await change_tier(member, Tier.GOLD if i % 2 else Tier.SILVER)
    other = await new_member("Other")
    for i in range(26):
        await change_tier(other, Tier.GOLD if i % 2 else Tier.SILVER)

    page = await reads.tier_changes(ADMIN, None, None, None, None)

    assert (len(page.items), page.has_next_page) == (50, True)


@pytest.mark.parametrize("cursor", ["garbage", encode_cursor("ledger", [3]), encode_cursor("tierChanges", [-1])])
async def test_a_bad_tier_changes_cursor_is_invalid(db, cursor):
    with pytest.raises(DomainError) as error:
        await reads.tier_changes(ADMIN, cursor, 10, None, None)
    assert (error.value.code, error.value.field) == ("INVALID", ("after",))
    with pytest.raises(DomainError):
        reads.position_from_cursor(cursor)


@pytest.fixture
async def regions(db):
    """One tier change each for members in PEK01 and TSN01 (branch NCB) and PVG01 (ECB)."""
    beijing = await new_member("Bei", BEIJING)
    tianjin = await new_member("Jin", TIANJIN)
    shanghai = await new_member("Hu", SHANGHAI)
    events = {
        "PEK01": await change_tier(beijing, Tier.GOLD),
        "TSN01": await change_tier(tianjin, Tier.SILVER),
        "PVG01": await change_tier(shanghai, Tier.PLATINUM),
    }
    assert {code: (e.office_code, e.branch_code) for code, e in events.items()} == {
        "PEK01": ("PEK01", "NCB"), "TSN01": ("TSN01", "NCB"), "PVG01": ("PVG01", "ECB"),
    }
    return {"members": {"PEK01": beijing, "TSN01": tianjin, "PVG01": shanghai}, "events": events}


async def visible(caller: Caller, office_code: str | None = None, branch_code: str | None = None) -> set[str]:
    page = await reads.tier_changes(caller, None, 100, office_code, branch_code)
    return {event.office_code for event in page.items}


async def test_tier_changes_scoped_per_role(regions):
    beijing = regions["members"]["PEK01"]
    everything = {"PEK01", "TSN01", "PVG01"}
    assert await visible(ADMIN) == everything
    assert await visible(Caller(Role.PARTNER, "p", "HOTEL")) == everything
    assert await visible(Caller(Role.AIRLINE, "ca")) == everything
    assert await visible(await resolve_caller(Role.BRANCH, "s", "NCB")) == {"PEK01", "TSN01"}
    assert await visible(await resolve_caller(Role.BRANCH, "s", "ECB")) == {"PVG01"}
    assert await visible(await resolve_caller(Role.OFFICE, "s", "TSN01")) == {"TSN01"}
    assert await visible(await resolve_caller(Role.OFFICE, "s", "CAN01")) == set()
    assert await visible(await resolve_caller(Role.MEMBER, str(beijing.id), None)) == {"PEK01"}


async def test_tier_changes_filters_within_scope(regions):
    branch = await resolve_caller(Role.BRANCH, "s", "NCB")
    office = await resolve_caller(Role.OFFICE, "s", "PEK01")
    assert await visible(ADMIN, office_code="PVG01") == {"PVG01"}
    assert await visible(ADMIN, branch_code="NCB") == {"PEK01", "TSN01"}
    assert await visible(branch, office_code="TSN01") == {"TSN01"}
    assert await visible(branch, branch_code="NCB") == {"PEK01", "TSN01"}
    assert await visible(office, office_code="PEK01") == {"PEK01"}


@pytest.mark.parametrize(
    ("role", "scope", "office_code", "branch_code"),
    [
        (Role.OFFICE, "PEK01", None, "NCB"),  # an office filtering on its own branch: wider than its scope
        (Role.OFFICE, "PEK01", "TSN01", None),
        (Role.BRANCH, "NCB", "PVG01", None),
        (Role.BRANCH, "NCB", None, "ECB"),
        (Role.MEMBER, None, "PEK01", None),
        (Role.PARTNER, "HOTEL", None, "NCB"),
        (Role.AIRLINE, None, "PEK01", None),
    ],
)
async def test_tier_changes_filter_outside_scope_is_forbidden(regions, role, scope, office_code, branch_code):
    if role is Role.MEMBER:
        caller = Caller(role, str(regions["members"]["PEK01"].id), member_id=regions["members"]["PEK01"].id)
    else:
        caller = await resolve_caller(role, "s", scope) if role in (Role.OFFICE, Role.BRANCH) else Caller(role, "s", scope)
    with pytest.raises(ForbiddenError):
        await reads.tier_changes(caller, None, 10, office_code, branch_code)


async def test_unknown_codes_are_invalid_for_an_admin(regions):
    for office_code, branch_code in (("NOPE1", None), (None, "NOPE")):
        with pytest.raises(DomainError) as error:
            await reads.tier_changes(ADMIN, None, 10, office_code, branch_code)
        assert error.value.code == "INVALID"


async def test_a_blocked_caller_is_forbidden(regions):
    with pytest.raises(ForbiddenError):
        await reads.tier_changes(Caller(Role.PARTNER, "p", "GONE", blocked=True), None, 10, None, None)


async def test_events_keep_the_region_of_their_time(regions):
    beijing = regions["members"]["PEK01"]
    await assign_region(ADMIN, str(beijing.id), "PVG01", "moved to Shanghai")
    moved = await change_tier(await Member.get(id=beijing.id), Tier.PLATINUM)
    assert (moved.office_code, moved.branch_code) == ("PVG01", "ECB")
    pvg = await Office.get(code="PVG01")
    assert moved.office_id == pvg.id

    office_pek = await resolve_caller(Role.OFFICE, "s", "PEK01")
    office_pvg = await resolve_caller(Role.OFFICE, "s", "PVG01")
    assert [e.id for e in (await reads.tier_changes(office_pek, None, 10, None, None)).items] == [regions["events"]["PEK01"].id]
    assert [e.id for e in (await reads.tier_changes(office_pvg, None, 10, None, None)).items] == [
        regions["events"]["PVG01"].id, moved.id,
    ]


# ---- DataLoader batch --------------------------------------------------------------


async def test_entries_by_ids_keeps_order_and_gaps(db):
    member = await new_member()
    a = await post(member, LedgerEntryKind.FLIGHT, 1)
    b = await post(member, LedgerEntryKind.PARTNER, 2)

    result = await reads.entries_by_ids([b.id, 987654321, a.id, b.id])

    assert [e.id if e else None for e in result] == [b.id, None, a.id, b.id]
    assert await reads.entries_by_ids([]) == []
