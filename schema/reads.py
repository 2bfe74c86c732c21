"""The scoped read layer of one request, in the manner of NetBox's `restrict(user)`
with Saleor's per-area DataLoaders.

`Reads(caller)` hands out querysets already restricted to the caller (members,
offices, branches, tier events), says whether a row already loaded is visible
(`visible`, the same rule as the querysets: members.access.member_scope), and owns
the request's DataLoaders, so a page of N objects costs a fixed number of
statements whatever N:

- by id: office, branch (reference data: an office or branch reached through a
  member, call or event the caller sees is named, whatever the scope), member
  (scoped: None outside the caller's scope), ledger entries (reached only through a
  member the caller sees);
- one-to-many and aggregates: region history per member, tier status per member
  (one grouped query of window totals for the whole page), tier counts per office
  and per branch (one grouped count), offices per branch, and each member's first
  page of care calls (one windowed query) with their number (one grouped count).

Resolvers read through it instead of restricting by hand, and every member a
payload returns goes through `visible`, so a member that has since moved out of the
caller's scope reads as null, never as its new details and never as an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from datetime import date
from functools import cached_property
from typing import Any

from strawberry.dataloader import DataLoader
from tortoise.expressions import RawSQL
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from care.models import CareCall

from loyalty import tiers
from loyalty.models import LedgerEntry, TierEvent
from loyalty.rules import Rules
from members.access import Caller, can_see_member, nothing, restrict_branches, restrict_by_member_region
from members.access import restrict_members, restrict_offices
from members.enums import Tier
from members.models import Branch, Member, Office, RegionAssignment
from members.regions import office_tier_counts


def _by_column_loader(query: Callable[[], QuerySet], column: str = "id") -> DataLoader:
    """Rows of `query()` batched by one (unique) column; None where there is no row."""

    async def load(keys: list[Any]) -> list[Any]:
        rows = {getattr(row, column): row for row in await query().filter(**{f"{column}__in": keys})}
        return [rows.get(key) for key in keys]

    return DataLoader(load_fn=load)


# Each call's place among the member's calls, newest first (members.paging.newest_first's order).
_CALL_RANK = 'ROW_NUMBER() OVER (PARTITION BY "member_id" ORDER BY "called_at" DESC, "id" DESC)'


async def _newest_calls_of_each_member(query: QuerySet[CareCall], limit: int) -> list[CareCall]:
    """The `limit` newest calls of each member in `query`, in ONE statement (a window
    function: SQLite 3.25+ and PostgreSQL), ordered by member, then newest first. The
    query's filters are inlined by Tortoise (ids and scope columns: integers)."""
    ranked = query.annotate(call_rank=RawSQL(_CALL_RANK)).sql(params_inline=True)
    return await CareCall.raw(
        f'SELECT * FROM ({ranked}) AS ranked WHERE ranked."call_rank" <= {int(limit)} '
        'ORDER BY ranked."member_id", ranked."called_at" DESC, ranked."id" DESC'
    )


def _grouped_loader(rows: Callable[[list[Any]], Awaitable[Iterable[Any]]], group: Callable[[Any], Hashable]) -> DataLoader:
    """One-to-many: for each key, the rows `rows(keys)` returns under it (in their
    order), [] for none. One call of `rows` per batch."""

    async def load(keys: list[Any]) -> list[list[Any]]:
        groups: dict[Hashable, list[Any]] = defaultdict(list)
        for row in await rows(keys):
            groups[group(row)].append(row)
        return [groups.get(key, []) for key in keys]

    return DataLoader(load_fn=load)


class Reads:
    """What one caller may read, for one request (a subscription makes a fresh one for
    every event: its connection lives for hours). DataLoaders are made on first use."""

    def __init__(self, caller: Caller | None, *, rules: Rules, today: Callable[[], date]) -> None:
        self.caller = caller
        self.rules = rules
        self.today = today

    # ---- querysets restricted to the caller -------------------------------------------

    def _restricted(self, queryset: QuerySet, restrict: Callable[[QuerySet, Caller], QuerySet]) -> QuerySet:
        return restrict(queryset, self.caller) if self.caller is not None else nothing(queryset)

    def members(self) -> QuerySet[Member]:
        """Members the caller may see."""
        return self._restricted(Member.all(), restrict_members)

    def offices(self) -> QuerySet[Office]:
        """Offices the caller may list (staff: those of their scope)."""
        return self._restricted(Office.all(), restrict_offices)

    def branches(self) -> QuerySet[Branch]:
        """Branches the caller may list (staff: those of their scope)."""
        return self._restricted(Branch.all(), restrict_branches)

    def tier_events(self) -> QuerySet[TierEvent]:
        """Tier events the caller may see, by the office and branch of their time."""
        return self._restricted(TierEvent.all(), restrict_by_member_region)

    def care_calls(self) -> QuerySet[CareCall]:
        """Care calls the caller may see, by the office and branch of their time."""
        return self._restricted(CareCall.all(), restrict_by_member_region)

    def visible(self, member: Member) -> bool:
        """Whether the caller may see this member row: the rule of `members()`."""
        return self.caller is not None and can_see_member(self.caller, member)

    # ---- DataLoaders by id ------------------------------------------------------------

    @cached_property
    def office(self) -> DataLoader:
        return _by_column_loader(Office.all)

    @cached_property
    def branch(self) -> DataLoader:
        return _by_column_loader(Branch.all)

    @cached_property
    def member(self) -> DataLoader:
        """Members by id, None outside the caller's scope."""
        return _by_column_loader(self.members)

    @cached_property
    def entry(self) -> DataLoader:
        return _by_column_loader(LedgerEntry.all)

    @cached_property
    def bonus_of(self) -> DataLoader:
        return _by_column_loader(LedgerEntry.all, "bonus_for_id")

    @cached_property
    def reversal_of(self) -> DataLoader:
        return _by_column_loader(LedgerEntry.all, "reverses_id")

    # ---- one-to-many and aggregates ---------------------------------------------------

    @cached_property
    def region_history(self) -> DataLoader:
        """Member id -> its office assignments, oldest first (one query per page)."""
        return _grouped_loader(
            lambda ids: RegionAssignment.filter(member_id__in=ids).order_by("member_id", "id"),
            lambda row: row.member_id,
        )

    @cached_property
    def offices_of_branch(self) -> DataLoader:
        """Branch id -> the branch's offices the caller may list, by code."""
        return _grouped_loader(
            lambda ids: self.offices().filter(branch_id__in=ids).order_by("code"), lambda row: row.branch_id
        )

    @cached_property
    def tier_status(self) -> DataLoader:
        """Member row -> loyalty.tiers.TierStatusView (one grouped query of window totals
        for the whole page, and the at-risk test's two)."""

        async def load(members: list[Member]) -> list[tiers.TierStatusView]:
            return await tiers.tier_statuses(members, rules=self.rules, today=self.today())

        return DataLoader(load_fn=load, cache_key_fn=lambda member: member.id)

    def _tier_counts(self, column: str) -> DataLoader:
        async def load(keys: list[int]) -> list[dict[Tier, int] | None]:
            counts = await office_tier_counts(self.offices().filter(**{f"{column}__in": keys}), group_by=column)
            return [counts.get(key) for key in keys]

        return DataLoader(load_fn=load)

    @cached_property
    def tier_counts_of_office(self) -> DataLoader:
        """Office id -> members per tier (of the offices the caller may see), from the
        office x tier rollup: two statements per page, whatever the offices' sizes."""
        return self._tier_counts("id")

    @cached_property
    def tier_counts_of_branch(self) -> DataLoader:
        """Branch id -> members per tier of the branch's offices the caller may see, from
        the rollup (an office's staff see their own office's share)."""
        return self._tier_counts("branch_id")

    @cached_property
    def first_care_calls(self) -> DataLoader:
        """(member id, page size) -> the member's size + 1 newest care calls the caller
        may see (a page and the limit+1 probe of the next): one windowed query per page
        size asked for, whatever the number of members."""

        async def load(keys: list[tuple[int, int]]) -> list[list[CareCall]]:
            members_by_size: dict[int, set[int]] = defaultdict(set)
            for member_id, size in keys:
                members_by_size[size].add(member_id)
            found: dict[tuple[int, int], list[CareCall]] = defaultdict(list)
            for size, member_ids in members_by_size.items():
                query = self.care_calls().filter(member_id__in=sorted(member_ids))
                for call in await _newest_calls_of_each_member(query, size + 1):
                    found[(call.member_id, size)].append(call)
            return [found.get(key, []) for key in keys]

        return DataLoader(load_fn=load)

    @cached_property
    def care_call_count(self) -> DataLoader:
        """Member id -> the number of its care calls the caller may see (one grouped count)."""

        async def load(member_ids: list[int]) -> list[int]:
            rows = await (
                self.care_calls().filter(member_id__in=member_ids)
                .annotate(n=Count("id")).group_by("member_id").values("member_id", "n")
            )
            counts = {row["member_id"]: row["n"] for row in rows}
            return [counts.get(member_id, 0) for member_id in member_ids]

        return DataLoader(load_fn=load)
