"""tierChanged over a REAL WebSocket: uvicorn in a subprocess on a loopback port, on the
session's database (SQLite file or PostgreSQL), spoken to in graphql-transport-ws.

Scope per role, partner fields, replay then live with commits during the replay, resume
after a disconnect, a slow subscriber dropped without costing the others, tokens
checked at connection_init. Every wait is for a message, with a timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import httpx
import pytest
from tortoise.transactions import in_transaction

from loyalty import reads
from loyalty.events import record_tier_change
from loyalty.models import TierChangeReason
from loyalty.rules import load_rules
from loyalty.tiers import override_tier
from members.access import Caller, Role
from members.enums import Tier
from members.models import Member
from members.partners import add_partner, disable_partner
from schema.subscriptions import SLOW_SUBSCRIBER_CLOSE_CODE
from tests.api.conftest import Api, as_member, data, enroll, error_codes
from tests.live import LiveServer, WsClient, WsClosed, start_server

# Before the first event: with the clean log of the `db` fixture, `after: START`
# delivers every event of the test whenever the subscription starts (no race).
START = reads.cursor_at(0)
SUBSCRIBE = """subscription($after: String, $officeCode: String, $branchCode: String, $memberId: ID) {
  tierChanged(after: $after, officeCode: $officeCode, branchCode: $branchCode, memberId: $memberId) { %s } }"""
STAFF_FIELDS = "cursor cardNumber fromTier toTier reason officeCode branchCode"
PARTNER_FIELDS = "cursor cardNumber fromTier toTier effectiveAt validUntil"
# ~3 kB a message: a client that stops reading pushes back on the server after a few dozen.
BULKY_FIELDS = "cursor cardNumber " + " ".join(f"c{n}: cardNumber" for n in range(150))
OVERRIDE = """mutation($input: TierOverrideInput!) {
  tierOverride(input: $input) { tierChange { cursor cardNumber toTier } userErrors { code message } } }"""
ADMIN = Caller(Role.ADMIN, "test")
RULES = load_rules()
TODAY = date(2026, 11, 22)
TIMEOUT = 15.0


def _env(settings, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url, "LOYALTY_JWT_SECRET": settings.jwt_secret, "REDIS_URL": "",
        **extra,
    }


@pytest.fixture(scope="module")
def server(database):
    live = start_server(_env(database))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def tight_server(database):
    """A server that feels back-pressure early: small socket send buffers, 10 live
    events at most per subscriber, and a fast poll."""
    live = start_server(_env(database, LOYALTY_FEED_QUEUE_SIZE="10", LOYALTY_FEED_POLL_SECONDS="0.05"), send_buffer=4096)
    yield live
    live.stop()


@dataclass
class Live(Api):
    """The `api` helpers (gql, token; conftest's enroll, set_tier) against a live server,
    plus WebSocket clients."""

    server: LiveServer | None = None
    clients: list[WsClient] = field(default_factory=list)

    async def ws(self, as_: tuple | None = None, *, token: str | None = None, **options) -> WsClient:
        client = await WsClient.open(self.server.ws_url, self.token(*as_) if as_ else token, **options)
        self.clients.append(client)
        return client

    async def change(self, member: dict, tier: str) -> dict:
        """Override the member's tier through the server; the tierChange it wrote."""
        result = data(await self.gql(OVERRIDE, {"input": {"memberId": member["id"], "tier": tier, "reason": "test"}}, as_=("admin",)))
        assert result["tierOverride"]["userErrors"] == []
        return result["tierOverride"]["tierChange"]


async def _live(db, server: LiveServer):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        live = Live(client=client, settings=db, server=server)
        try:
            yield live
        finally:
            for ws in live.clients:
                await ws.close()


@pytest.fixture
async def live(db, server):
    async for value in _live(db, server):
        yield value


@pytest.fixture
async def tight(db, tight_server):
    async for value in _live(db, tight_server):
        yield value


async def subscribe(client: WsClient, id: str = "s", fields: str = STAFF_FIELDS, after: str | None = START, **filters) -> None:
    await client.subscribe(id, SUBSCRIBE % fields, {"after": after, **filters})


async def changes(client: WsClient, count: int, id: str = "s", timeout: float = TIMEOUT) -> list[dict]:
    """The next `count` tierChanged values of operation `id`."""
    got = []
    for _ in range(count):
        payload = await client.event(id, timeout)
        assert not payload.get("errors"), payload
        got.append(payload["data"]["tierChanged"])
    return got


def cards_and_tiers(values: list[dict]) -> list[tuple[str, str]]:
    return [(v["cardNumber"], v["toTier"]) for v in values]


async def domain_change(member: dict, tier: Tier) -> str:
    """A tier change written in this process, as a job elsewhere would: the server only
    learns of it from the log. Its cursor."""
    _, event = await override_tier(ADMIN, member["id"], tier, None, "job", rules=RULES, today=TODAY)
    return reads.cursor_for(event)


# ---- connection_init --------------------------------------------------------------


@pytest.mark.parametrize("token", ["missing", "garbage", "expired", "wrong key", "disabled partner"])
async def test_a_bad_token_is_refused_at_connection_init(live, token):
    await add_partner("GONE", "Gone Partner")
    await disable_partner("GONE")
    value = {
        "missing": None,
        "garbage": "not.a.token",
        "expired": live.token("admin", ttl=-120),
        "wrong key": live.token("admin") + "x",
        "disabled partner": live.token("partner", "GONE"),
    }[token]
    with pytest.raises(WsClosed) as refused:
        await live.ws(token=value)
    assert refused.value.code == 4403


async def test_subscribing_before_connection_init_closes_with_4401(live):
    from websockets.asyncio.client import connect

    async with connect(live.server.ws_url, subprotocols=["graphql-transport-ws"]) as raw:
        await raw.send('{"id": "s", "type": "subscribe", "payload": {"query": "subscription { tierChanged { cursor } }"}}')
        await raw.wait_closed()
        assert raw.close_code == 4401


async def test_graphql_ws_protocol_works_and_checks_the_token_too(live):
    with pytest.raises(WsClosed):
        await live.ws(token="not.a.token", protocol="graphql-ws")
    member = await enroll(live, "PEK01")
    client = await live.ws(("admin",), protocol="graphql-ws")
    await subscribe(client)
    change = await live.change(member, "GOLD")
    assert await changes(client, 1) == [{**change, "fromTier": "STANDARD", "reason": "MANUAL", "officeCode": "PEK01", "branchCode": "NCB"}]


# ---- scope ------------------------------------------------------------------------


async def test_each_role_receives_only_the_changes_its_scope_shows(live):
    await add_partner("HOTELCO", "Hotel Co")
    a = await enroll(live, "PEK01")  # branch NCB
    b = await enroll(live, "TSN01")  # branch NCB
    c = await enroll(live, "PVG01")  # branch ECB
    roles = {
        "admin": (("admin",), STAFF_FIELDS),
        "office PEK01": (("office", "PEK01"), STAFF_FIELDS),
        "office PVG01": (("office", "PVG01"), STAFF_FIELDS),
        "branch NCB": (("branch", "NCB"), STAFF_FIELDS),
        "member a": (as_member(a), STAFF_FIELDS),
        "partner": (("partner", "HOTELCO"), PARTNER_FIELDS),
        "airline": (("airline",), PARTNER_FIELDS),
    }
    # Live: subscribed before the changes. Replay: subscribed after them (below).
    clients = {name: await live.ws(as_) for name, (as_, _) in roles.items()}
    for name, (_, fields) in roles.items():
        await subscribe(clients[name], fields=fields)
    steps = [(a, "SILVER"), (b, "SILVER"), (c, "SILVER"), (a, "GOLD"), (b, "GOLD"), (c, "GOLD"), (a, "PLATINUM"), (c, "PLATINUM")]
    for member, tier in steps:
        await live.change(member, tier)
    everything = [(m["cardNumber"], t) for m, t in steps]
    expected = {
        "admin": everything, "partner": everything, "airline": everything,
        "office PEK01": [(a["cardNumber"], t) for t in ("SILVER", "GOLD", "PLATINUM")],
        "member a": [(a["cardNumber"], t) for t in ("SILVER", "GOLD", "PLATINUM")],
        "office PVG01": [(c["cardNumber"], t) for t in ("SILVER", "GOLD", "PLATINUM")],
        "branch NCB": [(a["cardNumber"], "SILVER"), (b["cardNumber"], "SILVER"), (a["cardNumber"], "GOLD"),
                       (b["cardNumber"], "GOLD"), (a["cardNumber"], "PLATINUM")],
    }
    # Each stream is in log order and each one's last expected change comes after every
    # change it must not see but the very last (c PLATINUM), so the counts are exact.
    for name, want in expected.items():
        assert cards_and_tiers(await changes(clients[name], len(want))) == want, name
    replaying = {name: await live.ws(as_) for name, (as_, _) in roles.items()}
    for name, (_, fields) in roles.items():
        await subscribe(replaying[name], id="again", fields=fields)
    for name, want in expected.items():
        assert cards_and_tiers(await changes(replaying[name], len(want), id="again")) == want, name
    partner_change = (await changes(await _subscribed(live, ("partner", "HOTELCO"), PARTNER_FIELDS), 1))[0]
    assert set(partner_change) == {"cursor", "cardNumber", "fromTier", "toTier", "effectiveAt", "validUntil"}


async def _subscribed(live: Live, as_: tuple, fields: str, **filters) -> WsClient:
    client = await live.ws(as_)
    await subscribe(client, fields=fields, **filters)
    return client


@pytest.mark.parametrize("role", [("partner", "HOTELCO"), ("airline",)])
@pytest.mark.parametrize("fieldname", ["reason", "officeCode", "branchCode", "member { familyName }"])
async def test_a_partner_sees_only_card_tiers_and_dates(live, role, fieldname):
    await add_partner("HOTELCO", "Hotel Co")
    member = await enroll(live, "PEK01")
    client = await _subscribed(live, role, f"cursor cardNumber {fieldname}")
    await live.change(member, "GOLD")
    payload = await client.event("s", TIMEOUT)
    if fieldname.startswith("member"):
        # TierChange.member is nullable (null once the member moved out of scope): refused, it reads as null.
        assert payload["data"]["tierChanged"]["member"] is None
    else:
        assert payload["data"] is None
    assert error_codes(payload) == ["FORBIDDEN"]


async def test_a_filter_outside_the_scope_is_forbidden_and_filters_narrow(live):
    a, b = await enroll(live, "PEK01"), await enroll(live, "TSN01")
    outside = await _subscribed(live, ("office", "PEK01"), STAFF_FIELDS, officeCode="PVG01")
    message = await outside.message("s", TIMEOUT)
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["FORBIDDEN"], message
    by_office = await _subscribed(live, ("branch", "NCB"), STAFF_FIELDS, officeCode="TSN01")
    by_member = await _subscribed(live, ("admin",), STAFF_FIELDS, memberId=a["id"])
    for member, tier in [(a, "SILVER"), (b, "SILVER"), (a, "GOLD"), (b, "GOLD")]:
        await live.change(member, tier)
    assert cards_and_tiers(await changes(by_office, 2)) == [(b["cardNumber"], "SILVER"), (b["cardNumber"], "GOLD")]
    assert cards_and_tiers(await changes(by_member, 2)) == [(a["cardNumber"], "SILVER"), (a["cardNumber"], "GOLD")]


async def test_the_member_of_each_change_is_read_afresh(live):
    """One connection lives for hours: the member must not come from a cache of the
    first event."""
    member = await enroll(live, "PEK01")
    client = await _subscribed(live, ("admin",), "toTier member { tier }")
    got = []
    for tier in ("SILVER", "GOLD", "PLATINUM"):  # `member` is the member now: one change at a time
        await live.change(member, tier)
        got += await changes(client, 1)
    assert [(g["toTier"], g["member"]["tier"]) for g in got] == [("SILVER", "SILVER"), ("GOLD", "GOLD"), ("PLATINUM", "PLATINUM")]


# ---- the log drives delivery ------------------------------------------------------


async def test_changes_written_elsewhere_arrive_and_rolled_back_ones_never_do(live):
    a, b = await enroll(live, "PEK01"), await enroll(live, "PEK01")
    client = await _subscribed(live, ("office", "PEK01"), STAFF_FIELDS)
    row = await Member.get(id=a["id"])
    with pytest.raises(RuntimeError):
        async with in_transaction() as connection:
            await record_tier_change(connection, row, to_tier=Tier.GOLD, reason=TierChangeReason.MANUAL,
                                     since=TODAY, valid_until=None, actor="test")
            raise RuntimeError("rolled back")
    cursor = await domain_change(b, Tier.SILVER)  # this process, not the server, wrote it
    (got,) = await changes(client, 1)
    assert (got["cardNumber"], got["toTier"], got["cursor"]) == (b["cardNumber"], "SILVER", cursor)


async def test_without_after_only_changes_from_the_subscription_on_arrive(live):
    member = await enroll(live, "PEK01")
    before = await live.change(member, "SILVER")
    client = await _subscribed(live, ("admin",), STAFF_FIELDS, after=None)
    # The subscription starts at some moment after `before`: change until one arrives.
    committed = []
    for tier in ["GOLD", "PLATINUM", "SILVER"] * 5:
        committed.append(await live.change(member, tier))
        try:
            first = await client.event("s", 2.0)
            break
        except TimeoutError:
            continue
    else:
        pytest.fail(f"none of {len(committed)} changes arrived")
    assert first["data"]["tierChanged"]["cursor"] in [c["cursor"] for c in committed]
    assert first["data"]["tierChanged"]["cursor"] != before["cursor"]
    after = await live.change(member, "STANDARD")
    assert (await changes(client, 1))[0]["cursor"] == after["cursor"]


# ---- replay then live, resume ------------------------------------------------------


async def test_replay_then_live_with_changes_committed_during_the_replay(tight):
    """150 changes in the log; two subscribers that are not reading, so the server is
    stuck in their replay: one from the start (stuck in the first of two pages), one
    from the 100th change (stuck in its last page). 20 more changes are committed
    meanwhile; then they read: every change exactly once, in order, then live ones."""
    members = [await enroll(tight, "PEK01") for _ in range(3)]
    tiers = [Tier.SILVER, Tier.GOLD, Tier.PLATINUM]
    committed = [await domain_change(members[n % 3], tiers[n % 3]) for n in range(150)]
    from_start = await tight.ws(("admin",), reading=False, receive_buffer=4096)
    from_middle = await tight.ws(("admin",), reading=False, receive_buffer=4096)
    await subscribe(from_start, fields=BULKY_FIELDS)
    await subscribe(from_middle, fields=BULKY_FIELDS, after=committed[99])
    for n in range(20):
        committed.append((await tight.change(members[n % 3], ["GOLD", "PLATINUM", "SILVER"][n % 3]))["cursor"])
    for client in (from_start, from_middle):
        client.start_reading()
    assert [c["cursor"] for c in await changes(from_start, 170)] == committed
    assert [c["cursor"] for c in await changes(from_middle, 70)] == committed[100:]
    live_ones = [(await tight.change(members[0], tier))["cursor"] for tier in ("SILVER", "GOLD")]
    for client in (from_start, from_middle):
        assert [c["cursor"] for c in await changes(client, 2)] == live_ones


async def test_a_disconnected_subscriber_resumes_with_after_and_loses_nothing(live):
    member = await enroll(live, "PEK01")
    client = await _subscribed(live, ("office", "PEK01"), STAFF_FIELDS)
    first = [await live.change(member, tier) for tier in ("SILVER", "GOLD")]
    got = await changes(client, 2)
    assert [g["cursor"] for g in got] == [f["cursor"] for f in first]
    await client.close()
    missed = [await live.change(member, tier) for tier in ("PLATINUM", "SILVER")]
    again = await _subscribed(live, ("office", "PEK01"), STAFF_FIELDS, after=got[-1]["cursor"])
    later = await live.change(member, "GOLD")
    resumed = await changes(again, 3)
    assert [r["cursor"] for r in resumed] == [m["cursor"] for m in missed] + [later["cursor"]]


async def test_a_slow_subscriber_is_dropped_with_a_close_code_and_costs_the_others_nothing(tight):
    """Queues hold 10 live events on this server. A subscriber that stops reading is
    closed with 4509 once its queue is full; the one that reads gets every change at
    once, and the slow one resumes from its last cursor without losing any."""
    member = await enroll(tight, "PEK01")
    fast = await _subscribed(tight, ("admin",), STAFF_FIELDS)
    slow = await tight.ws(("admin",), receive_buffer=4096)
    await subscribe(slow, fields=BULKY_FIELDS)
    committed = [(await tight.change(member, "SILVER"))["cursor"]]
    assert [c["cursor"] for c in await changes(slow, 1)] == committed  # both live now
    assert [c["cursor"] for c in await changes(fast, 1)] == committed
    await slow.stop_reading()
    for n in range(100):
        committed.append((await tight.change(member, ["GOLD", "PLATINUM", "SILVER"][n % 3]))["cursor"])
        assert (await changes(fast, 1))[0]["cursor"] == committed[-1]
    slow.start_reading()
    received = committed[:1]
    with pytest.raises(WsClosed) as closed:
        while True:
            received.append((await changes(slow, 1))[0]["cursor"])
    assert closed.value.code == SLOW_SUBSCRIBER_CLOSE_CODE
    assert received == committed[: len(received)] and len(received) < len(committed)
    resumed = await _subscribed(tight, ("admin",), STAFF_FIELDS, after=received[-1])
    rest = await changes(resumed, len(committed) - len(received))
    assert received + [r["cursor"] for r in rest] == committed


# ---- settings ---------------------------------------------------------------------


def test_the_feed_settings_are_read_and_checked():
    from api.settings import SettingsError, load_settings

    assert (load_settings(environ={}, dotenv=None).feed_poll_seconds, load_settings(environ={}, dotenv=None).feed_queue_size) == (0.25, 1000)
    tuned = load_settings(environ={"LOYALTY_FEED_POLL_SECONDS": "2.5", "LOYALTY_FEED_QUEUE_SIZE": "50"}, dotenv=None)
    assert (tuned.feed_poll_seconds, tuned.feed_queue_size) == (2.5, 50)
    for name, value in [("LOYALTY_FEED_POLL_SECONDS", "0"), ("LOYALTY_FEED_POLL_SECONDS", "-1"), ("LOYALTY_FEED_POLL_SECONDS", "soon"),
                        ("LOYALTY_FEED_POLL_SECONDS", "nan"), ("LOYALTY_FEED_QUEUE_SIZE", "0"), ("LOYALTY_FEED_QUEUE_SIZE", "1.5")]:
        with pytest.raises(SettingsError, match=name):
            load_settings(environ={name: value}, dotenv=None)


async def test_a_connection_is_closed_when_its_token_expires_and_resumes_with_a_fresh_one(live):
    """A token is accepted until exp + 30 s of clock leeway. One that has 3 s of that left
    is accepted at connection_init; the connection is then closed with 4401 when it
    runs out, and a fresh token resumes with after: without losing the change between."""
    from api.app import TOKEN_EXPIRED_CLOSE_CODE
    from api.auth import LEEWAY_SECONDS

    member = await enroll(live, "PEK01")
    expiring = await live.ws(token=live.token("admin", ttl=3 - LEEWAY_SECONDS))
    await subscribe(expiring)
    first = await live.change(member, "SILVER")
    assert [c["cursor"] for c in await changes(expiring, 1)] == [first["cursor"]]
    with pytest.raises(WsClosed) as closed:
        await expiring.message("s", timeout=TIMEOUT)
    assert closed.value.code == TOKEN_EXPIRED_CLOSE_CODE
    missed = await live.change(member, "GOLD")
    resumed = await _subscribed(live, ("admin",), STAFF_FIELDS, after=first["cursor"])
    assert [c["cursor"] for c in await changes(resumed, 1)] == [missed["cursor"]]


async def test_a_long_lived_token_keeps_its_connection(live):
    """The expiry timer does not close a connection whose token is still good."""
    member = await enroll(live, "PEK01")
    client = await live.ws(("admin",))
    await subscribe(client)
    cursors = [(await live.change(member, tier))["cursor"] for tier in ("SILVER", "GOLD")]
    assert [c["cursor"] for c in await changes(client, 2)] == cursors
    assert client.closed is None
