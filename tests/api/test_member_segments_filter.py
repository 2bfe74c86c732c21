"""Member.lifecycleStage / valueSegment / segmentsAsOf and the members filter on them."""

from __future__ import annotations

from datetime import date

from care.segments import refresh_segments
from members.enums import LifecycleStage, Tier, ValueSegment
from members.models import Member
from tests.api.conftest import data, error_codes
from tests.care.history import RULES, credit, fly, member_at

LIST = """query($f: MemberFilter) { members(filter: $f, first: 50) { totalCount
  edges { node { givenName tier lifecycleStage valueSegment segmentsAsOf office { code } } } } }"""
AS_OF = date(2026, 11, 20)


async def snapshot_member(office: str, given: str, tier: Tier, stage: LifecycleStage, segment: ValueSegment) -> Member:
    member = await member_at(office, "Li", given)
    await Member.filter(id=member.id).update(
        tier=tier, lifecycle_stage=stage, value_segment=segment, care_refreshed_on=AS_OF
    )
    return member


def names(result) -> list[str]:
    return [e["node"]["givenName"] for e in data(result)["members"]["edges"]]


async def test_an_office_lists_its_declining_vips(api):
    D, S, G = LifecycleStage.DECLINING, LifecycleStage.STABLE, LifecycleStage.GROWING
    await snapshot_member("PEK01", "Gold declining", Tier.GOLD, D, ValueSegment.HIGH)
    await snapshot_member("PEK01", "Silver declining", Tier.SILVER, D, ValueSegment.LOW)
    await snapshot_member("PEK01", "Standard declining", Tier.STANDARD, D, ValueSegment.LOW)
    await snapshot_member("PEK01", "Gold stable", Tier.GOLD, S, ValueSegment.MEDIUM)
    await snapshot_member("PEK01", "Platinum growing", Tier.PLATINUM, G, ValueSegment.HIGH)
    await snapshot_member("TSN01", "Other office declining", Tier.GOLD, D, ValueSegment.HIGH)

    vips = {"tiers": ["SILVER", "GOLD", "PLATINUM"], "lifecycleStages": ["DECLINING"]}
    result = await api.gql(LIST, {"f": vips}, as_=("office", "PEK01"))
    assert names(result) == ["Gold declining", "Silver declining"]
    assert data(result)["members"]["totalCount"] == 2
    first = data(result)["members"]["edges"][0]["node"]
    assert first == {"givenName": "Gold declining", "tier": "GOLD", "lifecycleStage": "DECLINING", "valueSegment": "HIGH",
                     "segmentsAsOf": "2026-11-20", "office": {"code": "PEK01"}}

    both = {"lifecycleStages": ["DECLINING", "GROWING"], "valueSegments": ["HIGH"]}
    assert names(await api.gql(LIST, {"f": both}, as_=("office", "PEK01"))) == ["Platinum growing", "Gold declining"]
    assert names(await api.gql(LIST, {"f": {"valueSegments": ["MEDIUM"]}}, as_=("office", "PEK01"))) == ["Gold stable"]
    assert names(await api.gql(LIST, {"f": {"lifecycleStages": []}}, as_=("office", "PEK01"))) == []
    # a branch sees the declining VIPs of all its offices
    assert names(await api.gql(LIST, {"f": vips}, as_=("branch", "NCB"))) == [
        "Gold declining", "Other office declining", "Silver declining"]
    assert error_codes(await api.gql(LIST, {"f": {"lifecycleStages": ["SLEEPY"]}}, as_=("office", "PEK01")))


async def test_stage_and_segment_come_from_the_refresh_job(api):
    flyer = await member_at("PEK01", "Zhang", "Flyer")
    for day in ("2026-01-10", "2026-02-10", "2026-03-10", "2026-04-10"):
        await credit(flyer, date.fromisoformat(day))
    await fly(flyer, date.fromisoformat("2026-10-01"))
    quiet = await member_at("PEK01", "Zhang", "Quiet")
    fields = "query($id: ID) { member(id: $id) { lifecycleStage valueSegment segmentsAsOf } }"

    before = data(await api.gql(fields, {"id": str(flyer.id)}, as_=("office", "PEK01")))["member"]
    assert before == {"lifecycleStage": "NEW", "valueSegment": "LOW", "segmentsAsOf": None}  # the column defaults
    await refresh_segments(RULES, AS_OF)
    declining = await api.gql(LIST, {"f": {"lifecycleStages": ["DECLINING"]}}, as_=("office", "PEK01"))
    assert names(declining) == ["Flyer"]  # 1 recent vs 4 previous
    assert data(await api.gql(fields, {"id": str(flyer.id)}, as_=("office", "PEK01")))["member"] == {
        "lifecycleStage": "DECLINING", "valueSegment": "MEDIUM", "segmentsAsOf": "2026-11-20"}  # rank 1 of 2
    assert data(await api.gql(fields, {"id": str(quiet.id)}, as_=("admin",)))["member"] == {
        "lifecycleStage": "DORMANT", "valueSegment": "LOW", "segmentsAsOf": "2026-11-20"}


async def test_the_member_sees_their_own_stage_and_the_airline_does_not(api):
    member = await snapshot_member("PEK01", "Self", Tier.GOLD, LifecycleStage.STABLE, ValueSegment.MEDIUM)
    own = await api.gql("{ me { lifecycleStage valueSegment segmentsAsOf } }", as_=("member", None, str(member.id)))
    assert data(own)["me"] == {"lifecycleStage": "STABLE", "valueSegment": "MEDIUM", "segmentsAsOf": "2026-11-20"}
    by_card = "query($c: String) { member(cardNumber: $c) { cardNumber lifecycleStage } }"
    assert error_codes(await api.gql(by_card, {"c": member.card_number}, as_=("airline",))) == ["FORBIDDEN"]
