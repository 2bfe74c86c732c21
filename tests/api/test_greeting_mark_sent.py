"""greetingMarkSent over HTTP: staff mark a member's birthday greeting or their office's
festival greeting sent; greetingsDue shows when; marking again keeps the first mark;
a day that is not the greeting's, or a member or office outside the scope, is refused
and writes nothing."""

from __future__ import annotations

from care.models import GreetingSent
from tests.api.care_factories import ADMIN, NCB, PEK01, TSN01
from tests.api.conftest import as_member, data, enroll, error_codes

MARK = """mutation($input: GreetingMarkSentInput!) { greetingMarkSent(input: $input) {
  greeting { date kind festival sentAt sentBy member { id } } userErrors { code field message } } }"""
DUE = """query($f: Date!, $t: Date!, $o: String, $b: String) {
  greetingsDue(from: $f, to: $t, officeCode: $o, branchCode: $b) { date kind festival sentAt sentBy member { id } } }"""
NATIONAL_DAY = "2026-10-01"


async def mark(api, as_=PEK01, **input) -> dict:
    return data(await api.gql(MARK, {"input": input}, as_=as_))["greetingMarkSent"]


async def due(api, day: str, as_=PEK01, **variables) -> list[dict]:
    return data(await api.gql(DUE, {"f": day, "t": day, **variables}, as_=as_))["greetingsDue"]


def refused(payload: dict) -> list[tuple]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def test_a_birthday_greeting_marked_sent_shows_in_the_list_once(api):
    member = await enroll(api, "PEK01", birthDate="1980-06-15")
    first = await mark(api, kind="BIRTHDAY", date="2026-06-15", memberId=member["id"])
    assert first["userErrors"] == []
    greeting = first["greeting"]
    assert (greeting["kind"], greeting["member"]["id"], greeting["sentBy"]) == ("BIRTHDAY", member["id"], "office:office-test@PEK01")
    assert greeting["sentAt"] is not None
    again = await mark(api, as_=ADMIN, kind="BIRTHDAY", date="2026-06-15", memberId=member["id"])
    assert again["greeting"]["sentAt"] == greeting["sentAt"] and again["greeting"]["sentBy"] == greeting["sentBy"]
    assert await GreetingSent.all().count() == 1
    rows = await due(api, "2026-06-15")
    assert [(r["kind"], r["sentAt"], r["sentBy"]) for r in rows] == [("BIRTHDAY", greeting["sentAt"], greeting["sentBy"])]
    assert [r["sentAt"] for r in await due(api, "2027-06-15")] == [None]  # next year's is another greeting


async def test_a_festival_is_marked_for_one_office(api):
    payload = await mark(api, kind="FESTIVAL", date=NATIONAL_DAY)  # PEK01's own office
    assert payload["userErrors"] == [] and payload["greeting"]["festival"] == "National Day 国庆节"
    mine = await due(api, NATIONAL_DAY)
    assert [(r["festival"], r["sentAt"] is not None) for r in mine] == [("National Day 国庆节", True)]
    assert [r["sentAt"] for r in await due(api, NATIONAL_DAY, as_=TSN01)] == [None]
    assert [r["sentAt"] is not None for r in await due(api, NATIONAL_DAY, as_=ADMIN, o="PEK01")] == [True]
    assert [r["sentAt"] for r in await due(api, NATIONAL_DAY, as_=NCB)] == [None]  # a branch's offices each send their own
    # An admin names the office; an office may not name another.
    assert refused(await mark(api, as_=ADMIN, kind="FESTIVAL", date=NATIONAL_DAY)) == [("INVALID", ["input", "officeCode"])]
    assert (await mark(api, as_=ADMIN, kind="FESTIVAL", date=NATIONAL_DAY, officeCode="TSN01"))["userErrors"] == []
    assert [r["sentAt"] is not None for r in await due(api, NATIONAL_DAY, as_=TSN01)] == [True]
    result = await api.gql(MARK, {"input": {"kind": "FESTIVAL", "date": NATIONAL_DAY, "officeCode": "PVG01"}}, as_=PEK01)
    assert error_codes(result) == ["FORBIDDEN"]
    assert await GreetingSent.all().count() == 2


async def test_wrong_days_and_missing_or_hidden_members_are_refused_and_write_nothing(api):
    member = await enroll(api, "PEK01", birthDate="1980-06-15")
    elsewhere = await enroll(api, "TSN01", birthDate="1980-06-15")
    no_birthday = await enroll(api, "PEK01")
    assert refused(await mark(api, kind="BIRTHDAY", date="2026-06-16", memberId=member["id"])) == [("INVALID", ["input", "date"])]
    assert refused(await mark(api, kind="BIRTHDAY", date="2026-06-15", memberId=no_birthday["id"])) == [("INVALID", ["input", "date"])]
    assert refused(await mark(api, kind="BIRTHDAY", date="2026-06-15")) == [("INVALID", ["input", "memberId"])]
    assert refused(await mark(api, kind="BIRTHDAY", date="2026-06-15", memberId=elsewhere["id"])) == [("NOT_FOUND", ["input", "memberId"])]
    assert refused(await mark(api, kind="FESTIVAL", date="2026-10-02")) == [("INVALID", ["input", "date"])]
    assert refused(await mark(api, kind="FESTIVAL", date=NATIONAL_DAY, memberId=member["id"])) == [("INVALID", ["input", "memberId"])]
    assert error_codes(await api.gql(MARK, {"input": {"kind": "BIRTHDAY", "date": "2026-06-15", "memberId": member["id"]}},
                                     as_=as_member(member))) == ["FORBIDDEN"]
    assert await GreetingSent.all().count() == 0


async def test_a_february_29_birthday_is_marked_on_february_28_of_a_common_year(api):
    member = await enroll(api, "PEK01", birthDate="1992-02-29")
    assert (await mark(api, kind="BIRTHDAY", date="2027-02-28", memberId=member["id"]))["userErrors"] == []
    assert refused(await mark(api, kind="BIRTHDAY", date="2028-02-28", memberId=member["id"])) == [("INVALID", ["input", "date"])]
    assert (await mark(api, kind="BIRTHDAY", date="2028-02-29", memberId=member["id"]))["userErrors"] == []
