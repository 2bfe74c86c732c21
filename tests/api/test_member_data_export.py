"""memberDataExport over HTTP: everything held about a member (profile, consents, and one
section per table about the member) as one JSON document, for the member themself and
for an admin; nothing about another member and no secret; refusals for other callers."""

from __future__ import annotations

import json

from datetime import datetime, timezone

from members.access_log import PersonalField
from members.models import MemberAccess, MemberCredential, RefreshToken
from privacy.export import SECTIONS
from tests.api.care_factories import PEK01
from tests.api.conftest import as_member, data, enroll, error_codes
from tests.api.privacy_factories import EXPORT, export, member_with_everything


def _text(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False)


async def test_an_export_holds_every_section_about_the_member_and_nothing_about_another(api):
    member, _ = await member_with_everything(api, "Alpha")
    other, _ = await member_with_everything(api, "Bravo", birth_date="1975-03-02")
    # The access audit (written in batches by the app; here directly): a clerk's read of
    # the member's phone and email, and a read of the other member's.
    at = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
    await MemberAccess.create(at=at, actor="office:clerk-7@PEK01", role="office", member_id=int(member["id"]),
                              field_bits=PersonalField.PHONE | PersonalField.EMAIL)
    await MemberAccess.create(at=at, actor="office:clerk-7@PEK01", role="office", member_id=int(other["id"]),
                              field_bits=PersonalField.PHONE)
    document = await export(api, member)

    profile = document["member"]
    assert (profile["id"], profile["cardNumber"], profile["familyName"], profile["givenName"]) == (
        int(member["id"]), member["cardNumber"], "FamAlpha", "GivAlpha")
    assert (profile["email"], profile["birthDate"], profile["address"]["line"], profile["status"]) == (
        "alpha@example.com", "1980-06-15", "Alpha Road 1", "ACTIVE")
    assert profile["consents"]["greetings"] is True and profile["consents"]["marketing"] is True
    assert (profile["tier"], profile["office"]["code"], profile["branch"]["code"]) == ("GOLD", "PEK01", "NCB")
    # Every section, with the member's rows: enrolment + the desk check; two status changes; one consent;
    # the credential and its sign-in; the flight (and no bonus at STANDARD) and goodwill entries with their lots;
    # the override; the claim; the call; the complaint (two history rows); the goodwill; the greeting; no erasure.
    counts = {section.name: len(document[section.name]) for section in SECTIONS}
    assert counts == {
        "regionHistory": 2, "statusChanges": 2, "consentChanges": 1, "credential": 1, "refreshTokens": 1,
        "ledger": 2, "creditLots": 2, "tierHistory": 1, "milesClaims": 1, "careCalls": 1, "feedback": 1,
        "goodwillCredits": 1, "greetingsSent": 1, "erasure": 0, "accessLog": 1,
    }
    assert {row["memberId"] for section in SECTIONS if section.name != "erasure" for row in document[section.name]} == {
        int(member["id"])}
    assert document["careCalls"][0]["notes"] == "Called Alpha, wants a window seat"
    assert [h["toStatus"] for h in document["feedback"][0]["history"]] == ["OPEN", "RESOLVED"]
    assert document["ledger"][0]["kind"] == "FLIGHT" and "fingerprint" not in document["ledger"][0]
    (read,) = document["accessLog"]
    assert (read["at"], read["actor"], read["role"], read["partnerCode"], read["fieldsRead"]) == (
        "2026-01-05T09:30:00+00:00", "office:clerk-7@PEK01", "office", None, ["PHONE", "EMAIL"])

    text = _text(document)
    for value in (other["cardNumber"], "Bravo", "bravo@example.com", "1975-03-02", other["phone"]):
        assert value not in text
    # No secret: neither the password's hash nor the refresh token's.
    credential = await MemberCredential.get(member_id=int(member["id"]))
    token = await RefreshToken.get(member_id=int(member["id"]))
    assert credential.password_hash not in text and token.token_hash not in text
    assert "passwordHash" not in text and "tokenHash" not in text


async def test_the_member_exports_their_own_data_and_no_one_else_s(api):
    member = await enroll(api, "PEK01")
    other = await enroll(api, "PEK01")
    own = await export(api, as_=as_member(member))
    assert own["member"]["cardNumber"] == member["cardNumber"]
    by_admin = await export(api, member)
    assert {k: v for k, v in own.items() if k != "exportedAt"} == {k: v for k, v in by_admin.items() if k != "exportedAt"}
    assert (await export(api, member, as_=as_member(member)))["member"]["id"] == int(member["id"])
    assert await export(api, other, as_=as_member(member)) is None  # another member's: null, as if unknown
    assert await export(api, {"id": "99999999"}) is None
    assert await export(api, {"id": "not-an-id"}) is None


async def test_staff_partners_and_anonymous_callers_are_refused(api):
    member = await enroll(api, "PEK01")
    for role in (PEK01, ("branch", "NCB"), ("airline",), ("partner", "HOTELCO")):
        assert error_codes(await api.gql(EXPORT, {"id": member["id"]}, as_=role)) == ["FORBIDDEN"]
    assert error_codes(await api.gql(EXPORT, {"id": member["id"]})) == ["UNAUTHENTICATED"]
    assert error_codes(await api.gql(EXPORT, {}, as_=("admin",))) == ["INVALID"]  # an admin names the member
    assert data(await api.gql(EXPORT, {"id": member["id"]}, as_=("admin",)))["memberDataExport"] is not None
