"""Types shared by every area."""

import strawberry


@strawberry.type(description="Where a page ends and whether more follows.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether another page follows.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last edge; pass as after: for the next page.")


async def _total_count(root) -> int:
    return await root.page.total_count()


def total_count_field(description: str):
    """A connection's totalCount, resolved from its `page` (a members.paging.Page) only
    when selected: a page without totalCount runs no COUNT."""
    return strawberry.field(resolver=_total_count, description=description)
