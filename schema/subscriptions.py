"""The tierChanged subscription: replay from the durable log, then live."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from members.errors import DomainError, ForbiddenError
from schema.context import Info
from schema.errors import forbidden, query_error
from schema.loyalty import TierChange
from schema.permissions import ALL_ROLES, allow


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
        feed = info.context.extra["event_feed"]
        caller = info.context.caller
        try:
            stream = feed.follow(caller, after=after, member_id=member_id, office_code=office_code, branch_code=branch_code)
            async for event in stream:
                yield TierChange.from_event(event)
        except ForbiddenError as error:
            raise forbidden(str(error)) from None
        except DomainError as error:
            raise query_error(error) from None
