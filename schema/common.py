"""Types shared by every area."""

import strawberry


@strawberry.type(description="Where a page ends and whether more follows.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether another page follows.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last edge; pass as after: for the next page.")
