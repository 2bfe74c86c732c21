"""Live tier changes, driven by the committed event log.

Subscribers never receive events from the code that wrote them: every event they get
was read back from the durable log (loyalty.models.TierEvent, whose ids commit in
order: see loyalty.events). Per server process one reader reads each new batch of the
log ONCE and hands it to every subscriber, whose own rule (loyalty.reads.
tier_change_test: the same scope as the tierChanges query) picks what it may see.

The reader wakes on three signals, each only a hint to read the log: `announce()`
after a local commit (the mutations call it), a Redis message from another process
(with REDIS_URL), and a poll every `poll_interval` seconds as the fallback for writers
that announce nothing (a CLI job in another process, a lost Redis message). A hint
carries no position: whatever it says, the reader reads the real log.

A subscriber first catches up from the log itself (its `after:` cursor, or the head
when it subscribes), paced by its own consumer, then joins the live stream at exactly
the position the reader has handed out, with no await in between: no gap, and events
it already replayed are skipped by position, so none twice. Live events wait in a
bounded per-subscriber queue; a subscriber that lets it fill is dropped
(SubscriberTooSlow, and `on_slow` is called so the transport can close the
connection): it resumes with `after:` and its last cursor, and loses nothing. So a slow
subscriber costs the others nothing.

Stopping (`running()` exits, at server shutdown): the reader is stopped, not cancelled
(members.background): it finishes the batch it is handing out and ends before the next
read; only one stuck longer than STOP_GRACE_SECONDS (a hung database) is cancelled. The
Redis listener and the background publishes touch no database and are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from tortoise.functions import Max

from loyalty import reads
from loyalty.models import TierEvent
from members.access import Caller
from members.background import stop_task
from members.paging import MAX_PAGE

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "loyalty:tier-events"
READ_BATCH = 200  # events per read of the shared reader
REDIS_RETRY_SECONDS = 1.0
# How long a stopping reader gets to finish its current batch before it is cancelled.
STOP_GRACE_SECONDS = 10.0


def _ignore(*args: object) -> None:
    return None


@dataclass(frozen=True)
class FeedHooks:
    """What the feed reports as it runs, for the server's metrics (api.metrics sets
    them; this package knows nothing of Prometheus). Each is called synchronously and
    must be cheap; the defaults do nothing."""

    # +1 when a subscriber starts following (replay included), -1 when it stops.
    subscribers: Callable[[int], None] = _ignore
    # A subscriber was dropped for letting its queue fill (SubscriberTooSlow).
    dropped: Callable[[], None] = _ignore
    # A batch read from the log was handed out: the batch, and the most live events
    # then waiting for any one subscriber (its backlog).
    handed_out: Callable[[list[TierEvent], int], None] = _ignore


class SubscriberTooSlow(Exception):
    """The subscriber's queue filled up; it must resume with `after:` its last cursor."""


async def head_position() -> int:
    """The position of the newest committed event (0 for an empty log)."""
    row = await TierEvent.annotate(head=Max("id")).first().values("head")
    return int((row or {}).get("head") or 0)


def redis_channel(redis_url: str) -> str:
    """The hint channel: Redis pub/sub ignores database numbers, so the number in
    REDIS_URL is part of the name, keeping deployments that share a Redis server
    but not a database number apart."""
    from redis.connection import parse_url

    return f"{CHANNEL_PREFIX}:db{parse_url(redis_url).get('db', 0)}"


async def announce_to_servers(redis_url: str) -> None:
    """For writers outside a server (CLI jobs): hint every server process through Redis
    that the log grew. Without Redis they find out at their next poll."""
    feed = EventFeed(redis_url=redis_url)
    try:
        await feed.publish()
    finally:
        await feed.aclose()


@dataclass(eq=False)
class _Subscriber:
    wants: Callable[[TierEvent], bool]
    limit: int
    on_slow: Callable[[], Awaitable[None]] | None
    queue: deque[TierEvent] = field(default_factory=deque)
    # Set while the subscriber waits for events (a bare future: the reader wakes
    # every subscriber of every batch, so the cheapest wake-up there is).
    waiter: asyncio.Future | None = None
    slow: bool = False

    def offer(self, events: list[TierEvent]) -> bool:
        """Queue the events it may see (and wake it if there are any); False when that
        would pass the limit."""
        wants, queue = self.wants, self.queue
        for event in events:
            if wants(event):
                if len(queue) >= self.limit:
                    return False
                queue.append(event)
        if queue:
            self.wake()
        return True

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def arrived(self) -> None:
        """Wait until it is woken (returns at once if events are queued or it was dropped)."""
        if self.queue or self.slow:
            return
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None


class EventFeed:
    def __init__(
        self, *, redis_url: str | None = None, poll_interval: float = 0.25, queue_size: int = 1000,
        hooks: FeedHooks = FeedHooks(),
    ) -> None:
        self.redis_url = redis_url
        self.hooks = hooks
        self.channel = redis_channel(redis_url) if redis_url else None
        self.poll_interval = poll_interval
        self.queue_size = queue_size
        # Position of the newest event handed to subscribers; None until the reader starts.
        self._head: int | None = None
        self._started = asyncio.Event()
        self._wake = asyncio.Event()
        self._subscribers: set[_Subscriber] = set()
        self._publisher = None
        self._background: set[asyncio.Task] = set()

    @property
    def subscribers(self) -> int:
        """How many subscribers follow the live stream (not those catching up)."""
        return len(self._subscribers)

    # ---- the reader ----------------------------------------------------------------

    async def read_log(self, stop: asyncio.Event | None = None) -> None:
        """Hand every event committed after the head to the subscribers, batch by batch:
        what the reader does on every wake (tests call it to choose the moment). Once
        ``stop`` is set it returns after the batch under way."""
        if self._head is None:
            self._head = await head_position()
            self._started.set()
        while stop is None or not stop.is_set():
            events = await TierEvent.filter(id__gt=self._head).order_by("id").limit(READ_BATCH)
            if not events:
                return
            # No await from here to the end of the loop body: a subscriber joining
            # sees either all of this batch live or none of it.
            self._head = events[-1].id
            backlog = 0
            for subscriber in list(self._subscribers):
                if not subscriber.offer(events):
                    self._drop(subscriber)
                elif len(subscriber.queue) > backlog:
                    backlog = len(subscriber.queue)
            self.hooks.handed_out(events, backlog)
            if len(events) < READ_BATCH:
                return

    def _drop(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)
        self.hooks.dropped()
        subscriber.slow = True
        subscriber.wake()
        if subscriber.on_slow is not None:
            self._spawn(subscriber.on_slow())

    async def _read_forever(self, stop: asyncio.Event) -> None:
        """Read on every wake until ``stop`` is set (whoever sets it also wakes the
        reader: see running())."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.read_log(stop)
            except Exception:  # noqa: BLE001 - keep reading through a database hiccup
                log.warning("event feed: could not read the event log", exc_info=True)
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()

    async def _watch_redis(self) -> None:
        """Turn every message on the channel into a wake-up; reconnect after a failure."""
        import redis.asyncio as redis

        while True:
            # The health check pings an idle subscription, so a connection that died
            # silently is noticed and renewed.
            client = redis.from_url(self.redis_url, socket_connect_timeout=5, health_check_interval=30)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._wake.set()  # whatever was announced while we were not listening
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._wake.set()
            except Exception:  # noqa: BLE001 - the poll still delivers meanwhile
                log.warning("event feed: Redis subscription failed; retrying", exc_info=True)
            finally:
                await client.aclose()
            await asyncio.sleep(REDIS_RETRY_SECONDS)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EventFeed]:
        """Run the reader (and the Redis listener) for the life of the server; at exit
        stop the reader after its current batch (see the module's docstring)."""
        stop = asyncio.Event()
        reader = asyncio.create_task(self._read_forever(stop))
        others = [asyncio.create_task(self._watch_redis())] if self.redis_url else []
        try:
            yield self
        finally:
            self._wake.set()  # a reader pausing until its next poll sees the stop at once
            await stop_task(reader, stop, grace=STOP_GRACE_SECONDS)
            for task in [*others, *self._background]:
                task.cancel()
            for task in [*others, *self._background]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.aclose()

    async def aclose(self) -> None:
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None

    async def announce(self) -> None:
        """Called after a commit that may have added events: wake this process's reader
        and, with Redis, every other process's. Only a hint: readers read the log. The
        Redis message goes out in the background, so a slow or absent Redis never
        delays the caller (the poll still delivers)."""
        self._wake.set()
        if self.redis_url:
            self._spawn(self.publish())

    async def publish(self) -> None:
        """Send the hint through Redis now (a failure is logged, never raised)."""
        try:
            if self._publisher is None:
                import redis.asyncio as redis

                self._publisher = redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
            await self._publisher.publish(self.channel, "log grew")
        except Exception:  # noqa: BLE001 - the poll still delivers
            log.warning("event feed: Redis publish failed", exc_info=True)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- subscribers ---------------------------------------------------------------

    async def follow(
        self,
        caller: Caller,
        *,
        after: str | None = None,
        member_id: str | None = None,
        office_code: str | None = None,
        branch_code: str | None = None,
        on_slow: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[TierEvent]:
        """Events visible to the caller after the cursor (or from now), in log order,
        each once, forever. Raises SubscriberTooSlow if the consumer falls too far
        behind the live stream; filters outside the caller's scope are FORBIDDEN."""
        member_pk = int(member_id) if member_id is not None and str(member_id).isdigit() else None
        if member_id is not None and member_pk is None:
            return  # no member has that id: nothing ever matches
        self.hooks.subscribers(1)
        try:
            async with contextlib.aclosing(self._follow(caller, after, member_pk, office_code, branch_code, on_slow)) as events:
                async for event in events:
                    yield event
        finally:
            self.hooks.subscribers(-1)

    async def _follow(
        self, caller: Caller, after: str | None, member_pk: int | None, office_code: str | None,
        branch_code: str | None, on_slow: Callable[[], Awaitable[None]] | None,
    ) -> AsyncIterator[TierEvent]:
        wants = await reads.tier_change_test(caller, office_code, branch_code, member_pk)
        position = reads.position_from_cursor(after) if after is not None else await head_position()
        await self._started.wait()
        while True:
            # Catch up from the log, paced by this consumer.
            handed_out = self._head
            page = await reads.tier_changes(caller, reads.cursor_at(position), MAX_PAGE, office_code, branch_code)
            for event in page.items:
                if wants(event):
                    yield event
                position = event.id
            if page.has_next_page:
                continue
            # Every event up to `handed_out` had committed before that read, so the read
            # saw all of them the caller may see.
            position = max(position, handed_out)
            if position >= self._head:
                break
        subscriber = _Subscriber(wants, self.queue_size, on_slow)
        self._subscribers.add(subscriber)
        try:
            while True:
                while subscriber.queue:
                    event = subscriber.queue.popleft()
                    if event.id > position:
                        position = event.id
                        yield event
                if subscriber.slow:
                    raise SubscriberTooSlow(f"more than {self.queue_size} events waited for this subscriber")
                await subscriber.arrived()
        finally:
            self._subscribers.discard(subscriber)
