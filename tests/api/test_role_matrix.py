"""Every role against every member and region operation (AUTH.md, README "Roles").

Each operation runs twice per role: on an object in the caller's own region (member
A of office PEK01, branch NCB; the member token is A's) and on one outside it (member B
of office PVG01, branch ECB, tier GOLD). The outcome is one of:

- allowed: the operation ran and shows / changed the object;
- FORBIDDEN: the top-level error (the role may not call it, or not read that field);
- invisible: the object reads as null, is absent from the list or counts, or is a
  NOT_FOUND userError: its existence does not leak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.api.conftest import ENROLL, USER_ERRORS, as_member, enroll, error_codes, person, set_tier

A, F, I = "allowed", "FORBIDDEN", "invisible"
ROLES = ["member", "partner", "office", "branch", "airline", "admin"]


@dataclass(frozen=True)
class Op:
    document: str
    variables: Callable[[dict], dict]
    shows: Callable[[dict | list | None, dict], bool]  # (the operation's value, the target) -> does it show it


def _is(value, target) -> bool:
    return value is not None and value["id"] == target["id"]


def _card(target) -> dict:
    return {"card": target["cardNumber"]}


def _mutation(name: str, input_type: str, input: Callable[[dict], dict], shows=_is) -> Op:
    document = "mutation($input: %s!) { %s(input: $input) { member { id } %s } }" % (input_type, name, USER_ERRORS)
    return Op(document, lambda t: {"input": input(t)}, shows)


OPS = {
    "me": Op("{ me { id } }", lambda t: {}, _is),
    "member(cardNumber)": Op("query($card: String) { member(cardNumber: $card) { id } }", _card, _is),
    "member(id)": Op("query($id: ID) { member(id: $id) { id } }", lambda t: {"id": t["id"]}, _is),
    "member.phone": Op("query($card: String) { member(cardNumber: $card) { id phone } }", _card, _is),
    "members": Op("{ members { edges { node { id } } } }", lambda t: {}, lambda v, t: t["id"] in [e["node"]["id"] for e in v["edges"]]),
    "branches": Op("{ branches { code } }", lambda t: {}, lambda v, t: t["branch"]["code"] in [b["code"] for b in v]),
    "office": Op("query($code: String!) { office(code: $code) { code } }", lambda t: {"code": t["office"]["code"]}, lambda v, t: v is not None),
    "tierCounts": Op("{ tierCounts { standard gold } }", lambda t: {}, lambda v, t: v[t["tier"].lower()] == 1),
    "memberEnroll": Op(ENROLL % ("id", USER_ERRORS), lambda t: {"input": person(t["office"]["code"])}, lambda v, t: v is not None),
    "memberUpdate": _mutation("memberUpdate", "MemberUpdateInput", lambda t: {"id": t["id"], "phone": "+86 138 %08d" % int(t["id"])}),
    "memberRegionAssign": _mutation(
        "memberRegionAssign", "MemberRegionAssignInput", lambda t: {"memberId": t["id"], "officeCode": "TVS01", "reason": "matrix"}
    ),
    "memberStatusSet": _mutation(
        "memberStatusSet", "MemberStatusSetInput", lambda t: {"memberId": t["id"], "status": "SUSPENDED", "reason": "matrix"}
    ),
    "memberDataExport": Op(
        "query($id: ID) { memberDataExport(memberId: $id) }", lambda t: {"id": t["id"]},
        lambda v, t: v is not None and v["member"]["id"] == int(t["id"]),
    ),
    "memberConsentSet": _mutation("memberConsentSet", "MemberConsentSetInput", lambda t: {"memberId": t["id"], "marketing": True}),
    "memberErase": _mutation("memberErase", "MemberEraseInput", lambda t: {"memberId": t["id"], "reason": "matrix"}),
}

# operation: outcomes for member, partner, office, branch, airline, admin, as (own region, outside it)
EXPECTED = {
    "me":                 [(A, I), (F, F), (F, F), (F, F), (F, F), (F, F)],
    "member(cardNumber)": [(A, I), (A, A), (A, I), (A, I), (A, A), (A, A)],
    "member(id)":         [(A, I), (F, F), (A, I), (A, I), (F, F), (A, A)],
    "member.phone":       [(A, I), (F, F), (A, I), (A, I), (F, F), (A, A)],
    "members":            [(F, F), (F, F), (A, I), (A, I), (F, F), (A, A)],
    "branches":           [(F, F), (F, F), (A, I), (A, I), (F, F), (A, A)],
    "office":             [(F, F), (F, F), (A, I), (A, I), (F, F), (A, A)],
    "tierCounts":         [(F, F), (F, F), (A, I), (A, I), (F, F), (A, A)],
    # The address decides the office, whoever enrols: an office may enrol a member of another.
    "memberEnroll":       [(F, F), (F, F), (A, A), (A, A), (A, A), (A, A)],
    "memberUpdate":       [(A, I), (F, F), (F, F), (F, F), (F, F), (A, A)],
    "memberRegionAssign": [(F, F), (F, F), (F, F), (A, I), (F, F), (A, A)],
    "memberStatusSet":    [(F, F), (F, F), (F, F), (F, F), (F, F), (A, A)],
    "memberDataExport":   [(A, I), (F, F), (F, F), (F, F), (F, F), (A, A)],
    "memberConsentSet":   [(A, I), (F, F), (F, F), (F, F), (F, F), (A, A)],
    "memberErase":        [(F, F), (F, F), (F, F), (F, F), (F, F), (A, A)],
}


@pytest.fixture
async def world(api) -> dict:
    from members.partners import add_partner

    await add_partner("HOTEL1", "Hotel One")
    own = await enroll(api, "PEK01")
    other = await enroll(api, "PVG01")
    await set_tier(api, other, "GOLD")
    return {"own": own, "other": {**other, "tier": "GOLD"}}


def _as(role: str, world: dict) -> tuple:
    return {
        "member": as_member(world["own"]), "partner": ("partner", "HOTEL1"), "office": ("office", "PEK01"),
        "branch": ("branch", "NCB"), "airline": ("airline",), "admin": ("admin",),
    }[role]


async def _outcome(api, op: Op, as_: tuple, target: dict) -> str:
    result = await api.gql(op.document, op.variables(target), as_=as_)
    codes = set(error_codes(result))
    if codes:
        return "/".join(sorted(codes))
    (value,) = result["data"].values()
    if isinstance(value, dict) and "userErrors" in value:
        codes = {e["code"] for e in value["userErrors"]}
        if codes:
            return I if codes == {"NOT_FOUND"} else "/".join(sorted(codes))
        value = value["member"]
    return A if op.shows(value, target) else I


def test_the_table_covers_every_operation_and_role():
    assert set(EXPECTED) == set(OPS)
    assert all(len(row) == len(ROLES) for row in EXPECTED.values())


@pytest.mark.parametrize(("operation", "role"), [(op, role) for op in OPS for role in ROLES], ids=lambda v: v)
async def test_role_against_operation(api, world, operation, role):
    expected = EXPECTED[operation][ROLES.index(role)]
    op, as_ = OPS[operation], _as(role, world)
    got = (await _outcome(api, op, as_, world["own"]), await _outcome(api, op, as_, world["other"]))
    assert got == expected


@pytest.mark.parametrize("operation", list(OPS))
async def test_no_token_is_unauthenticated(api, world, operation):
    op = OPS[operation]
    result = await api.gql(op.document, op.variables(world["own"]))
    assert set(error_codes(result)) == {"UNAUTHENTICATED"}
