"""memberConsentSet over HTTP: greetings are on and marketing off until changed; the
member sets their own, an admin anyone's; each change is kept once in the history;
greetingsDue greets and counts only the members who hold the greetings consent, and
greetingMarkSent refuses a member who withdrew it."""

from __future__ import annotations

from members.models import MemberConsentChange
from tests.api.care_factories import ADMIN, PEK01, vip
from tests.api.conftest import admin_view, as_member, data, enroll, error_codes, problems
from tests.api.privacy_factories import CONSENT_SET, GREETING, export, set_consents

DUE = """query($f: Date!, $t: Date!) { greetingsDue(from: $f, to: $t, officeCode: "PEK01") {
  date kind festival recipients member { id } } }"""
NATIONAL_DAY = "2026-10-01"


async def history(member: dict) -> list[tuple]:
    rows = await MemberConsentChange.filter(member_id=int(member["id"])).order_by("id")
    return [(row.consent, row.granted, row.actor) for row in rows]


async def test_the_member_and_an_admin_set_consents_and_each_change_is_kept(api):
    member = await enroll(api, "PEK01")
    assert (await admin_view(api, member, "consents { greetings marketing updatedAt }"))["consents"] == {
        "greetings": True, "marketing": False, "updatedAt": None}
    own = await set_consents(api, as_member(member), marketing=True)
    assert own["userErrors"] == [] and own["member"]["consents"]["marketing"] is True
    assert own["member"]["consents"]["updatedAt"] is not None
    by_admin = await set_consents(api, ADMIN, memberId=member["id"], greetings=False, marketing=True)
    assert by_admin["member"]["consents"] | {"updatedAt": None} == {"greetings": False, "marketing": True, "updatedAt": None}
    # marketing was already on: only the greetings change is recorded.
    assert await history(member) == [
        ("MARKETING", True, f"member:{member['id']}"), ("GREETINGS", False, "admin:admin-test")]
    consents = (await export(api, member))["member"]["consents"]
    assert (consents["greetings"], consents["marketing"]) == (False, True)
    assert len((await export(api, member))["consentChanges"]) == 2


async def test_refusals_change_nothing(api):
    member = await enroll(api, "PEK01")
    other = await enroll(api, "PEK01")
    assert problems(await set_consents(api, as_member(member))) == [("INVALID", ["input"])]
    assert problems(await set_consents(api, ADMIN, greetings=False)) == [("INVALID", ["input", "memberId"])]
    assert problems(await set_consents(api, as_member(member), memberId=other["id"], marketing=True)) == [
        ("NOT_FOUND", ["input", "memberId"])]
    assert problems(await set_consents(api, ADMIN, memberId="99999999", marketing=True)) == [
        ("NOT_FOUND", ["input", "memberId"])]
    for role in (PEK01, ("branch", "NCB"), ("airline",), ("partner", "HOTELCO")):
        result = await api.gql(CONSENT_SET, {"input": {"memberId": member["id"], "marketing": True}}, as_=role)
        assert error_codes(result) == ["FORBIDDEN"]
    assert await MemberConsentChange.all().count() == 0
    assert (await admin_view(api, other, "consents { marketing }"))["consents"] == {"marketing": False}


async def test_greetings_due_greets_and_counts_only_members_who_consent(api):
    # Three PEK01 members born on June 15, two of them GOLD; and a SILVER VIP with no birth date.
    gold = await vip(api, "PEK01", "GOLD", birthDate="1980-06-15")
    gold_withdrawn = await vip(api, "PEK01", "GOLD", birthDate="1981-06-15")
    standard = await enroll(api, "PEK01", birthDate="1982-06-15")
    await vip(api, "PEK01", "SILVER")
    birthdays = data(await api.gql(DUE, {"f": "2026-06-15", "t": "2026-06-15"}, as_=PEK01))["greetingsDue"]
    assert len(birthdays) == 3
    national_day = data(await api.gql(DUE, {"f": NATIONAL_DAY, "t": NATIONAL_DAY}, as_=PEK01))["greetingsDue"]
    assert [g["recipients"] for g in national_day] == [3]

    assert (await set_consents(api, as_member(gold_withdrawn), greetings=False))["userErrors"] == []
    birthdays = data(await api.gql(DUE, {"f": "2026-06-15", "t": "2026-06-15"}, as_=PEK01))["greetingsDue"]
    assert sorted(g["member"]["id"] for g in birthdays) == sorted([gold["id"], standard["id"]])
    national_day = data(await api.gql(DUE, {"f": NATIONAL_DAY, "t": NATIONAL_DAY}, as_=PEK01))["greetingsDue"]
    assert [g["recipients"] for g in national_day] == [2]
    mark = data(await api.gql(GREETING, {"input": {"kind": "BIRTHDAY", "date": "2026-06-15", "memberId": gold_withdrawn["id"]}},
                              as_=PEK01))["greetingMarkSent"]
    assert problems(mark) == [("INVALID", ["input", "memberId"])]
