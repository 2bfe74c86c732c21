"""Partner statements: a partner's own postings over a range of days, with totals, so it
can reconcile its books (GraphQL `partnerStatement`, CLI `loyalty partner statement`).

The postings are the ledger entries the partner credited (source = its code), posted
from the first day's start to the last day's end in the programme's time zone (at most
366 days), newest first, in keyset pages over the (source, posted_at, id) index. Each
entry says whether it has been reversed since; the totals (entries, miles credited)
are counted by the database over the same range, and only when asked for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from tortoise.functions import Coalesce, Count, Sum
from tortoise.queryset import QuerySet

from members.paging import newest_first
from loyalty.models import LedgerEntry
from members.access import Caller, Role, require_role
from members.errors import invalid, not_found
from members.models import Partner
from members.paging import Page

__all__ = ["MAX_DAYS", "Statement", "partner_statement", "statement_rows"]

MAX_DAYS = 366
ORDER = "partnerStatement"
DEFAULT_PAGE = 100


@dataclass
class Statement:
    partner_code: str
    start: date
    end: date
    query: QuerySet
    _totals: tuple[int, int] | None = None

    async def totals(self) -> tuple[int, int]:
        """(entries, miles credited) over the whole range: one aggregate, counted once."""
        if self._totals is None:
            row = await self.query.annotate(n=Count("id"), miles=Coalesce(Sum("redeemable_miles"), 0)).first().values(
                "n", "miles"
            )
            self._totals = (int(row["n"] or 0), int(row["miles"] or 0)) if row else (0, 0)
        return self._totals

    async def page(self, first: int | None, after: str | None, *related: str) -> Page[LedgerEntry]:
        """A page of the entries, newest first, with ``related`` rows prefetched."""
        query = self.query.prefetch_related(*related) if related else self.query
        return await newest_first(query, "posted_at", ORDER, first, after, DEFAULT_PAGE)


async def partner_statement(
    caller: Caller, partner_code: str | None, start: date, end: date, *, timezone: tzinfo,
    as_of: datetime | None = None,
) -> Statement:
    """The statement of the caller's own partner code (a partner), or of ``partner_code``
    (an admin). FORBIDDEN for other roles or a partner naming another code; NOT_FOUND
    for an unknown code; INVALID for a reversed or longer than 366-day range. ``as_of``
    ends the range at that instant too: a statement read in several statements (the CSV
    export) then holds the same entries in its rows and its totals, whatever is posted
    meanwhile."""
    require_role(caller, (Role.PARTNER, Role.ADMIN), "statements are for partners (their own) and admins")
    if caller.role is Role.PARTNER:
        if partner_code is not None and partner_code != caller.scope:
            raise invalid("a partner reads its own statement: leave partnerCode out", "partnerCode")
        code = caller.scope
    else:
        if partner_code is None:
            raise invalid("partnerCode is required for an admin", "partnerCode")
        code = partner_code.strip().upper()
        if not await Partner.exists(code=code):
            raise not_found(f"no partner {code}", "partnerCode")
    if end < start:
        raise invalid("to must not be before from", "to")
    if (end - start).days + 1 > MAX_DAYS:
        raise invalid(f"the range may span at most {MAX_DAYS} days", "to")
    # In UTC, as posted_at is stored: SQLite compares the stored text, and a bound in
    # the programme's zone (+08:00) would sort before an entry posted later that day in
    # UTC text (from 16:00 UTC on, Shanghai's date is the next day's).
    since = datetime.combine(start, time(0), tzinfo=timezone).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), time(0), tzinfo=timezone).astimezone(UTC)
    query = LedgerEntry.filter(source=code, posted_at__gte=since, posted_at__lt=until)
    if as_of is not None:
        query = query.filter(posted_at__lte=as_of.astimezone(UTC))
    return Statement(code, start, end, query)


async def statement_rows(statement: Statement, page_size: int = DEFAULT_PAGE) -> AsyncIterator[list[LedgerEntry]]:
    """Every entry of the statement, page by page (newest first): for the CSV export."""
    after = None
    while True:
        page = await statement.page(page_size, after, "reversed_by", "member")
        if page.items:
            yield page.items
        if not page.has_next_page:
            return
        after = page.end_cursor
