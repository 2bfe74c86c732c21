"""The office x tier rollup (members.models.OfficeTierCount) that tierCounts reads
stays equal to a count of the member table through enrolment, tier changes and office
moves (by hand and by address), is not touched by status changes, and answers any
scope without reading the member table."""

from __future__ import annotations

from datetime import date

from tortoise.transactions import in_transaction

from loyalty.rules import load_rules
from loyalty.tiers import override_tier
from members.access import Caller, Role, restrict_offices
from members.addresses import Address
from members.enums import MemberStatus, Tier
from members.models import Member, Office, OfficeTierCount
from members.regions import office_tier_counts, rebuild_tier_counts, tier_counts
from members.services import Enrolment, MemberChanges, assign_region, enroll, set_status, update
from tests.statements import captured

ADMIN = Caller(Role.ADMIN, "t")
TODAY = date(2026, 3, 1)
BEIJING = Address(country="CN", province="Beijing", city="Beijing")
TIANJIN = Address(country="CN", province="Tianjin", city="Tianjin")


async def rollup() -> dict[int, dict[Tier, int]]:
    counts: dict[int, dict[Tier, int]] = {}
    for row in await OfficeTierCount.filter(members__gt=0):
        counts.setdefault(row.office_id, {tier: 0 for tier in Tier})[Tier(row.tier)] = row.members
    return counts


async def assert_rollup_is_the_member_count() -> None:
    assert await rollup() == await tier_counts(Member.all(), group_by="office_id")


async def test_rollup_follows_enrolment_tier_changes_and_office_moves(db):
    pek = await Office.get(code="PEK01")
    tsn = await Office.get(code="TSN01")
    assert await OfficeTierCount.all().count() == 142 * len(Tier)  # made with the offices
    members = [await enroll(ADMIN, Enrolment(name, "Fang", BEIJING), today=TODAY) for name in ("Wang", "Li", "Zhao")]
    await enroll(ADMIN, Enrolment("Chen", "Jie", TIANJIN), today=TODAY)
    assert (await rollup())[pek.id][Tier.STANDARD] == 3
    await assert_rollup_is_the_member_count()

    await override_tier(ADMIN, str(members[0].id), Tier.GOLD, None, "welcome", rules=load_rules(), today=TODAY)
    await override_tier(ADMIN, str(members[1].id), Tier.PLATINUM, None, "welcome", rules=load_rules(), today=TODAY)
    await override_tier(ADMIN, str(members[1].id), Tier.SILVER, None, "correction", rules=load_rules(), today=TODAY)
    assert (await rollup())[pek.id] == {Tier.STANDARD: 1, Tier.SILVER: 1, Tier.GOLD: 1, Tier.PLATINUM: 0}
    await assert_rollup_is_the_member_count()

    await assign_region(ADMIN, str(members[0].id), "TSN01", "moved to Tianjin")
    await assign_region(ADMIN, str(members[0].id), "TSN01", "again: no move")
    await update(ADMIN, str(members[1].id), MemberChanges(address=TIANJIN))
    assert (await rollup())[tsn.id] == {Tier.STANDARD: 1, Tier.SILVER: 1, Tier.GOLD: 1, Tier.PLATINUM: 0}
    assert (await rollup())[pek.id] == {Tier.STANDARD: 1, Tier.SILVER: 0, Tier.GOLD: 0, Tier.PLATINUM: 0}
    await assert_rollup_is_the_member_count()

    before = await rollup()
    await set_status(ADMIN, str(members[2].id), MemberStatus.CLOSED, "left the programme")
    assert await rollup() == before  # tierCounts counts members whatever their status


async def test_any_scope_is_read_from_the_rollup_alone(db):
    for name in ("Wang", "Li"):
        await enroll(ADMIN, Enrolment(name, "Fang", BEIJING), today=TODAY)
    await enroll(ADMIN, Enrolment("Chen", "Jie", TIANJIN), today=TODAY)
    pek = await Office.get(code="PEK01")
    office = Caller(Role.OFFICE, "t", "PEK01", office_id=pek.id, branch_id=pek.branch_id)
    branch = Caller(Role.BRANCH, "t", "NCB", branch_id=pek.branch_id)
    with captured() as statements:
        assert (await office_tier_counts(restrict_offices(Office.all(), ADMIN)))[None][Tier.STANDARD] == 3
        assert (await office_tier_counts(restrict_offices(Office.all(), branch)))[None][Tier.STANDARD] == 3
        assert (await office_tier_counts(restrict_offices(Office.all(), office)))[None][Tier.STANDARD] == 2
    assert statements.selects("member") == []
    assert len(statements.selects("office_tier_count")) == 3


async def test_rebuild_counts_members_written_beside_the_services(db):
    member = await enroll(ADMIN, Enrolment("Wang", "Fang", BEIJING), today=TODAY)
    await Member.filter(id=member.id).update(tier=Tier.GOLD)  # as a bulk writer would
    async with in_transaction() as connection:
        await rebuild_tier_counts(connection)
    await assert_rollup_is_the_member_count()
