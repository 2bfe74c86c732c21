"""The tierChanged subscription: replay from the durable log, then live (loyalty.feed)."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator

import strawberry

from loyalty.feed import SubscriberTooSlow
from members.access_log import PersonalField
from members.errors import DomainError, ForbiddenError
from schema.context import Context, Info
from schema.fanout import RESULTS_KEPT, SINGLE_EVENT, current_channel
from schema.errors import CodedError, coded
from schema.loyalty import TierChange
from schema.permissions import ALL_ROLES, allow

# WebSocket close code for a subscriber whose queue of live events filled up (an
# application code: 4000-4999, none of graphql-transport-ws's own). Reconnect and
# subscribe again with after: the last cursor received; nothing is lost.
SLOW_SUBSCRIBER_CLOSE_CODE = 4509
SLOW_SUBSCRIBER_REASON = "subscriber too slow: resume with after: and the last cursor received"


@strawberry.type(description="Live events over graphql-transport-ws; the token goes in connection_init.")
class Subscription:
    @strawberry.subscription(
        description=(
            "Tier changes visible to the caller, live. With `after`, first replays every change after that "
            "cursor from the durable log, then continues live, with no gap and no duplicate. Filters narrow it; "
            "scope still applies."
        ),
        permission_classes=[allow(*ALL_ROLES)],
    )
    async def tier_changed(
        self,
        info: Info,
        member_id: strawberry.ID | None = None,
        office_code: str | None = None,
        branch_code: str | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[TierChange, None]:
        context = info.context
        single = context.extra.get(SINGLE_EVENT)
        if single is not None:
            # A selection's one-event execution (schema.fanout): the subscriber's own
            # feed chose the event, by its scope and filters; this only shows it.
            yield TierChange.from_event(single)
            return
        feed = context.extra["event_feed"]
        caller = context.caller
        close = context.extra.get("close_connection")
        channel = current_channel.get()
        shared = context.extra.get("shared_selections")

        async def close_slow() -> None:
            with contextlib.suppress(Exception):  # already closed: nothing to do
                await close(SLOW_SUBSCRIBER_CLOSE_CODE, SLOW_SUBSCRIBER_REASON)

        selection = None
        try:
            stream = feed.follow(
                caller, after=after, member_id=member_id, office_code=office_code, branch_code=branch_code,
                on_slow=close_slow if close is not None else None,
            )
            if channel is not None and shared is not None:
                selection = shared.join(channel, caller, _one_event_context(context))
            async for event in stream:
                if selection is not None:
                    # Executed and encoded once for every subscriber of the selection.
                    await channel.send(await selection.result(event))
                    _note_shared_reads(context, selection, event)
                    continue
                # The connection lives for hours: read the member afresh for every change.
                context.reads = context.fresh_reads()
                yield TierChange.from_event(event)
        except (ForbiddenError, DomainError) as error:
            # Raised inside the event stream, after the resolver returned: mapped here.
            raise coded(error) from None
        except SubscriberTooSlow:
            raise CodedError("SUBSCRIBER_TOO_SLOW", SLOW_SUBSCRIBER_REASON) from None
        finally:
            if selection is not None:
                shared.leave(selection)


class SharedReads:
    """The personal fields a selection's one-event executions read, by event: the result
    is executed once for all its subscribers, and each of them notes the reads as its
    own in the access audit (members.access_log) when it is sent the result. Takes the
    place of the access log in those executions' contexts."""

    def __init__(self) -> None:
        self.by_event: OrderedDict[int, dict[int, int]] = OrderedDict()

    def note(self, caller, event_id: int, member_id: int, field: PersonalField) -> None:
        reads = self.by_event.setdefault(event_id, {})
        reads[member_id] = reads.get(member_id, 0) | field
        while len(self.by_event) > RESULTS_KEPT:
            self.by_event.popitem(last=False)


def _note_shared_reads(context: Context, selection, event) -> None:
    """Note, for this subscriber, what the shared execution of the event read."""
    shared = getattr(selection.make_context, "shared_reads", None)
    if context.access_log is None or shared is None:
        return
    for member_id, bits in shared.by_event.get(event.id, {}).items():
        context.access_log.note(context.caller, context.request_key, member_id, PersonalField(bits))


def _one_event_context(context: Context):
    """Contexts for a selection's one-event executions: the subscriber's caller and
    settings, a fresh read layer each (the member is read as it is now), nothing of
    the connection; their reads of personal fields are kept by event (SharedReads)."""
    caller, timezone, settings, rules = context.caller, context.timezone, context.settings, context.rules
    shared_reads = SharedReads()

    def make(event) -> Context:
        return Context(caller=caller, auth_error=None, timezone=timezone, settings=settings, rules=rules,
                       extra={SINGLE_EVENT: event}, access_log=shared_reads, request_key=event.id)

    make.shared_reads = shared_reads  # type: ignore[attr-defined]
    return make
