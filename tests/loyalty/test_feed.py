"""The tier-change feed (loyalty.feed), in process, with the reader driven by hand
(`read_log()`), so that every interleaving below happens for certain: catch-up and
live join with no gap and no duplicate, one log read per batch for all subscribers,
scope per subscriber by the same rule as the tierChanges query, bounded queues."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from tortoise import connections

from loyalty import reads
from loyalty.feed import EventFeed, SubscriberTooSlow, redis_channel
from loyalty.models import TierEvent
from loyalty.rules import load_rules
from loyalty.tiers import override_tier
from members.access import Caller, Role, resolve_caller
from members.addresses import Address
from members.enums import Tier
from members.models import Member
from members.services import Enrolment, enroll

RULES = load_rules()
TODAY = date(2026, 11, 22)
ADMIN = Caller(Role.ADMIN, "t")
BEIJING = Address(country="CN", province="Beijing", city="Beijing")  # PEK01, branch NCB
TIANJIN = Address(country="CN", province="Tianjin", city="Tianjin")  # TSN01, branch NCB
SHANGHAI = Address(country="CN", province="Shanghai", city="Shanghai")  # PVG01, branch ECB
TIERS = [Tier.SILVER, Tier.GOLD, Tier.PLATINUM]


async def new_member(address: Address = BEIJING) -> Member:
    return await enroll(ADMIN, Enrolment("Wang", "Fang", address), today=date(2026, 1, 10))


async def change(member: Member, tier: Tier) -> TierEvent:
    _, event = await override_tier(ADMIN, str(member.id), tier, None, "test", rules=RULES, today=TODAY)
    return event


async def changes(member: Member, count: int) -> list[int]:
    return [(await change(member, TIERS[n % 3])).id for n in range(count)]


async def started_feed(**options) -> EventFeed:
    """A feed whose reader runs only when the test calls read_log()."""
    feed = EventFeed(poll_interval=3600, **options)
    await feed.read_log()
    return feed


async def joined(feed: EventFeed, count: int) -> None:
    """Wait (5 s at most) until `count` subscribers follow the live stream."""
    async with asyncio.timeout(5):
        while feed.subscribers < count:
            await asyncio.sleep(0.001)


async def take(stream, count: int) -> list[int]:
    return [(await asyncio.wait_for(anext(stream), 5)).id for _ in range(count)]


async def test_changes_the_catch_up_read_are_not_repeated_when_handed_out_live(db):
    member = await new_member()
    feed = await started_feed()
    committed = await changes(member, 3)  # not yet read by the feed's reader
    stream = feed.follow(ADMIN, after=reads.cursor_at(0))
    assert await take(stream, 3) == committed  # from the catch-up read of the log
    pending = asyncio.ensure_future(anext(stream))
    await joined(feed, 1)  # at the reader's old head, though it has seen the three
    later = await changes(member, 1)
    await feed.read_log()  # hands out all four
    assert (await asyncio.wait_for(pending, 5)).id == later[0]
    await stream.aclose()


async def test_changes_handed_out_while_the_last_page_is_consumed_are_not_lost(db):
    member = await new_member()
    feed = await started_feed()
    committed = await changes(member, 3)
    stream = feed.follow(ADMIN, after=reads.cursor_at(0))
    assert await take(stream, 1) == committed[:1]  # suspended inside its one and only page
    committed += await changes(member, 2)
    await feed.read_log()  # handed out before the subscriber joined the live stream
    assert await take(stream, 4) == committed[1:]
    committed += await changes(member, 1)
    await feed.read_log()
    assert await take(stream, 1) == committed[5:]
    await stream.aclose()


async def test_a_replay_of_several_pages_then_live(db):
    member = await new_member()
    committed = await changes(member, 230)
    feed = await started_feed()
    stream = feed.follow(ADMIN, after=reads.cursor_at(committed[9]))
    assert await take(stream, 150) == committed[10:160]
    committed += await changes(member, 5)
    await feed.read_log()
    assert await take(stream, 75) == committed[160:]
    await stream.aclose()


async def test_without_after_the_stream_starts_at_the_head(db):
    member = await new_member()
    await changes(member, 2)
    feed = await started_feed()
    stream = feed.follow(ADMIN)
    pending = asyncio.ensure_future(anext(stream))
    await joined(feed, 1)
    later = await changes(member, 1)
    await feed.read_log()
    assert (await asyncio.wait_for(pending, 5)).id == later[0]
    await stream.aclose()


async def test_one_log_read_serves_every_subscriber(db, monkeypatch):
    member = await new_member()
    feed = await started_feed()
    streams = [feed.follow(ADMIN) for _ in range(50)]
    waiting = [asyncio.ensure_future(anext(s)) for s in streams]
    await joined(feed, 50)
    (committed,) = await changes(member, 1)
    connection = connections.get("default")
    queries = []
    for name in ("execute_query", "execute_query_dict"):
        original = getattr(connection, name)

        async def counted(*args, _original=original, **kwargs):
            queries.append(args[0])
            return await _original(*args, **kwargs)

        monkeypatch.setattr(connection, name, counted)
    await feed.read_log()
    assert [(await asyncio.wait_for(w, 5)).id for w in waiting] == [committed] * 50
    assert len(queries) == 1, queries  # 50 subscribers, one read of the log
    for s in streams:
        await s.aclose()


@pytest.mark.parametrize(
    "role, scope, office, branch",
    [
        (Role.ADMIN, None, None, None), (Role.AIRLINE, None, None, None), (Role.PARTNER, "HOTELCO", None, None),
        (Role.OFFICE, "PEK01", None, None), (Role.OFFICE, "PVG01", None, None),
        (Role.BRANCH, "NCB", None, None), (Role.BRANCH, "NCB", "TSN01", None), (Role.ADMIN, None, None, "ECB"),
        (Role.MEMBER, None, None, None),
    ],
)
async def test_live_scope_is_the_scope_of_the_tier_changes_query(db, role, scope, office, branch):
    from members.partners import add_partner

    await add_partner("HOTELCO", "Hotel Co")
    members = [await new_member(a) for a in (BEIJING, TIANJIN, SHANGHAI)]
    caller = await resolve_caller(role, str(members[0].id) if role is Role.MEMBER else "t", scope)
    feed = await started_feed()
    stream = feed.follow(caller, office_code=office, branch_code=branch)
    pending = asyncio.ensure_future(anext(stream))
    await joined(feed, 1)
    for n in range(6):
        await change(members[n % 3], TIERS[n % 3])
    await feed.read_log()
    page = await reads.tier_changes(caller, reads.cursor_at(0), 100, office, branch)
    expected = [e.id for e in page.items]
    assert 0 < len(expected) <= 6
    got = [(await asyncio.wait_for(pending, 5)).id] + await take(stream, len(expected) - 1)
    assert got == expected
    await stream.aclose()


async def test_a_full_queue_drops_that_subscriber_only(db):
    member = await new_member()
    feed = await started_feed(queue_size=3)
    dropped = []
    told = asyncio.Event()

    async def on_slow():
        dropped.append(True)
        told.set()

    reader = feed.follow(ADMIN)
    sleeper = feed.follow(ADMIN, on_slow=on_slow)
    first = [asyncio.ensure_future(anext(reader)), asyncio.ensure_future(anext(sleeper))]
    await joined(feed, 2)
    committed = await changes(member, 1)
    await feed.read_log()
    assert [(await asyncio.wait_for(f, 5)).id for f in first] == committed * 2
    for _ in range(4):  # the sleeper takes nothing more: 4 changes for a queue of 3
        committed += await changes(member, 1)
        await feed.read_log()
        assert await take(reader, 1) == committed[-1:]
    await asyncio.wait_for(told.wait(), 5)
    assert dropped == [True]
    assert await take(sleeper, 3) == committed[1:4]  # what was queued, then the drop
    with pytest.raises(SubscriberTooSlow):
        await anext(sleeper)
    resumed = feed.follow(ADMIN, after=reads.cursor_at(committed[3]))
    assert await take(resumed, 1) == committed[4:]
    for s in (reader, resumed):
        await s.aclose()


async def test_an_announcement_wakes_the_reader_before_its_poll(db):
    member = await new_member()
    feed = EventFeed(poll_interval=3600)
    async with feed.running():
        stream = feed.follow(ADMIN, after=reads.cursor_at(0))
        pending = asyncio.ensure_future(anext(stream))
        (committed,) = await changes(member, 1)
        await feed.announce()
        assert (await asyncio.wait_for(pending, 5)).id == committed
        await stream.aclose()


def test_the_redis_channel_is_named_after_the_database_number():
    assert redis_channel("redis://127.0.0.1:6379/15") == "loyalty:tier-events:db15"
    assert redis_channel("redis://127.0.0.1:6379") == "loyalty:tier-events:db0"
    assert redis_channel("unix:///run/redis.sock?db=3") == "loyalty:tier-events:db3"


async def test_an_unanswering_redis_never_delays_the_announcer(db):
    """A Redis that accepts connections and never answers (a hung server): announce()
    returns at once, the publish gives up in the background after its 2 s timeout."""
    import socket

    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen()
    try:
        feed = EventFeed(redis_url=f"redis://127.0.0.1:{black_hole.getsockname()[1]}/0", poll_interval=3600)
        async with feed.running():
            await asyncio.wait_for(feed.announce(), 1.0)
    finally:
        black_hole.close()


async def test_hooks_report_subscribers_hand_outs_backlog_and_drops(db):
    """What the server's metrics see (api.metrics sets these hooks)."""
    from loyalty.feed import FeedHooks

    seen = {"subscribers": [], "handed_out": [], "dropped": 0}

    def dropped():
        seen["dropped"] += 1

    hooks = FeedHooks(
        subscribers=seen["subscribers"].append, dropped=dropped,
        handed_out=lambda events, backlog: seen["handed_out"].append(([e.id for e in events], backlog)),
    )
    member = await new_member()
    feed = await started_feed(queue_size=1, hooks=hooks)
    reader, sleeper = feed.follow(ADMIN), feed.follow(ADMIN)
    pending = [asyncio.ensure_future(anext(reader)), asyncio.ensure_future(anext(sleeper))]
    await joined(feed, 2)
    assert seen["subscribers"] == [1, 1]
    first = await changes(member, 1)
    await feed.read_log()
    assert [(await asyncio.wait_for(f, 5)).id for f in pending] == first * 2
    second = await changes(member, 1)
    await feed.read_log()  # the backlog is counted at hand-out: one event each, both times
    assert seen["handed_out"] == [(first, 1), (second, 1)]
    assert await take(reader, 1) == second
    third = await changes(member, 1)
    await feed.read_log()  # the sleeper's queue of one is full: dropped
    assert seen["dropped"] == 1 and seen["handed_out"][-1] == (third, 1)
    for stream in (reader, sleeper):
        await stream.aclose()
    assert sorted(seen["subscribers"]) == [-1, -1, 1, 1]


class HeldReads:
    """Stands in for TierEvent in loyalty.feed: the reader's batch query waits for
    `release` (set by the test) before it reads; the rest is the real model."""

    def __init__(self) -> None:
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name):
        return getattr(TierEvent, name)

    def filter(self, **conditions):
        held = self

        class Query:
            def __init__(self, query) -> None:
                self.query = query

            def order_by(self, *fields):
                return Query(self.query.order_by(*fields))

            def limit(self, n):
                return Query(self.query.limit(n))

            def __await__(self):
                return self.run().__await__()

            async def run(self):
                held.entered.set()
                await held.release.wait()
                return await self.query

        return Query(TierEvent.filter(**conditions))


async def stop_inside_a_batch(monkeypatch, *, release_on_stop: bool):
    """Start a feed, hold its reader inside a batch read, leave running(): the stream
    with its pending event, and whether the reader ended cancelled."""
    from loyalty import feed as feed_module
    from members.background import stop_task

    member = await new_member()
    feed = EventFeed(poll_interval=3600)
    held, cancelled = HeldReads(), []

    async def observed_stop(task, stop, *, grace):
        stop.set()
        if release_on_stop:
            held.release.set()  # the batch read goes on once the stop has been asked
        await stop_task(task, stop, grace=grace)
        cancelled.append(task.cancelled())

    monkeypatch.setattr(feed_module, "stop_task", observed_stop)
    running = feed.running()
    await running.__aenter__()
    stream = feed.follow(ADMIN)
    pending = asyncio.ensure_future(anext(stream))
    await joined(feed, 1)
    monkeypatch.setattr(feed_module, "TierEvent", held)
    (committed,) = await changes(member, 1)
    await feed.announce()
    async with asyncio.timeout(5):
        await held.entered.wait()  # the reader is reading a batch
        await running.__aexit__(None, None, None)
    return stream, pending, committed, cancelled


async def test_a_stopping_reader_hands_out_the_batch_it_is_reading_and_ends_uncancelled(db, monkeypatch):
    """Shutdown stops the reader (members.background), never cuts it in a batch: the
    batch read when the stop came is handed out, then the reader ends on its own."""
    stream, pending, committed, cancelled = await stop_inside_a_batch(monkeypatch, release_on_stop=True)
    assert cancelled == [False]
    assert (await asyncio.wait_for(pending, 5)).id == committed
    await stream.aclose()


async def test_a_reader_stuck_past_the_grace_period_is_cancelled(db, monkeypatch):
    from loyalty import feed as feed_module

    monkeypatch.setattr(feed_module, "STOP_GRACE_SECONDS", 0.01)  # a database that never answers
    stream, pending, _, cancelled = await stop_inside_a_batch(monkeypatch, release_on_stop=False)
    assert cancelled == [True] and not pending.done()
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await stream.aclose()
