"""Member sign-in over HTTP: a password set by an admin or the member, sign-in by card
number or phone, lockout after 5 failures in a row (60 s, doubling), refresh tokens
rotated on every use (an old one refused, and its reuse revokes the sign-in), sign-out,
and a password change that ends the old sessions. The server's clock is fixed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from members.credentials import LOCK_SECONDS, MAX_FAILURES
from tests.api.conftest import USER_ERRORS, as_member, data, enroll, error_codes, set_status

SESSION = "session { accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt } member { id cardNumber }"
SIGN_IN = "mutation($input: MemberSignInInput!) { memberSignIn(input: $input) { %s %s } }" % (SESSION, USER_ERRORS)
REFRESH = "mutation($input: RefreshTokenInput!) { tokenRefresh(input: $input) { %s %s } }" % (SESSION, USER_ERRORS)
SIGN_OUT = "mutation($input: RefreshTokenInput!) { memberSignOut(input: $input) { signedOut %s } }" % USER_ERRORS
PASSWORD = "mutation($input: MemberPasswordSetInput!) { memberPasswordSet(input: $input) { member { id } %s } }" % USER_ERRORS
ME = "{ me { id cardNumber } }"
SECRET = "correct horse battery"


def fix_clock(api) -> datetime:
    api.clock.now = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=10)
    return api.clock.now


async def set_password(api, member: dict, password: str = SECRET, as_=("admin",), **input) -> dict:
    variables = {"input": {"memberId": member["id"], "newPassword": password, **input}}
    return data(await api.gql(PASSWORD, variables, as_=as_))["memberPasswordSet"]


async def sign_in(api, login: str, password: str = SECRET) -> dict:
    return data(await api.gql(SIGN_IN, {"input": {"login": login, "password": password}}))["memberSignIn"]


async def refresh(api, token: str) -> dict:
    return data(await api.gql(REFRESH, {"input": {"refreshToken": token}}))["tokenRefresh"]


def refused(payload: dict) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def test_a_member_signs_in_by_card_or_phone_and_the_token_reads_them(clocked_api):
    api = clocked_api
    now = fix_clock(api)
    member = await enroll(api, "PEK01", phone="+86 138 0013 8000")
    assert (await set_password(api, member))["userErrors"] == []
    for login in (member["cardNumber"], "+8613800138000"):
        payload = await sign_in(api, login)
        assert payload["userErrors"] == [] and payload["member"]["id"] == member["id"]
        session = payload["session"]
        assert datetime.fromisoformat(session["accessTokenExpiresAt"]) == now + timedelta(minutes=15)
        assert datetime.fromisoformat(session["refreshTokenExpiresAt"]) == now + timedelta(days=30)
        me = data(await api.gql(ME, token=session["accessToken"]))["me"]
        assert me == {"id": member["id"], "cardNumber": member["cardNumber"]}


async def test_five_failures_lock_the_sign_in_for_60_seconds_then_doubling(clocked_api):
    api = clocked_api
    now = fix_clock(api)
    member = await enroll(api, "PEK01")
    await set_password(api, member)
    card = member["cardNumber"]
    for _ in range(MAX_FAILURES - 1):  # 4 wrong passwords: refused, not locked
        assert refused(await sign_in(api, card, "wrong password!")) == ["INVALID_CREDENTIALS"]
    fifth = await sign_in(api, card, "wrong password!")
    assert refused(fifth) == ["LOCKED"] and "60 s" in fifth["userErrors"][0]["message"]
    assert refused(await sign_in(api, card)) == ["LOCKED"]  # even the right password, while locked
    api.clock.now = now + timedelta(seconds=LOCK_SECONDS + 1)
    sixth = await sign_in(api, card, "wrong password!")  # one more failure: 120 s
    assert refused(sixth) == ["LOCKED"] and "120 s" in sixth["userErrors"][0]["message"]
    api.clock.now = now + timedelta(seconds=LOCK_SECONDS + 1 + 121)
    assert (await sign_in(api, card))["userErrors"] == []  # unlocked; the count starts again
    for _ in range(MAX_FAILURES - 1):
        assert refused(await sign_in(api, card, "wrong password!")) == ["INVALID_CREDENTIALS"]


async def test_unknown_logins_and_members_without_a_password_read_as_wrong_credentials(clocked_api):
    api = clocked_api
    fix_clock(api)
    member = await enroll(api, "PEK01")
    for login in ("CA000000000", "+86 139 0000 0000", "not a login", member["cardNumber"]):
        payload = await sign_in(api, login)
        assert refused(payload) == ["INVALID_CREDENTIALS"] and payload["session"] is None
        assert payload["userErrors"][0]["message"] == "wrong login or password"


async def test_a_refresh_token_is_used_once_and_its_reuse_revokes_the_sign_in(clocked_api):
    api = clocked_api
    fix_clock(api)
    member = await enroll(api, "PEK01")
    await set_password(api, member)
    first = (await sign_in(api, member["cardNumber"]))["session"]["refreshToken"]
    second = (await refresh(api, first))["session"]["refreshToken"]
    third = (await refresh(api, second))["session"]["refreshToken"]
    assert len({first, second, third}) == 3
    assert refused(await refresh(api, second)) == ["INVALID_TOKEN"]  # used already: a replay
    assert refused(await refresh(api, third)) == ["INVALID_TOKEN"]  # the replay revoked the sign-in
    other = (await sign_in(api, member["cardNumber"]))["session"]["refreshToken"]  # another sign-in is untouched
    assert (await refresh(api, other))["userErrors"] == []
    assert refused(await refresh(api, "made-up")) == ["INVALID_TOKEN"]


async def test_sign_out_and_expiry_end_the_refresh_tokens(clocked_api):
    api = clocked_api
    now = fix_clock(api)
    member = await enroll(api, "PEK01")
    await set_password(api, member)
    token = (await sign_in(api, member["cardNumber"]))["session"]["refreshToken"]
    out = data(await api.gql(SIGN_OUT, {"input": {"refreshToken": token}}))["memberSignOut"]
    assert out == {"signedOut": True, "userErrors": []}
    unknown = data(await api.gql(SIGN_OUT, {"input": {"refreshToken": "no-such-token"}}))["memberSignOut"]
    assert (unknown["signedOut"], refused(unknown)) == (False, ["INVALID_TOKEN"])
    assert refused(await refresh(api, token)) == ["INVALID_TOKEN"]
    token = (await sign_in(api, member["cardNumber"]))["session"]["refreshToken"]
    api.clock.now = now + timedelta(days=30, seconds=1)
    assert refused(await refresh(api, token)) == ["INVALID_TOKEN"]


async def test_a_member_changes_their_password_with_the_current_one(clocked_api):
    api = clocked_api
    fix_clock(api)
    member = await enroll(api, "PEK01")
    await set_password(api, member)
    token = (await sign_in(api, member["cardNumber"]))["session"]["refreshToken"]
    mine = as_member(member)
    assert [(e["code"], e["field"]) for e in (await set_password(api, member, "a new secret!", as_=mine))["userErrors"]] == [
        ("INVALID_CREDENTIALS", ["input", "currentPassword"])
    ]
    wrong = await set_password(api, member, "a new secret!", as_=mine, currentPassword="not it at all")
    assert refused(wrong) == ["INVALID_CREDENTIALS"]
    short = await set_password(api, member, "short", as_=mine, currentPassword=SECRET)
    assert [(e["code"], e["field"]) for e in short["userErrors"]] == [("INVALID", ["input", "newPassword"])]
    assert (await set_password(api, member, "a new secret!", as_=mine, currentPassword=SECRET))["userErrors"] == []
    assert refused(await sign_in(api, member["cardNumber"])) == ["INVALID_CREDENTIALS"]
    assert (await sign_in(api, member["cardNumber"], "a new secret!"))["userErrors"] == []
    assert refused(await refresh(api, token)) == ["INVALID_TOKEN"]  # the old sessions ended


async def test_who_may_set_passwords_and_a_suspended_member_cannot_sign_in(clocked_api):
    api = clocked_api
    fix_clock(api)
    member, other = await enroll(api, "PEK01"), await enroll(api, "PEK01")
    variables = {"input": {"memberId": member["id"], "newPassword": SECRET}}
    assert error_codes(await api.gql(PASSWORD, variables)) == ["UNAUTHENTICATED"]
    assert error_codes(await api.gql(PASSWORD, variables, as_=("office", "PEK01"))) == ["FORBIDDEN"]
    assert refused(await set_password(api, member, as_=as_member(other))) == ["NOT_FOUND"]
    await set_password(api, member)
    await set_status(api, member, "SUSPENDED")
    assert refused(await sign_in(api, member["cardNumber"])) == ["MEMBER_NOT_ACTIVE"]


async def test_guesses_sent_at_once_cannot_pass_the_lockout(clocked_api):
    import asyncio

    api = clocked_api
    fix_clock(api)
    member = await enroll(api, "PEK01")
    await set_password(api, member)
    results = await asyncio.gather(*(sign_in(api, member["cardNumber"], f"guess number {n}") for n in range(20)))
    codes = [code for payload in results for code in refused(payload)]
    # Each attempt takes its place in the count before its check: at most 4 are answered
    # as wrong guesses, the rest are LOCKED (the 5th sets the lockout before checking).
    assert codes.count("INVALID_CREDENTIALS") <= MAX_FAILURES - 1
    assert codes.count("LOCKED") >= 20 - (MAX_FAILURES - 1)
    assert refused(await sign_in(api, member["cardNumber"])) == ["LOCKED"]


async def test_wrong_current_passwords_count_toward_the_lockout(clocked_api):
    api = clocked_api
    fix_clock(api)
    member = await enroll(api, "PEK01")
    await set_password(api, member)
    mine = as_member(member)
    for _ in range(MAX_FAILURES - 1):
        assert refused(await set_password(api, member, "a new secret!", as_=mine, currentPassword="wrong guess!")) == [
            "INVALID_CREDENTIALS"
        ]
    assert refused(await set_password(api, member, "a new secret!", as_=mine, currentPassword="wrong guess!")) == ["LOCKED"]
    assert refused(await sign_in(api, member["cardNumber"])) == ["LOCKED"]
