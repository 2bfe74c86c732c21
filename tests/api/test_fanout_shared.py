"""Shared execution of tierChanged results (schema.fanout), in process: subscribers
run through the schema as the WebSocket handlers run them (each operation with its
own channel), the feed's reader driven by hand. One execution and one JSON text per
event for subscribers with the same document, selection variables and visibility;
each subscriber still gets only what its own scope and filters let through. The last
test speaks both protocols to a real server."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest

from loyalty import reads
from loyalty.feed import EventFeed
from loyalty.tiers import override_tier
from members.access import Caller, Role, resolve_caller
from members.enums import Tier
from members.models import Member
from members.services import assign_region
from schema.build import build_schema
from schema.context import Context
from schema.fanout import OperationChannel, SharedSelections, current_channel, selection_variables
from tests.api.test_subscriptions import live, server  # noqa: F401 - fixtures: a live server
from tests.loyalty.test_feed import ADMIN, BEIJING, RULES, SHANGHAI, TODAY, joined, new_member, started_feed

QUERY = """subscription($after: String, $officeCode: String) {
  tierChanged(after: $after, officeCode: $officeCode) { cursor cardNumber toTier officeCode member { familyName } } }"""
SCHEMA = build_schema()


@dataclass
class Subscriber:
    """One subscription operation, run the way api.app's WebSocket handlers run it:
    results arrive as JSON text through the operation's channel."""

    received: asyncio.Queue = field(default_factory=asyncio.Queue)
    task: asyncio.Task | None = None

    async def next(self) -> str:
        return await asyncio.wait_for(self.received.get(), 5)

    async def texts(self, count: int) -> list[str]:
        return [await self.next() for _ in range(count)]


async def start(feed: EventFeed, shared: SharedSelections, settings, caller: Caller, query: str = QUERY,
                access_log=None, **variables) -> Subscriber:
    subscriber = Subscriber()
    context = Context(caller=caller, auth_error=None, timezone=settings.tz, settings=settings, rules=RULES,
                      extra={"event_feed": feed, "shared_selections": shared}, access_log=access_log)

    async def send(text: str) -> None:
        subscriber.received.put_nowait(text)

    async def run() -> None:
        current_channel.set(OperationChannel(SCHEMA, query, variables, None, send))
        stream = await SCHEMA.subscribe(query, variable_values=variables, context_value=context)
        async for result in stream:  # only errors come this way: results go through the channel
            subscriber.received.put_nowait(json.dumps({"data": result.data, "errors": [e.formatted for e in result.errors or []]}))

    subscriber.task = asyncio.create_task(run())
    return subscriber


async def stop(*subscribers: Subscriber) -> None:
    for subscriber in subscribers:
        subscriber.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await subscriber.task


async def change(member: Member, tier: Tier) -> str:
    _, event = await override_tier(ADMIN, str(member.id), tier, None, "test", rules=RULES, today=TODAY)
    return reads.cursor_for(event)


async def test_subscribers_with_the_same_document_share_one_execution_per_event(db):
    feed, shared = await started_feed(), SharedSelections()
    member = await new_member()
    # Different after: cursors (resumed at different points) share the selection too.
    subscribers = [await start(feed, shared, db, ADMIN, after=after) for after in (None, reads.cursor_at(0), None)]
    await joined(feed, 3)
    assert len(shared) == 1
    cursors = [await change(member, tier) for tier in (Tier.SILVER, Tier.GOLD)]
    await feed.read_log()
    got = [await s.texts(2) for s in subscribers]
    assert got[0] == got[1] == got[2]  # the same text, encoded once
    assert [json.loads(t)["data"]["tierChanged"]["cursor"] for t in got[0]] == cursors
    assert json.loads(got[0][1])["data"]["tierChanged"]["member"] == {"familyName": "Wang"}
    assert shared.executions == 2  # 2 events, 3 subscribers
    await stop(*subscribers)
    assert len(shared) == 0


async def test_subscribers_of_other_scopes_each_get_only_their_own(db):
    feed, shared = await started_feed(), SharedSelections()
    beijing, shanghai = await new_member(BEIJING), await new_member(SHANGHAI)
    callers = {code: await resolve_caller(Role.OFFICE, "t", code) for code in ("PEK01", "PVG01")}
    subscribers = {code: [await start(feed, shared, db, caller) for _ in range(2)] for code, caller in callers.items()}
    await joined(feed, 4)
    assert len(shared) == 2
    pek = [await change(beijing, Tier.SILVER)]
    pvg = [await change(shanghai, Tier.SILVER)]
    pek.append(await change(beijing, Tier.GOLD))
    await feed.read_log()
    for code, cursors in (("PEK01", pek), ("PVG01", pvg)):
        for subscriber in subscribers[code]:
            values = [json.loads(t)["data"]["tierChanged"] for t in await subscriber.texts(len(cursors))]
            assert [(v["cursor"], v["officeCode"]) for v in values] == [(c, code) for c in cursors]
            assert subscriber.received.empty()
    assert shared.executions == 3  # one per event and office, not per subscriber
    await stop(*subscribers["PEK01"], *subscribers["PVG01"])


async def test_the_same_document_under_another_visibility_is_executed_apart(db):
    """The member moved from PEK01 to PVG01 after the change: the office of the time still
    sees the change but no longer the member; the admin sees both. Sharing one result
    would show one of them the wrong thing."""
    feed, shared = await started_feed(), SharedSelections()
    member = await new_member(BEIJING)
    admin = await start(feed, shared, db, ADMIN)
    office = await start(feed, shared, db, await resolve_caller(Role.OFFICE, "t", "PEK01"))
    await joined(feed, 2)
    await change(member, Tier.SILVER)
    await assign_region(ADMIN, str(member.id), "PVG01", "moved")
    await feed.read_log()
    assert json.loads(await admin.next())["data"]["tierChanged"]["member"] == {"familyName": "Wang"}
    assert json.loads(await office.next())["data"]["tierChanged"]["member"] is None
    assert shared.executions == 2
    await stop(admin, office)


async def test_a_variable_the_selection_uses_splits_the_subscribers(db):
    query = """subscription($after: String, $withMember: Boolean!) {
      tierChanged(after: $after) { cursor member @include(if: $withMember) { familyName } } }"""
    feed, shared = await started_feed(), SharedSelections()
    member = await new_member()
    subscribers = [await start(feed, shared, db, ADMIN, query, withMember=flag) for flag in (True, False, True)]
    await joined(feed, 3)
    assert len(shared) == 2
    await change(member, Tier.SILVER)
    await feed.read_log()
    values = [json.loads(await s.next())["data"]["tierChanged"] for s in subscribers]
    assert [set(v) for v in values] == [{"cursor", "member"}, {"cursor"}, {"cursor", "member"}]
    assert shared.executions == 2
    await stop(*subscribers)


async def test_errors_of_a_field_the_role_may_not_see_are_shared_like_data(db):
    from members.partners import add_partner

    await add_partner("HOTELCO", "Hotel Co")
    partner = await resolve_caller(Role.PARTNER, "t", "HOTELCO")
    feed, shared = await started_feed(), SharedSelections()
    member = await new_member()
    query = "subscription { tierChanged { cursor reason } }"
    subscribers = [await start(feed, shared, db, partner, query) for _ in range(2)]
    await joined(feed, 2)
    await change(member, Tier.SILVER)
    await feed.read_log()
    first, second = [json.loads(await s.next()) for s in subscribers]
    assert first == second
    assert first["data"] is None and [e["extensions"]["code"] for e in first["errors"]] == ["FORBIDDEN"]
    assert shared.executions == 1
    await stop(*subscribers)


def test_filters_and_after_are_not_selection_variables():
    assert selection_variables(QUERY, None) == frozenset()
    assert selection_variables("subscription($a: String, $m: Boolean!) { tierChanged(after: $a) { cursor @skip(if: $m) } }", None) == {"m"}
    uses_fragment = "subscription($m: Boolean!) { tierChanged { ...F } } fragment F on TierChange { cursor @skip(if: $m) }"
    assert selection_variables(uses_fragment, None) == {"m"}


async def test_a_subscriber_leaving_while_it_executes_a_result_leaves_it_to_the_next():
    """The first subscriber to need a result executes it; if it leaves mid-execution (its
    connection closed), a subscriber waiting for the same result executes it itself."""
    from types import SimpleNamespace

    from schema.fanout import Selection

    gate, runs = asyncio.Event(), []

    class Gated(Selection):
        async def _execute(self, event):
            runs.append(event.id)
            await gate.wait()
            return f"result {event.id}"

    selection = Gated("key", None, None, SharedSelections())
    event = SimpleNamespace(id=7)
    first = asyncio.create_task(selection.result(event))
    second = asyncio.create_task(selection.result(event))
    async with asyncio.timeout(5):
        while not runs:
            await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    gate.set()
    assert await asyncio.wait_for(second, 5) == "result 7"
    assert runs == [7, 7]
    assert await selection.result(event) == "result 7" and runs == [7, 7]  # kept for the rest


async def test_one_shared_text_goes_out_in_each_connection_s_own_protocol_and_id(live):
    """Over real WebSockets: the same document on graphql-transport-ws and on graphql-ws,
    under different operation ids, gets the same result in each one's own frame."""
    from tests.api.conftest import enroll as enroll_through_api
    from tests.api.test_subscriptions import STAFF_FIELDS, subscribe

    member = await enroll_through_api(live, "PEK01")
    modern = await live.ws(("admin",))
    legacy = await live.ws(("admin",), protocol="graphql-ws")
    await subscribe(modern, id="a")
    await subscribe(legacy, id="b")
    change = await live.change(member, "GOLD")
    want = {**change, "fromTier": "STANDARD", "reason": "MANUAL", "officeCode": "PEK01", "branchCode": "NCB"}
    got_modern, got_legacy = await modern.message("a", 15), await legacy.message("b", 15)
    assert (got_modern["type"], got_modern["id"]) == ("next", "a")
    assert (got_legacy["type"], got_legacy["id"]) == ("data", "b")
    assert got_modern["payload"] == got_legacy["payload"] == {"data": {"tierChanged": want}}
    assert set(STAFF_FIELDS.split()) == set(want)


async def test_each_subscriber_of_a_shared_result_is_audited_as_the_reader(db):
    """One execution for two clerks of one office (same visibility): the access audit
    (members.access_log) has a row for each of them, not only for the one who ran it."""
    from members.access_log import AccessLog, PersonalField
    from members.models import MemberAccess

    feed, shared, log = await started_feed(), SharedSelections(), AccessLog()
    member = await new_member()
    query = "subscription { tierChanged { cardNumber member { p: phone phone birthDate } } }"
    clerks = [await resolve_caller(Role.OFFICE, clerk, "PEK01") for clerk in ("ann", "bo")]
    subscribers = [await start(feed, shared, db, clerk, query, access_log=log) for clerk in clerks]
    await joined(feed, 2)
    assert len(shared) == 1
    await change(member, Tier.SILVER)
    await feed.read_log()
    texts = [await s.next() for s in subscribers]
    assert texts[0] == texts[1] and shared.executions == 1
    await log.flush()
    rows = await MemberAccess.filter(member_id=member.id).order_by("actor").values_list("actor", "field_bits")
    assert rows == [("office:ann@PEK01", PersonalField.PHONE | PersonalField.BIRTH_DATE),
                    ("office:bo@PEK01", PersonalField.PHONE | PersonalField.BIRTH_DATE)]
    await stop(*subscribers)
