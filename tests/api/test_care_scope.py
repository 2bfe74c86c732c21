"""Scope of VIP care (issue 6), as one matrix over real data: an office never sees
another office's calls, feedback, greetings or statistics; a branch sees all of its
offices and nothing of another branch; admin sees everything; members, partners and
the airline get FORBIDDEN on every staff operation.

The world, made over HTTP with the shared factories (the server's clock is the real
one except while the overdue complaint is submitted, three days back):

  member  office  branch  tier      birthday    care call (logged by)   feedback
  pek     PEK01   NCB     GOLD      1980-06-03  NO_ANSWER (PEK01)       COMPLAINT, 3 days old: overdue
  pek2    PEK01   NCB     PLATINUM  -           REACHED (branch NCB)    -
  tsn     TSN01   NCB     SILVER    1981-06-04  NO_ANSWER (TSN01)       SUGGESTION
  pvg     PVG01   ECB     PLATINUM  1982-06-05  NO_ANSWER (PVG01)       COMPLAINT, new: open, not overdue

Every member reached the tier today (one upgrade each). Due a call: pek, tsn and pvg
(just upgraded, never reached); pek2 was reached today. 2027-06-01..30 holds the three
birthdays and the Dragon Boat Festival (2027-06-09).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from tests.api.care_factories import (
    ADMIN, ECB, NCB, PEK01, PVG01, TSN01, care_rows, feedback_input, log_call, logged, submit_payload, submitted,
    update_payload, vip,
)
from tests.api.conftest import USER_ERRORS, as_member, data, error_codes, problems
from tests.api.loyalty_factories import loyalty_register_partner

STAFF = {"PEK01": PEK01, "TSN01": TSN01, "NCB": NCB, "ECB": ECB, "admin": ADMIN}
# Which of the world's members each staff token may see.
SEES = {
    "PEK01": {"pek", "pek2"},
    "TSN01": {"tsn"},
    "NCB": {"pek", "pek2", "tsn"},
    "ECB": {"pvg"},
    "admin": {"pek", "pek2", "tsn", "pvg"},
}
MEMBERS = ("pek", "pek2", "tsn", "pvg")
FEEDBACK = ("pek", "tsn", "pvg")  # whose member submitted it

DUE = """query($o: String, $b: String) { careCallsDue(officeCode: $o, branchCode: $b) {
  totalCount edges { node { member { givenName office { code } } } } } }"""
CALLS = """query($id: ID) { member(id: $id) { careCalls { totalCount edges { node { actor office { code } } } } } }"""
FEEDBACK_LIST = """query($f: FeedbackFilter) { feedback(filter: $f) {
  totalCount edges { node { subject office { code } } } } }"""
FEEDBACK_ITEM = "query($id: ID!) { feedbackItem(id: $id) { subject } }"
JUNE = {"f": "2027-06-01", "t": "2027-06-30"}
GREETINGS = """query($f: Date!, $t: Date!, $o: String, $b: String) {
  greetingsDue(from: $f, to: $t, officeCode: $o, branchCode: $b) {
    date kind recipients member { givenName office { code } } } }"""
FIGURES = """officeCode branchCode tierCounts { standard silver gold platinum } vips vipsContactedWithinInterval
  upgradesLast30Days atRiskVips openComplaints overdueComplaints"""
REGION = "query($o: String, $b: String) { regionStats(officeCode: $o, branchCode: $b) { %s } }" % FIGURES
OFFICES = "query($b: String) { officeStats(branchCode: $b) { %s } }" % FIGURES
VIP_LIST = """query($o: String, $b: String) { members(filter: { officeCode: $o, branchCode: $b,
  tiers: [SILVER, GOLD, PLATINUM] }) { edges { node { office { code } } } } }"""


@dataclass
class World:
    api: object
    members: dict[str, dict]
    feedback: dict[str, dict]

    def name(self, member_id: str) -> str:
        return next(name for name, m in self.members.items() if m["id"] == member_id)


@pytest.fixture
async def world(clocked_api) -> World:
    api = clocked_api
    await loyalty_register_partner("HOTELCO")  # a real partner: refused for its role, not a dead scope
    members = {
        "pek": await vip(api, "PEK01", "GOLD", givenName="pek", birthDate="1980-06-03"),
        "pek2": await vip(api, "PEK01", "PLATINUM", givenName="pek2"),
        "tsn": await vip(api, "TSN01", "SILVER", givenName="tsn", birthDate="1981-06-04"),
        "pvg": await vip(api, "PVG01", "PLATINUM", givenName="pvg", birthDate="1982-06-05"),
    }
    for name, as_ in (("pek", PEK01), ("tsn", TSN01), ("pvg", PVG01)):
        await logged(api, members[name], as_, "NO_ANSWER")
    await logged(api, members["pek2"], NCB, "REACHED")
    api.clock.now = datetime.now(timezone.utc) - timedelta(days=3)  # respondBy (48 hours) passed a day ago
    feedback = {"pek": await submitted(api, members["pek"], PEK01, subject="pek complaint")}
    api.clock.now = None
    feedback["tsn"] = await submitted(api, members["tsn"], TSN01, kind="SUGGESTION", subject="tsn suggestion")
    feedback["pvg"] = await submitted(api, members["pvg"], PVG01, subject="pvg complaint")
    return World(api, members, feedback)


async def query(world: World, document: str, as_: tuple, **variables):
    (value,) = data(await world.api.gql(document, variables, as_=as_)).values()
    return value


# ---- care calls ------------------------------------------------------------------------


async def test_the_worklist_lists_only_the_callers_vips(world):
    async def worklist(as_, **variables) -> list[str]:
        due = await query(world, DUE, as_, **variables)
        assert due["totalCount"] == len(due["edges"])
        return [edge["node"]["member"]["givenName"] for edge in due["edges"]]

    # all just upgraded and never reached: PLATINUM first, then GOLD, then SILVER
    assert {token: await worklist(as_) for token, as_ in STAFF.items()} == {
        "PEK01": ["pek"], "TSN01": ["tsn"], "NCB": ["pek", "tsn"], "ECB": ["pvg"], "admin": ["pvg", "pek", "tsn"],
    }


async def test_a_members_calls_only_in_scope(world):
    call_of = {  # (office, actor) of each member's one call
        "pek": ("PEK01", "office:office-test@PEK01"), "pek2": ("PEK01", "branch:branch-test@NCB"),
        "tsn": ("TSN01", "office:office-test@TSN01"), "pvg": ("PVG01", "office:office-test@PVG01"),
    }

    async def calls(as_, name: str) -> list | None:
        member = await query(world, CALLS, as_, id=world.members[name]["id"])
        if member is None:
            return None
        edges = member["careCalls"]["edges"]
        assert member["careCalls"]["totalCount"] == len(edges)
        return [(e["node"]["office"]["code"], e["node"]["actor"]) for e in edges]

    seen = {(token, name): await calls(as_, name) for token, as_ in STAFF.items() for name in MEMBERS}
    assert seen == {
        (token, name): [call_of[name]] if name in SEES[token] else None for token in STAFF for name in MEMBERS
    }


async def test_calls_are_logged_only_for_members_in_scope(world):
    before = await care_rows()
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()

    async def outcome(as_, name: str) -> list:
        # calledAt in the future: a member in scope is found, then the call refused as INVALID
        return problems(await log_call(world.api, world.members[name], as_, calledAt=tomorrow))

    seen = {(token, name): await outcome(as_, name) for token, as_ in STAFF.items() for name in MEMBERS}
    assert seen == {
        (token, name): [("INVALID", ["input", "calledAt"])] if name in SEES[token] else [("NOT_FOUND", ["input", "memberId"])]
        for token in STAFF for name in MEMBERS
    }
    assert await care_rows() == before == (4, 3, 3)


async def test_calls_stay_with_the_office_that_made_them_when_the_member_moves(world):
    api, pek = world.api, world.members["pek"]
    moved = await api.gql(
        "mutation($i: MemberRegionAssignInput!) { memberRegionAssign(input: $i) { %s } }" % USER_ERRORS,
        {"i": {"memberId": pek["id"], "officeCode": "TSN01", "reason": "moved to Tianjin"}}, as_=ADMIN,
    )
    assert data(moved)["memberRegionAssign"]["userErrors"] == []
    pek_calls = {token: await query(world, CALLS, as_, id=pek["id"]) for token, as_ in STAFF.items()}
    assert {token: m and m["careCalls"]["totalCount"] for token, m in pek_calls.items()} == {
        "PEK01": None, "TSN01": 0, "NCB": 1, "ECB": None, "admin": 1,  # TSN01 sees pek, not PEK01's call
    }
    worklists = {t: [e["node"]["member"]["givenName"] for e in (await query(world, DUE, STAFF[t]))["edges"]]
                 for t in ("PEK01", "TSN01")}
    assert worklists == {"PEK01": [], "TSN01": ["pek", "tsn"]}
    subjects = {t: [e["node"]["subject"] for e in (await query(world, FEEDBACK_LIST, STAFF[t]))["edges"]]
                for t in ("PEK01", "TSN01")}
    assert subjects == {"PEK01": ["pek complaint"], "TSN01": ["tsn suggestion"]}  # routed to PEK01, stays there
    stats = {t: await query(world, REGION, STAFF[t]) for t in ("PEK01", "TSN01")}
    assert {t: (s["vips"], s["openComplaints"], s["overdueComplaints"]) for t, s in stats.items()} == {
        "PEK01": (1, 1, 1), "TSN01": (2, 0, 0),
    }


# ---- feedback ----------------------------------------------------------------------------


async def test_feedback_list_items_and_changes_only_in_scope(world):
    async def subjects(as_, **filter) -> list[str]:
        listing = await query(world, FEEDBACK_LIST, as_, f=filter or None)
        assert listing["totalCount"] == len(listing["edges"])
        return [edge["node"]["subject"] for edge in listing["edges"]]

    newest_first = {"pvg": "pvg complaint", "tsn": "tsn suggestion", "pek": "pek complaint"}
    assert {token: await subjects(as_) for token, as_ in STAFF.items()} == {
        token: [s for name, s in newest_first.items() if name in SEES[token]] for token in STAFF
    }
    assert {token: await subjects(as_, overdue=True) for token, as_ in STAFF.items()} == {
        "PEK01": ["pek complaint"], "TSN01": [], "NCB": ["pek complaint"], "ECB": [], "admin": ["pek complaint"],
    }
    # a memberId filter naming someone else's member finds nothing (no error that would tell it exists)
    by_member = {(token, name): await subjects(as_, memberId=world.members[name]["id"])
                 for token, as_ in STAFF.items() for name in FEEDBACK}
    assert by_member == {
        (token, name): [newest_first[name]] if name in SEES[token] else [] for token in STAFF for name in FEEDBACK
    }

    items = {(token, name): await query(world, FEEDBACK_ITEM, as_, id=world.feedback[name]["id"])
             for token, as_ in STAFF.items() for name in FEEDBACK}
    assert items == {
        (token, name): {"subject": newest_first[name]} if name in SEES[token] else None for token in STAFF for name in FEEDBACK
    }

    before = await care_rows()
    # OPEN -> OPEN is no transition: an item in scope is found, then refused as INVALID_TRANSITION
    updates = {(token, name): problems(await update_payload(world.api, world.feedback[name], "OPEN", as_))
               for token, as_ in STAFF.items() for name in FEEDBACK}
    assert updates == {
        (token, name): [("INVALID_TRANSITION", ["input", "status"])] if name in SEES[token] else [("NOT_FOUND", ["input", "id"])]
        for token in STAFF for name in FEEDBACK
    }
    submits = {(token, name): problems(await submit_payload(world.api, feedback_input(world.members[name]), as_))
               for token, as_ in STAFF.items() for name in MEMBERS if name not in SEES[token]}
    hidden = [("PEK01", "tsn"), ("PEK01", "pvg"), ("TSN01", "pek"), ("TSN01", "pek2"), ("TSN01", "pvg"),
              ("NCB", "pvg"), ("ECB", "pek"), ("ECB", "pek2"), ("ECB", "tsn")]
    assert submits == {case: [("NOT_FOUND", ["input", "memberId"])] for case in hidden}
    assert await care_rows() == before == (4, 3, 3)


# ---- greetings and statistics ------------------------------------------------------------


async def test_greetings_only_of_the_callers_members_and_vips(world):
    def shown(greetings: list[dict]) -> list[tuple]:
        return [(g["date"], g["member"]["givenName"] if g["kind"] == "BIRTHDAY" else g["recipients"]) for g in greetings]

    seen = {token: shown(await query(world, GREETINGS, as_, **JUNE)) for token, as_ in STAFF.items()}
    pek, tsn, pvg = ("2027-06-03", "pek"), ("2027-06-04", "tsn"), ("2027-06-05", "pvg")
    assert seen == {  # Dragon Boat Festival: the ACTIVE VIPs of the caller's region
        "PEK01": [pek, ("2027-06-09", 2)],
        "TSN01": [tsn, ("2027-06-09", 1)],
        "NCB": [pek, tsn, ("2027-06-09", 3)],
        "ECB": [pvg, ("2027-06-09", 1)],
        "admin": [pek, tsn, pvg, ("2027-06-09", 4)],
    }


def figures(office, branch, silver, gold, platinum, contacted, open_, overdue) -> dict:
    vips = silver + gold + platinum  # all ACTIVE, each upgraded once today, none at risk
    return {
        "officeCode": office, "branchCode": branch,
        "tierCounts": {"standard": 0, "silver": silver, "gold": gold, "platinum": platinum},
        "vips": vips, "vipsContactedWithinInterval": contacted, "upgradesLast30Days": vips, "atRiskVips": 0,
        "openComplaints": open_, "overdueComplaints": overdue,
    }


STATS_PEK01 = figures("PEK01", "NCB", 0, 1, 1, contacted=1, open_=1, overdue=1)
STATS_TSN01 = figures("TSN01", "NCB", 1, 0, 0, contacted=0, open_=0, overdue=0)
STATS_PVG01 = figures("PVG01", "ECB", 0, 0, 1, contacted=0, open_=1, overdue=0)


async def test_statistics_count_only_the_callers_region(world):
    region = {token: await query(world, REGION, as_) for token, as_ in STAFF.items()}
    assert region == {
        "PEK01": STATS_PEK01,
        "TSN01": STATS_TSN01,
        "NCB": figures(None, "NCB", 1, 1, 1, contacted=1, open_=1, overdue=1),
        "ECB": figures(None, "ECB", 0, 0, 1, contacted=0, open_=1, overdue=0),
        "admin": figures(None, None, 1, 1, 2, contacted=1, open_=2, overdue=1),
    }

    def summary(rows: list[dict]) -> tuple:
        empty = {"standard": 0, "silver": 0, "gold": 0, "platinum": 0}
        busy = [r for r in rows if r["tierCounts"] != empty or r["openComplaints"] or r["upgradesLast30Days"]]
        return len(rows), sorted({r["branchCode"] for r in rows}), busy

    offices = {token: summary(await query(world, OFFICES, as_)) for token, as_ in STAFF.items()}
    assert offices == {
        "PEK01": (1, ["NCB"], [STATS_PEK01]),
        "TSN01": (1, ["NCB"], [STATS_TSN01]),
        "NCB": (24, ["NCB"], [STATS_PEK01, STATS_TSN01]),
        "ECB": (24, ["ECB"], [STATS_PVG01]),
        "admin": (142, ["ECB", "INB", "NCB", "NWB", "SCB", "SWB"], [STATS_PEK01, STATS_PVG01, STATS_TSN01]),
    }


# ---- a region named in an argument or filter ----------------------------------------------

OFFICE_OF = {"pek": "PEK01", "tsn": "TSN01", "pvg": "PVG01"}
BRANCH_OF = {"PEK01": "NCB", "TSN01": "NCB", "PVG01": "ECB"}
REGIONS = ("PEK01", "TSN01", "PVG01", "NCB", "ECB", "XXX99", "XXB")  # the last two: no such office / branch
IN_SCOPE = {
    "PEK01": {"PEK01"}, "TSN01": {"TSN01"}, "NCB": {"NCB", "PEK01", "TSN01"}, "ECB": {"ECB", "PVG01"},
    "admin": {"PEK01", "TSN01", "PVG01", "NCB", "ECB"},
}
VIPS = {"PEK01": 2, "TSN01": 1, "PVG01": 1, "NCB": 3, "ECB": 1}


def _offices(region: str) -> list[str]:
    """The world's offices with something in this region."""
    return sorted(o for o in ("PEK01", "TSN01", "PVG01") if region in (o, BRANCH_OF[o]))


def _codes(nodes) -> list[str]:
    return sorted({node["office"]["code"] for node in nodes})


def _region_arguments(region: str) -> dict:
    return {"b": region} if region.endswith("B") else {"o": region}


# operation: (document, variables for a region, what it shows, what it should show for a region in scope)
REGION_OPS = {
    "careCallsDue": (DUE, _region_arguments, lambda v: _codes(e["node"]["member"] for e in v["edges"]), _offices),
    "feedback": (
        FEEDBACK_LIST, lambda r: {"f": {"branchCode" if r.endswith("B") else "officeCode": r}},
        lambda v: _codes(e["node"] for e in v["edges"]), _offices,
    ),
    "greetingsDue": (
        GREETINGS, lambda r: {**JUNE, **_region_arguments(r)},
        lambda v: (_codes(g["member"] for g in v if g["member"]), [g["recipients"] for g in v if not g["member"]]),
        lambda r: (_offices(r), [VIPS[r]]),
    ),
    "regionStats": (
        REGION, _region_arguments, lambda v: (v["officeCode"], v["branchCode"], v["vips"]),
        lambda r: (None, r, VIPS[r]) if r.endswith("B") else (r, BRANCH_OF[r], VIPS[r]),
    ),
    "officeStats": (OFFICES, lambda r: {"b": r}, lambda v: [row["officeCode"] for row in v if row["vips"]], _offices),
    "members": (VIP_LIST, _region_arguments, lambda v: _codes(e["node"] for e in v["edges"]), _offices),
}


async def test_a_region_outside_the_scope_is_forbidden_in_every_argument_and_filter(world):
    async def outcome(op: str, as_: tuple, region: str):
        document, variables, shows, _ = REGION_OPS[op]
        result = await world.api.gql(document, variables(region), as_=as_)
        if result.get("errors"):
            return "/".join(error_codes(result))
        return shows(data(result)[next(iter(result["data"]))])

    def expected(op: str, token: str, region: str):
        if region in IN_SCOPE[token]:
            return REGION_OPS[op][3](region)
        # unknown codes: admin may see every region, so INVALID; anyone else learns nothing
        return "INVALID" if token == "admin" else "FORBIDDEN"

    cases = [
        (op, token, region) for op in REGION_OPS for token in STAFF for region in REGIONS
        if op != "officeStats" or region.endswith("B")
    ]
    seen = {case: await outcome(case[0], STAFF[case[1]], case[2]) for case in cases}
    assert seen == {case: expected(*case) for case in cases}
    assert seen[("feedback", "PEK01", "NCB")] == "FORBIDDEN"  # an office may not widen itself to its branch
    assert seen[("careCallsDue", "NCB", "TSN01")] == ["TSN01"]


# ---- roles that are not staff ------------------------------------------------------------


async def test_members_partners_and_the_airline_are_forbidden_every_staff_operation(world):
    pek, pvg = world.members["pek"], world.members["pvg"]
    by_card = "query($c: String) { member(cardNumber: $c) { careCalls { totalCount } } }"
    operations = {
        "careCallsDue": (DUE, {}),
        "Member.careCalls": (by_card, {"c": pek["cardNumber"]}),
        "careCallLog": (
            "mutation($i: CareCallLogInput!) { careCallLog(input: $i) { careCall { id } %s } }" % USER_ERRORS,
            {"i": {"memberId": pek["id"], "outcome": "REACHED"}},
        ),
        "feedback": (FEEDBACK_LIST, {}),
        "feedbackItem": (FEEDBACK_ITEM, {"id": world.feedback["pek"]["id"]}),
        "feedbackUpdate": (
            "mutation($i: FeedbackUpdateInput!) { feedbackUpdate(input: $i) { feedback { id } %s } }" % USER_ERRORS,
            {"i": {"id": world.feedback["pek"]["id"], "status": "IN_PROGRESS"}},
        ),
        "greetingsDue": (GREETINGS, JUNE),
        "regionStats": (REGION, {}),
        "officeStats": (OFFICES, {}),
    }
    callers = {"member": as_member(pek), "partner": ("partner", "HOTELCO"), "airline": ("airline",)}
    # live tokens: the partner is registered and the member exists, so the refusals below are for the role
    live = "query($c: String) { member(cardNumber: $c) { id } }"
    for as_ in callers.values():
        assert data(await world.api.gql(live, {"c": pek["cardNumber"]}, as_=as_)) == {"member": {"id": pek["id"]}}
    before = await care_rows()
    seen = {(role, op): error_codes(await world.api.gql(doc, variables, as_=as_))
            for role, as_ in callers.items() for op, (doc, variables) in operations.items()}
    assert seen == {(role, op): ["FORBIDDEN"] for role in callers for op in operations}
    without_token = {op: error_codes(await world.api.gql(doc, variables)) for op, (doc, variables) in operations.items()}
    assert without_token == {op: ["UNAUTHENTICATED"] for op in operations}
    # feedbackSubmit: a member for themselves only; partners and the airline not at all
    submit = "mutation($i: FeedbackSubmitInput!) { feedbackSubmit(input: $i) { feedback { id } %s } }" % USER_ERRORS
    for as_ in (callers["partner"], callers["airline"]):
        assert error_codes(await world.api.gql(submit, {"i": feedback_input(pek)}, as_=as_)) == ["FORBIDDEN"]
    assert problems(await submit_payload(world.api, feedback_input(pvg), callers["member"])) == [
        ("NOT_FOUND", ["input", "memberId"])]
    # another member reads as null for a member (no error that would tell the member exists)
    assert data(await world.api.gql(CALLS, {"id": pvg["id"]}, as_=callers["member"])) == {"member": None}
    assert await care_rows() == before == (4, 3, 3)
