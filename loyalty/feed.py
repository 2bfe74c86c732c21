"""Live tier changes, driven by the committed event log.

Subscribers never receive events from the code that wrote them: they read the
durable log (loyalty.reads.tier_changes) from their position onwards. The feed only
wakes them when the log may have grown: a watcher polls the log's head position,
and, with REDIS_URL, a Redis channel carries "new events" hints between server
processes so that a change made through one worker reaches subscribers of another
at once. A hint that is lost only delays delivery until the next poll; an event
that was rolled back is never in the log, so it is never announced. Each subscriber
pulls at its own pace, so a slow one cannot stall the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from tortoise.functions import Max

from loyalty.models import TierEvent
from members.access import Caller
from members.paging import encode_cursor

log = logging.getLogger(__name__)
CHANNEL = "loyalty:tier-events"


async def head_position() -> int:
    row = await TierEvent.annotate(head=Max("id")).first().values("head")
    return int((row or {}).get("head") or 0)


class EventFeed:
    def __init__(self, *, redis_url: str | None = None, poll_interval: float = 0.25) -> None:
        self.redis_url = redis_url
        self.poll_interval = poll_interval
        self._head = 0
        self._changed = asyncio.Condition()
        self._redis = None

    async def _advance(self, head: int) -> None:
        if head > self._head:
            self._head = head
            async with self._changed:
                self._changed.notify_all()

    async def _watch_log(self) -> None:
        while True:
            try:
                await self._advance(await head_position())
            except Exception:  # noqa: BLE001 - keep watching through a database hiccup
                log.warning("event feed: could not read the log head", exc_info=True)
            await asyncio.sleep(self.poll_interval)

    async def _watch_redis(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        async for message in pubsub.listen():
            if message.get("type") == "message":
                with contextlib.suppress(ValueError):
                    await self._advance(int(message["data"]))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EventFeed]:
        """Run the watchers for the life of the server."""
        tasks = [asyncio.create_task(self._watch_log())]
        if self.redis_url:
            import redis.asyncio as redis

            self._redis = redis.from_url(self.redis_url)
            tasks.append(asyncio.create_task(self._watch_redis()))
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self._redis is not None:
                await self._redis.aclose()
                self._redis = None

    async def announce(self) -> None:
        """Called after a commit that may have added events: wake local subscribers
        and, with Redis, every other process. Only a hint: readers read the log."""
        head = await head_position()
        await self._advance(head)
        if self._redis is not None:
            try:
                await self._redis.publish(CHANNEL, str(head))
            except Exception:  # noqa: BLE001 - the poll still delivers
                log.warning("event feed: Redis publish failed", exc_info=True)

    async def wait_beyond(self, position: int, timeout: float | None = None) -> None:
        """Return once the log head may be past `position` (or after `timeout`)."""
        async with self._changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self._head > position), timeout)

    async def follow(
        self,
        caller: Caller,
        *,
        after: str | None = None,
        member_id: str | None = None,
        office_code: str | None = None,
        branch_code: str | None = None,
    ) -> AsyncIterator[TierEvent]:
        """Events visible to the caller after the cursor (or from now), in log order,
        each once, forever."""
        from loyalty import reads

        position = reads.position_from_cursor(after) if after is not None else await head_position()
        member_pk = int(member_id) if member_id is not None and str(member_id).isdigit() else None
        if member_id is not None and member_pk is None:
            return
        while True:
            head = await head_position()
            if head > position:
                page = await reads.tier_changes(caller, encode_cursor("tierChanges", [position]), 100, office_code, branch_code)
                for event in page.items:
                    if member_pk is None or event.member_id == member_pk:
                        yield event
                if page.has_next_page:
                    position = page.items[-1].id
                    continue
                # Every event up to `head` was committed before the read, so the read
                # has seen all of them that the caller may see: skip past the rest.
                position = max(page.items[-1].id if page.items else 0, head)
            await self.wait_beyond(position, timeout=5)
