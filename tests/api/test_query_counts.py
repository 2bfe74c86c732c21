"""Statements per request do not grow with the page (issue 10): the read layer's
DataLoaders (schema.reads) batch what each object of a page needs, so a page of 50
costs the same statements as a page of 5.

The world: 55 members of PEK01, enrolled and raised to GOLD through the services (one
tier event each), every other one with a validUntil close enough to be tested for the
risk of downgrade, every fifth with a flight in the window and two unanswered care
calls; all are due a care call (just upgraded, never reached). Requests run through the schema with a caller resolved
beforehand, so the statements counted are the request's own (tests/statements.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from care.calls import log_care_call
from care.models import CallOutcome, CareCall
from loyalty.rules import load_rules
from loyalty.tiers import override_tier
from members.access import Caller, Role, resolve_caller
from members.addresses import Address
from members.enums import Tier
from members.services import Enrolment, enroll
from schema.build import build_schema
from schema.context import Context
from tests.api.conftest import office_address
from tests.api.loyalty_factories import loyalty_fly, loyalty_today
from tests.statements import counted_statements

MEMBERS = 55
SMALL, LARGE = 5, 50
RULES = load_rules()
ADMIN = Caller(Role.ADMIN, "test")

MEMBER_PAGE = """query($n: Int) { members(first: $n) { edges { node {
  id office { code } regionHistory { assignedAt reason office { code } }
  tierStatus { tier qualifyingMiles nextTier atRiskOfDowngrade } } } } }"""
DUE_PAGE = """query($n: Int) { careCallsDue(first: $n) { edges { node {
  reason dueSince member { id office { code } tierStatus { atRiskOfDowngrade } } } } } }"""
CALLS_PAGE = """query($n: Int) { members(first: $n, orderBy: CARD_NUMBER) { edges { node {
  id careCalls(first: 1) { totalCount pageInfo { hasNextPage } edges { node { notes } } } } } } }"""
CHANGES_PAGE = """query($n: Int) { tierChanges(first: $n) { edges { node {
  cardNumber toTier member { id office { code } } } } } }"""
BRANCHES = "{ branches { code tierCounts { gold } offices { code tierCounts { standard silver gold platinum } } } }"


@pytest.fixture
async def world(api):
    """55 GOLD members of PEK01 (see the module docstring)."""
    today = loyalty_today(api)
    soon = today + timedelta(days=40)  # inside at_risk_months: the at-risk test runs
    place = office_address("PEK01")
    for n in range(MEMBERS):
        member = await enroll(
            ADMIN, Enrolment(family_name="Zhao", given_name=f"Lei {n:02d}", address=Address(**place)), today=today
        )
        await override_tier(
            ADMIN, str(member.id), Tier.GOLD, soon if n % 2 else None, "query-count set-up", rules=RULES, today=today
        )
        if n % 5 == 0:
            await loyalty_fly(api, {"id": str(member.id), "cardNumber": member.card_number}, f"QC-{n}")
            later = datetime.now(timezone.utc) + timedelta(hours=1)  # calls after the enrolment, in order
            for minutes in (30, 10):
                await log_care_call(
                    ADMIN, str(member.id), CallOutcome.NO_ANSWER, notes=f"call {minutes}",
                    called_at=later - timedelta(minutes=minutes), now=later, rules=RULES,
                )
    return api


async def _run(api, query: str, caller: Caller, variables: dict | None = None) -> tuple[dict, list[str]]:
    """The data of a query and the statements it ran."""
    context = Context(caller=caller, auth_error=None, timezone=api.settings.tz, settings=api.settings, rules=RULES)
    schema = build_schema()
    with counted_statements() as statements:
        result = await schema.execute(query, variable_values=variables, context_value=context)
    assert result.errors is None, result.errors
    return result.data, statements


async def _counts(api, query: str, field: str, caller: Caller) -> tuple[int, int]:
    """(statements for a page of 5, statements for a page of 50), checking the sizes."""
    counts = []
    for size in (SMALL, LARGE):
        page, statements = await _run(api, query, caller, {"n": size})
        assert len(page[field]["edges"]) == size
        counts.append(len(statements))
    return counts[0], counts[1]


async def _office(code: str) -> Caller:
    return await resolve_caller(Role.OFFICE, "test", code)


async def test_a_member_page_with_tier_status_region_history_and_office(world):
    small, large = await _counts(world, MEMBER_PAGE, "members", await _office("PEK01"))
    assert small == large
    # The page (with its count), region history, offices, window totals, at-risk (2).
    assert large <= 7


async def test_a_member_page_with_each_member_s_first_care_calls(world):
    small, large = await _counts(world, CALLS_PAGE, "members", await _office("PEK01"))
    assert small == large
    # The page (card order: the keys of each of the 4 tiers, then the rows by id), the
    # calls (one windowed query), their counts.
    assert large <= 7
    page, _ = await _run(world, CALLS_PAGE, await _office("PEK01"), {"n": LARGE})
    called = {"totalCount": 2, "pageInfo": {"hasNextPage": True}, "edges": [{"node": {"notes": "call 10"}}]}
    never = {"totalCount": 0, "pageInfo": {"hasNextPage": False}, "edges": []}
    calls_made = set(await CareCall.all().values_list("member_id", flat=True))
    expected = [called if int(edge["node"]["id"]) in calls_made else never for edge in page["members"]["edges"]]
    assert [edge["node"]["careCalls"] for edge in page["members"]["edges"]] == expected
    assert called in expected and never in expected


async def test_a_care_calls_due_page(world):
    small, large = await _counts(world, DUE_PAGE, "careCallsDue", await _office("PEK01"))
    assert small == large


async def test_a_tier_changes_page_with_members(world):
    small, large = await _counts(world, CHANGES_PAGE, "tierChanges", await _office("PEK01"))
    assert small == large
    assert large <= 3  # the events, their members, the members' offices


async def test_branches_with_offices_and_tier_counts_cost_the_same_for_1_or_142_offices(world):
    counts = {}
    for label, caller in (
        ("admin", ADMIN), ("NCB", await resolve_caller(Role.BRANCH, "test", "NCB")), ("PEK01", await _office("PEK01")),
    ):
        data, statements = await _run(world, BRANCHES, caller)
        offices = sum(len(branch["offices"]) for branch in data["branches"])
        counts[label] = (len(data["branches"]), offices, len(statements))
    assert counts == {"admin": (6, 142, 4), "NCB": (1, 24, 4), "PEK01": (1, 1, 4)}
    # The members are all PEK01's: every caller counts the 55 of them there.
    data, _ = await _run(world, BRANCHES, ADMIN)
    pek01 = next(o for b in data["branches"] for o in b["offices"] if o["code"] == "PEK01")
    assert pek01["tierCounts"] == {"standard": 0, "silver": 0, "gold": MEMBERS, "platinum": 0}
