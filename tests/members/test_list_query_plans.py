"""Every member list reads an index in its own order, in every scope, with and without
the tiers filter, on the first page and after a cursor: no list sorts or scans the
whole member table, so a page costs the same at 10,000 and at 1,000,000 members.

The statements list_members runs are captured and the database is asked for their
plans (tests/statements.py)."""

from __future__ import annotations

from datetime import date

import pytest
from tortoise.transactions import in_transaction

from members.access import Caller, Role
from members.enums import LifecycleStage, Tier
from members.models import Member, Office
from members.regions import rebuild_tier_counts
from members.queries import MemberFilter, MemberOrder, list_members
from tests.statements import captured, plan, plan_problems

VIP = (Tier.GOLD, Tier.PLATINUM)
# family names in an order that differs from id order, tiers mixed
PEOPLE = [("Zhao", Tier.PLATINUM), ("Li", Tier.GOLD), ("Wang", Tier.STANDARD), ("Chen", Tier.SILVER),
          ("Liu", Tier.PLATINUM), ("Yang", Tier.GOLD), ("Huang", Tier.STANDARD), ("Zhou", Tier.SILVER)]


async def _seed() -> Office:
    office = await Office.get(code="PEK01")
    await Member.bulk_create([
        Member(card_number=f"CA{n:09d}", family_name=family, given_name=f"G{n}", address_country="CN",
               address_city="Beijing", office_id=office.id, branch_id=office.branch_id, tier=tier,
               tier_since=date(2026, 1, 1))
        for n, (family, tier) in enumerate(PEOPLE * 2)
    ])
    return office


def _callers(office: Office) -> dict[str, tuple[Caller, MemberFilter]]:
    return {
        "admin": (Caller(Role.ADMIN, "t"), MemberFilter()),
        "admin, office filter": (Caller(Role.ADMIN, "t"), MemberFilter(office_code="PEK01")),
        "branch": (Caller(Role.BRANCH, "t", "NCB", branch_id=office.branch_id), MemberFilter()),
        "office": (Caller(Role.OFFICE, "t", "PEK01", office_id=office.id, branch_id=office.branch_id), MemberFilter()),
    }


@pytest.mark.parametrize("order", list(MemberOrder))
@pytest.mark.parametrize("tiers", [None, VIP], ids=["all tiers", "GOLD+PLATINUM"])
async def test_every_list_variant_reads_an_index_in_its_order(db, order, tiers):
    office = await _seed()
    checked = 0
    for scope, (caller, base) in _callers(office).items():
        member_filter = MemberFilter(office_code=base.office_code, tiers=tiers)
        first = await list_members(caller, member_filter, order, first=3)
        assert first.has_next_page, scope
        with captured() as statements:
            following = await list_members(caller, member_filter, order, first=3, after=first.end_cursor)
            first_again = await list_members(caller, member_filter, order, first=3)
        assert [m.id for m in first_again.items] == [m.id for m in first.items]
        assert not set(m.id for m in following.items) & set(m.id for m in first.items)
        selects = statements.selects("member")
        # one read per tier at most, and for the orders other than by tier the page's load by id
        assert 2 <= len(selects) <= 2 * (len(Tier) + 1), (scope, [s.sql for s in selects])
        for statement in selects:
            lines = await plan(statement)
            assert plan_problems(lines, "member") == [], (scope, statement.sql, lines)
            checked += 1
    assert checked >= 8


async def test_a_page_without_total_count_runs_no_count(db):
    office = await _seed()
    async with in_transaction() as connection:
        await rebuild_tier_counts(connection)  # the seed wrote members beside the services
    caller = Caller(Role.OFFICE, "t", "PEK01", office_id=office.id, branch_id=office.branch_id)
    with captured() as statements:
        page = await list_members(caller, MemberFilter(tiers=VIP), MemberOrder.TIER_DESC_NAME, first=2)
    assert [s for s in statements.statements if "COUNT(" in s.sql.upper()] == []
    assert [m.family_name for m in page.items] == ["Liu", "Liu"]  # PLATINUM first, by name
    with captured() as statements:
        assert await page.total_count() == 8
        assert await page.total_count() == 8  # counted once
    # Narrowed by region and tiers only: one read of the office x tier rollup, no COUNT.
    assert [s for s in statements.statements if "COUNT(" in s.sql.upper()] == []
    assert len(statements.selects("office_tier_count")) == 1
    # Another filter: COUNT over the members, once.
    page = await list_members(caller, MemberFilter(tiers=VIP, lifecycle_stages=[LifecycleStage.NEW]), first=2)
    with captured() as statements:
        assert await page.total_count() == 8
    assert len([s for s in statements.statements if "COUNT(" in s.sql.upper()]) == 1


async def test_a_cursor_among_many_namesakes_seeks_to_the_key(db):
    """After a cursor, the key's tier is read range by range (same family and given
    name with a higher id, same family with a later given name, a later family), each
    an equality on a prefix of the key and one '>' that the database seeks to, rather
    than reading every namesake before the key and filtering it out. 30 Wangs in 3
    given names: paging 4 at a time returns them all once, in (family, given, id) order,
    each statement at most its page from the index."""
    office = await Office.get(code="PEK01")
    await Member.bulk_create([
        Member(card_number=f"CA{n:09d}", family_name="Wang" if n < 30 else "Zhu", given_name=f"G{n % 3}",
               address_country="CN", address_city="Beijing", office_id=office.id, branch_id=office.branch_id,
               tier=Tier.GOLD, tier_since=date(2026, 1, 1))
        for n in range(34)
    ])
    expected = [m.id for m in sorted(await Member.filter(tier=Tier.GOLD), key=lambda m: (m.family_name, m.given_name, m.id))]
    caller = Caller(Role.ADMIN, "t")
    seen, after = [], None
    while True:
        with captured() as statements:
            page = await list_members(caller, MemberFilter(tiers=(Tier.GOLD,)), MemberOrder.TIER_DESC_NAME, first=4, after=after)
        seen += [m.id for m in page.items]
        for statement in statements.selects("member"):
            lines = await plan(statement)
            assert plan_problems(lines, "member") == [], (statement.sql, lines)
            assert " OR " not in statement.sql, statement.sql  # a range the index seeks to, nothing left to filter
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert seen == expected and len(seen) == 34
