"""regionStats, officeStats and greetingsDue over HTTP: figures equal counts made here,
and scope (an office never sees another office's figures or members; a branch sees all
its offices)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from care.models import Feedback, FeedbackChannel, FeedbackKind, FeedbackStatus
from loyalty.models import TierEvent
from loyalty.tiers import override_tier
from members.enums import MemberStatus, Tier
from members.models import Member, Office
from members.services import set_status
from tests.api.conftest import data, error_codes
from tests.care.history import ADMIN, RULES, member_at

STATS = """officeCode branchCode name tierCounts { standard silver gold platinum }
  upgradesLast30Days downgradesLast30Days atRiskVips vips vipsContactedWithinInterval careCallCoverage
  openComplaints overdueComplaints"""
REGION = "query($o: String, $b: String) { regionStats(officeCode: $o, branchCode: $b) { %s } }" % STATS
OFFICES = "query($b: String) { officeStats(branchCode: $b) { %s } }" % STATS
GREETINGS = """query($f: Date!, $t: Date!, $o: String, $b: String) {
  greetingsDue(from: $f, to: $t, officeCode: $o, branchCode: $b) { date kind festival recipients member { givenName office { code } } } }"""


def figures(tiers: tuple, up: int, down: int, at_risk: int, vips: int, contacted: int, open_: int, overdue: int) -> dict:
    return {
        "tierCounts": dict(zip(("standard", "silver", "gold", "platinum"), tiers)),
        "upgradesLast30Days": up, "downgradesLast30Days": down, "atRiskVips": at_risk, "vips": vips,
        "vipsContactedWithinInterval": contacted, "careCallCoverage": contacted / vips if vips else 0.0,
        "openComplaints": open_, "overdueComplaints": overdue,
    }


PEK01 = figures((2, 3, 2, 2), up=6, down=1, at_risk=2, vips=6, contacted=3, open_=2, overdue=1)
TSN01 = figures((1, 0, 1, 0), up=1, down=0, at_risk=0, vips=1, contacted=0, open_=1, overdue=1)
PVG01 = figures((0, 0, 0, 1), up=1, down=0, at_risk=1, vips=1, contacted=0, open_=1, overdue=0)
ZERO = figures((0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 0)


def total(*parts: dict) -> dict:
    tiers = tuple(sum(p["tierCounts"][k] for p in parts) for k in ("standard", "silver", "gold", "platinum"))
    keys = ("upgradesLast30Days", "downgradesLast30Days", "atRiskVips", "vips", "vipsContactedWithinInterval",
            "openComplaints", "overdueComplaints")
    up, down, risk, vips, contacted, open_, overdue = (sum(p[k] for p in parts) for k in keys)
    return figures(tiers, up, down, risk, vips, contacted, open_, overdue)


def only_figures(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("officeCode", "branchCode", "name")}


async def vip(office: str, tier: Tier, today: date, *, valid_until: date | None = None, contact_days_ago: int | None = None) -> Member:
    """A member given `tier` by an override today (one upgrade event, effective now)."""
    member = await member_at(office, "Vip", f"{office} {tier.name}")
    await override_tier(ADMIN, str(member.id), tier, valid_until, "test set-up", rules=RULES, today=today)
    if contact_days_ago is not None:
        await Member.filter(id=member.id).update(care_last_contact_on=today - timedelta(days=contact_days_ago))
    return await Member.get(id=member.id)


async def complaint(member: Member, status: FeedbackStatus, respond_in_hours: int, kind: FeedbackKind = FeedbackKind.COMPLAINT) -> None:
    now = datetime.now(timezone.utc)
    await Feedback.create(
        member_id=member.id, office_id=member.office_id, branch_id=member.branch_id, kind=kind,
        channel=FeedbackChannel.PHONE, subject="Delayed bag", text="My bag came a day late.", status=status,
        submitted_at=now - timedelta(hours=1), respond_by=now + timedelta(hours=respond_in_hours), updated_at=now,
        submitted_by="office:desk@PEK01",
    )


async def build_region(today: date) -> None:
    soon = today + timedelta(days=60)  # within at_risk_months, and no miles: at risk
    # PEK01 -------------------------------------------------------------------------
    a = await vip("PEK01", Tier.SILVER, today, contact_days_ago=89)  # within 90 days
    await vip("PEK01", Tier.SILVER, today, valid_until=soon, contact_days_ago=90)  # at risk; 90 days: due again
    c = await vip("PEK01", Tier.SILVER, today)  # never contacted
    await TierEvent.filter(member_id=c.id).update(effective_at=datetime.now(timezone.utc) - timedelta(days=40))
    d = await vip("PEK01", Tier.PLATINUM, today)
    await override_tier(ADMIN, str(d.id), Tier.GOLD, None, "test set-up", rules=RULES, today=today)  # a downgrade
    await Member.filter(id=d.id).update(care_last_contact_on=today - timedelta(days=59))  # GOLD: 60 days
    await vip("PEK01", Tier.PLATINUM, today, contact_days_ago=30)  # PLATINUM: 30 days, due again
    await vip("PEK01", Tier.PLATINUM, today, valid_until=today + timedelta(days=30), contact_days_ago=29)  # at risk
    g = await vip("PEK01", Tier.GOLD, today, valid_until=soon, contact_days_ago=0)
    await set_status(ADMIN, str(g.id), MemberStatus.SUSPENDED, "test set-up")  # not a VIP while suspended
    await member_at("PEK01", "Plain", "One")
    await member_at("PEK01", "Plain", "Two")
    await complaint(a, FeedbackStatus.OPEN, respond_in_hours=40)
    await complaint(a, FeedbackStatus.IN_PROGRESS, respond_in_hours=-2)  # overdue
    await complaint(a, FeedbackStatus.RESOLVED, respond_in_hours=-2)  # answered: not counted
    await complaint(a, FeedbackStatus.OPEN, respond_in_hours=-2, kind=FeedbackKind.SUGGESTION)  # not a complaint
    # TSN01 (the same branch NCB) -------------------------------------------------------
    t = await vip("TSN01", Tier.GOLD, today)
    await member_at("TSN01", "Plain", "Three")
    await complaint(t, FeedbackStatus.OPEN, respond_in_hours=-1)  # overdue
    # PVG01 (branch ECB) -----------------------------------------------------------------
    v = await vip("PVG01", Tier.PLATINUM, today, valid_until=soon)
    await complaint(v, FeedbackStatus.OPEN, respond_in_hours=47)


@pytest.fixture
async def region(api):
    today = datetime.now(api.settings.tz).date()
    await build_region(today)
    return today


async def test_an_office_sees_its_own_figures_equal_to_direct_counts(api, region):
    row = data(await api.gql(REGION, as_=("office", "PEK01")))["regionStats"]
    assert (row["officeCode"], row["branchCode"]) == ("PEK01", "NCB")
    assert only_figures(row) == PEK01
    assert row["careCallCoverage"] == 0.5
    # the same figures counted directly
    pek = await Office.get(code="PEK01")
    assert row["vips"] == await Member.filter(office_id=pek.id, status=MemberStatus.ACTIVE, tier__gte=Tier.SILVER).count()
    events = await TierEvent.filter(office_id=pek.id).values_list("from_tier", "to_tier", "effective_at")
    recent = [(f, t) for f, t, at in events if at > datetime.now(timezone.utc) - timedelta(days=29)]
    assert (row["upgradesLast30Days"], row["downgradesLast30Days"]) == (
        sum(t > f for f, t in recent), sum(t < f for f, t in recent))
    assert row["openComplaints"] == await Feedback.filter(
        office_id=pek.id, kind=FeedbackKind.COMPLAINT, status__in=["OPEN", "IN_PROGRESS"]).count()
    # naming its own office is the same
    assert only_figures(data(await api.gql(REGION, {"o": "PEK01"}, as_=("office", "PEK01")))["regionStats"]) == PEK01


async def test_an_office_never_sees_another_office(api, region):
    for variables in ({"o": "TSN01"}, {"o": "PVG01"}, {"b": "NCB"}):
        assert error_codes(await api.gql(REGION, variables, as_=("office", "PEK01"))) == ["FORBIDDEN"]
    assert error_codes(await api.gql(OFFICES, {"b": "NCB"}, as_=("office", "PEK01"))) == ["FORBIDDEN"]
    rows = data(await api.gql(OFFICES, as_=("office", "TSN01")))["officeStats"]
    assert [(r["officeCode"], only_figures(r)) for r in rows] == [("TSN01", TSN01)]


async def test_a_branch_sees_all_its_offices_and_their_sum(api, region):
    row = data(await api.gql(REGION, as_=("branch", "NCB")))["regionStats"]
    assert (row["officeCode"], row["branchCode"], only_figures(row)) == (None, "NCB", total(PEK01, TSN01))
    assert only_figures(data(await api.gql(REGION, {"o": "TSN01"}, as_=("branch", "NCB")))["regionStats"]) == TSN01
    rows = data(await api.gql(OFFICES, as_=("branch", "NCB")))["officeStats"]
    assert len(rows) == 24 and all(r["branchCode"] == "NCB" for r in rows)
    assert [r["officeCode"] for r in rows] == sorted(r["officeCode"] for r in rows)
    by_code = {r["officeCode"]: only_figures(r) for r in rows}
    assert (by_code.pop("PEK01"), by_code.pop("TSN01")) == (PEK01, TSN01)
    assert all(f == ZERO for f in by_code.values())
    for variables in ({"o": "PVG01"}, {"b": "ECB"}):
        assert error_codes(await api.gql(REGION, variables, as_=("branch", "NCB"))) == ["FORBIDDEN"]
    assert error_codes(await api.gql(OFFICES, {"b": "ECB"}, as_=("branch", "NCB"))) == ["FORBIDDEN"]


async def test_admin_sees_everything_and_other_roles_nothing(api, region):
    row = data(await api.gql(REGION, as_=("admin",)))["regionStats"]
    assert (row["officeCode"], row["branchCode"], row["name"]) == (None, None, "All branches")
    assert only_figures(row) == total(PEK01, TSN01, PVG01)
    rows = data(await api.gql(OFFICES, {"b": "ECB"}, as_=("admin",)))["officeStats"]
    assert len(rows) == 24 and {r["officeCode"]: only_figures(r) for r in rows}["PVG01"] == PVG01
    assert len(data(await api.gql(OFFICES, as_=("admin",)))["officeStats"]) == 142
    assert error_codes(await api.gql(REGION, {"o": "XXX99"}, as_=("admin",))) == ["INVALID"]
    for role in (("airline",), ("partner", "HOTELCO"), ("member", None, "1")):
        assert error_codes(await api.gql(REGION, as_=role)) == ["FORBIDDEN"]
    assert error_codes(await api.gql(REGION)) == ["UNAUTHENTICATED"]


async def test_greetings_are_scoped_like_members(api, db):
    await member_at("PEK01", "Wang", "Beijing", birth_date=date(1980, 5, 3))
    await member_at("TSN01", "Wang", "Tianjin", birth_date=date(1981, 5, 4))
    await member_at("PVG01", "Wang", "Shanghai", birth_date=date(1982, 5, 5))
    await vip("TSN01", Tier.SILVER, date(2026, 11, 1))
    window = {"f": "2027-05-01", "t": "2027-05-31"}

    def seen(result) -> list:
        return [(g["date"], g["member"]["givenName"], g["member"]["office"]["code"]) for g in data(result)["greetingsDue"]]

    assert seen(await api.gql(GREETINGS, window, as_=("office", "PEK01"))) == [("2027-05-03", "Beijing", "PEK01")]
    assert seen(await api.gql(GREETINGS, window, as_=("branch", "NCB"))) == [
        ("2027-05-03", "Beijing", "PEK01"), ("2027-05-04", "Tianjin", "TSN01")]
    assert seen(await api.gql(GREETINGS, {**window, "o": "TSN01"}, as_=("branch", "NCB"))) == [("2027-05-04", "Tianjin", "TSN01")]
    assert len(seen(await api.gql(GREETINGS, window, as_=("admin",)))) == 3
    assert error_codes(await api.gql(GREETINGS, {**window, "o": "TSN01"}, as_=("office", "PEK01"))) == ["FORBIDDEN"]
    assert error_codes(await api.gql(GREETINGS, {**window, "b": "ECB"}, as_=("branch", "NCB"))) == ["FORBIDDEN"]
    assert error_codes(await api.gql(GREETINGS, {"f": "2027-01-01", "t": "2028-01-02"}, as_=("admin",))) == ["INVALID"]
    assert error_codes(await api.gql(GREETINGS, window, as_=("airline",))) == ["FORBIDDEN"]
    # festivals: recipients are the region's ACTIVE VIPs
    festival = {"f": "2027-10-01", "t": "2027-10-01"}
    for caller, vips in ((("office", "PEK01"), 0), (("office", "TSN01"), 1), (("admin",), 1)):
        assert data(await api.gql(GREETINGS, festival, as_=caller))["greetingsDue"] == [
            {"date": "2027-10-01", "kind": "FESTIVAL", "festival": "National Day 国庆节", "recipients": vips, "member": None}]
