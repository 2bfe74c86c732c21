"""Member reads: one member, and keyset-paged member lists, always scoped by caller."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from tortoise.expressions import Q

from members.access import (
    STAFF_ROLES, Caller, can_see_member, in_region, member_scope, region_filter, restrict_members, restrict_offices,
)
from members.bulk_insert import model_from_row
from members.cards import CARD_PATTERN, is_valid_card_number
from members.driver import DIRECT
from members.enums import LifecycleStage, Tier, ValueSegment
from members.errors import invalid
from members.ids import INT_IDS, database_id
from members.models import Member, Office
from members.paging import Page, after_key, after_ranges, decode_cursor, encode_cursor, page_size
from members.regions import office_tier_counts


class MemberOrder(str, Enum):
    TIER_DESC_NAME = "TIER_DESC_NAME"
    CARD_NUMBER = "CARD_NUMBER"
    ENROLLED_AT_DESC = "ENROLLED_AT_DESC"


@dataclass(frozen=True)
class MemberFilter:
    office_code: str | None = None
    branch_code: str | None = None
    tiers: tuple[Tier, ...] | None = None
    search: str | None = None
    lifecycle_stages: tuple[LifecycleStage, ...] | None = None
    value_segments: tuple[ValueSegment, ...] | None = None


async def find_member(
    caller: Caller, *, member_id: str | None = None, card_number: str | None = None, columns: tuple[str, ...] | None = None,
) -> Member | None:
    """Exactly one of id or cardNumber. None when unknown or outside the caller's scope;
    a card number that fails its check digit is INVALID. `columns`: the member's
    columns the caller will read (a partial model, see _member_by); every column
    without it."""
    if (member_id is None) == (card_number is None):
        raise invalid("give exactly one of id or cardNumber", "id")
    if card_number is not None:
        card_number = card_number.strip().upper()
        if not is_valid_card_number(card_number):
            raise invalid("cardNumber is not a valid card number (CA + 9 digits with a check digit)", "cardNumber")
        member = await _member_by("card_number", card_number, columns) if member_scope(caller, "id") is not None else None
    else:
        pk = database_id(member_id)
        member = await _member_by("id", pk, columns) if pk is not None and member_scope(caller, "id") is not None else None
    return member if member is not None and can_see_member(caller, member) else None


# What every member read needs of the row: the key columns the scope rule judges
# (members.access.member_scope: id, office_id, branch_id) and the card view.
MEMBER_BASE_COLUMNS = ("id", "card_number", "tier", "office_id", "branch_id")


async def _member_by(column: str, value: object, columns: tuple[str, ...] | None = None) -> Member | None:
    """The member whose unique `column` holds `value`, read as SQL text (cached per key
    and columns) straight on the driver (members.driver.DIRECT) and judged by scope in
    Python (can_see_member): the hottest read of the API, for which the query builder
    and then Tortoise's client cost more than the database (issue 12). With `columns`
    only those and MEMBER_BASE_COLUMNS are read, into a partial model (Tortoise's, as
    `.only()` makes: it cannot be saved, and reading a column not loaded raises)."""
    connection = Member._choose_db()
    sql, names = _member_sql(connection.capabilities.dialect, column, columns)
    rows = await DIRECT.fetch(connection, sql, [value])
    return model_from_row(Member, names, rows[0]) if rows else None


@functools.cache
def _member_sql(dialect: str, column: str, columns: tuple[str, ...] | None) -> tuple[str, tuple[str, ...]]:
    projection = Member._meta.fields_db_projection
    if columns is None:
        names = tuple(projection.values())
    else:
        wanted = {*MEMBER_BASE_COLUMNS, *columns}
        names = tuple(name for field, name in projection.items() if field in wanted)
    mark = "$1" if dialect == "postgres" else "?"
    selected = ", ".join(f'"{name}"' for name in names)
    return f'SELECT {selected} FROM "{Member._meta.db_table}" WHERE "{projection[column]}" = {mark}', names


def _sort_key(order: MemberOrder, member: Member) -> list:
    if order is MemberOrder.TIER_DESC_NAME:
        return [int(member.tier), member.family_name, member.given_name, member.id]
    if order is MemberOrder.CARD_NUMBER:
        return [member.card_number]
    return [member.enrolled_at.isoformat(), member.id]


def _after(order: MemberOrder, key: list) -> Q:
    """Rows strictly after `key` in the ordering, written so that an index in the
    ordering's order can seek to the key: the redundant leading conjunct (`>=` / `<=`
    on the first column) gives the database the range to start from, the OR after it
    only trims the rows equal to the key. TIER_DESC_NAME's tier is not in here: the
    list reads one tier at a time (see _walk_tiers), so the key's tier is an equality."""
    if order is MemberOrder.TIER_DESC_NAME:
        return after_key(("family_name", "given_name", "id"), key[1:])
    if order is MemberOrder.CARD_NUMBER:
        return Q(card_number__gt=key[0])
    return after_key(("enrolled_at", "id"), key, descending=True)


# Orderings within one tier (see _walk_tiers), each served by an index (tier, columns)
# in every scope: alone, after office_id, after branch_id (members.models).
ORDER_COLUMNS = {
    MemberOrder.TIER_DESC_NAME: ("family_name", "given_name", "id"),
    MemberOrder.CARD_NUMBER: ("card_number",),
    MemberOrder.ENROLLED_AT_DESC: ("-enrolled_at", "-id"),
}
# JSON types of each ordering's cursor key: a forged cursor is INVALID, not a database error.
KEY_TYPES = {
    MemberOrder.TIER_DESC_NAME: (int, str, str, int),
    MemberOrder.CARD_NUMBER: (str,),
    MemberOrder.ENROLLED_AT_DESC: (str, int),
}


def _cursor_key(order: MemberOrder, after: str) -> list:
    """The sort key inside a cursor of this ordering, with the types its columns need."""
    key = decode_cursor(after, order.value, len(KEY_TYPES[order]))
    for value, kind in zip(key, KEY_TYPES[order]):
        if type(value) is not kind or (kind is int and not 0 <= value < INT_IDS):
            raise invalid("after is not a valid cursor", "after")
    if order is MemberOrder.ENROLLED_AT_DESC:
        try:
            key[0] = datetime.fromisoformat(key[0])
        except ValueError:
            raise invalid("after is not a valid cursor", "after") from None
        if key[0].tzinfo is None:
            raise invalid("after is not a valid cursor", "after")
    return key


async def _rollup_count(caller: Caller, member_filter: MemberFilter) -> int:
    """The members of the filter's region in the caller's scope, of its tiers (every
    tier without one), from the office x tier rollup (members.regions)."""
    columns = await region_filter(caller, member_filter.office_code, member_filter.branch_code)
    offices = restrict_offices(Office.filter(**{"id" if k == "office_id" else k: v for k, v in columns.items()}), caller)
    counts = (await office_tier_counts(offices))[None]
    tiers = member_filter.tiers if member_filter.tiers is not None else list(Tier)
    return sum(counts[Tier(t)] for t in set(tiers))


async def list_members(
    caller: Caller,
    member_filter: MemberFilter | None = None,
    order: MemberOrder = MemberOrder.TIER_DESC_NAME,
    first: int | None = 50,
    after: str | None = None,
    extra: Q | None = None,
) -> Page[Member]:
    """A page of the members the caller may see, with the total count of the filter
    (counted only when asked: Page.total_count).
    `extra` narrows further by a condition computed elsewhere (e.g. at risk of downgrade)."""
    member_filter = member_filter or MemberFilter()
    size = page_size(first)
    query = restrict_members(Member.all(), caller)
    query = await in_region(query, caller, member_filter.office_code, member_filter.branch_code)
    if member_filter.lifecycle_stages is not None:
        query = query.filter(lifecycle_stage__in=[LifecycleStage(s) for s in member_filter.lifecycle_stages])
    if member_filter.value_segments is not None:
        query = query.filter(value_segment__in=[ValueSegment(s) for s in member_filter.value_segments])
    if member_filter.search is not None:
        term = " ".join(member_filter.search.split())
        if not term:
            raise invalid("search must not be empty", "filter", "search")
        if CARD_PATTERN.match(term.upper()):
            query = query.filter(card_number=term.upper())
        else:
            query = query.filter(Q(family_name__istartswith=term) | Q(given_name__istartswith=term))
    if extra is not None:
        query = query.filter(extra)
    # The tiers filter is the count's; the page reads only the allowed tiers, each by
    # `tier = t` alone (with `tier IN (...)` beside it PostgreSQL reads the index
    # unordered and sorts the tier).
    counted = query if member_filter.tiers is None else query.filter(tier__in=[int(t) for t in member_filter.tiers])
    count = counted.count
    if caller.role in STAFF_ROLES and (member_filter.lifecycle_stages, member_filter.value_segments,
                                       member_filter.search, extra) == (None, None, None, None):
        # Narrowed by region and tiers only: the office x tier rollup holds the count (a
        # few hundred rows at most), where COUNT(*) reads an index entry per member.
        count = functools.partial(_rollup_count, caller, member_filter)
    key = _cursor_key(order, after) if after else None
    rows = await _walk_tiers(query, order, member_filter.tiers, key, size + 1)
    return Page.of(rows, size, lambda m: encode_cursor(order.value, _sort_key(order, m)), count)


async def _walk_tiers(
    query, order: MemberOrder, tiers: tuple[Tier, ...] | None, key: list | None, limit: int
) -> list[Member]:
    """Up to `limit` members of `query` in `order` after `key`, read one tier at a time:
    each read is `tier = t` plus the keyset condition, ordered by the rest of the
    ordering, so an index (scope column, tier, ordering columns) serves it as a range
    in order, whatever the scope and the tiers filter (only the tiers it allows are
    read). A single query could not be: ORDER BY tier DESC, family_name needs an index
    with mixed directions, which Tortoise cannot declare, and `tier IN (...)` ORDER BY
    card_number cannot read an index on (tier, card_number) in card order.

    TIER_DESC_NAME reads the tiers highest first (none above the key's) and stops once
    `limit` rows are read, usually after one query. The other orderings read the keys
    of up to `limit` rows of every allowed tier (at most four index-only reads), merge
    them (a card number or an instant orders alike in Python and in the database) and
    load the `limit` first members by id."""
    allowed = sorted(set(Tier) if tiers is None else {Tier(t) for t in tiers}, reverse=True)
    if order is MemberOrder.TIER_DESC_NAME:
        rows: list[Member] = []
        for tier in (t for t in allowed if key is None or t <= key[0]):
            in_tier = query.filter(tier=tier)
            # The key's tier: the rows after the key, range by range (members.paging.after_ranges).
            parts = after_ranges(ORDER_COLUMNS[order], key[1:]) if key is not None and tier == key[0] else [Q()]
            for part in parts:
                rows += await in_tier.filter(part).order_by(*ORDER_COLUMNS[order]).limit(limit - len(rows))
                if len(rows) >= limit:
                    return rows
        return rows
    columns = [column.lstrip("-") for column in ORDER_COLUMNS[order]]
    keys: list[tuple] = []
    for tier in allowed:
        in_tier = query.filter(tier=tier)
        if key is not None:
            in_tier = in_tier.filter(_after(order, key))
        keys += await in_tier.order_by(*ORDER_COLUMNS[order]).limit(limit).values_list(*columns, "id")
    keys.sort(reverse=ORDER_COLUMNS[order][0].startswith("-"))
    ids = [row[-1] for row in keys[:limit]]
    by_id = {member.id: member for member in await Member.filter(id__in=ids)} if ids else {}
    return [by_id[pk] for pk in ids]
