"""Branches (分公司), offices (营业部) and tier counts."""

from __future__ import annotations

import strawberry

from members import models
from members.access import region_filter
from members.codes import fits
from members.enums import Tier
from members.regions import office_tier_counts
from schema.context import Info
from schema.permissions import STAFF, allow


@strawberry.type(description="Members of each tier.")
class TierCounts:
    standard: int = strawberry.field(description="普通知音卡 members.")
    silver: int = strawberry.field(description="银卡 members.")
    gold: int = strawberry.field(description="金卡 members.")
    platinum: int = strawberry.field(description="白金卡 members.")

    @classmethod
    def from_counts(cls, counts: dict[Tier, int] | None) -> TierCounts:
        counts = counts or {}
        return cls(
            standard=counts.get(Tier.STANDARD, 0),
            silver=counts.get(Tier.SILVER, 0),
            gold=counts.get(Tier.GOLD, 0),
            platinum=counts.get(Tier.PLATINUM, 0),
        )


@strawberry.type(description="A branch (分公司): a group of sales offices.")
class Branch:
    id: strawberry.Private[int]
    code: str = strawberry.field(description="Branch code, e.g. NCB.")
    name: str = strawberry.field(description="Branch name.")

    @classmethod
    def from_row(cls, row: models.Branch) -> Branch:
        return cls(id=row.id, code=row.code, name=row.name)

    @strawberry.field(description="The branch's offices visible to the caller (staff: those of their scope), by code.")
    async def offices(self, info: Info) -> list[Office]:
        return [Office.from_row(row) for row in await info.context.reads.offices_of_branch.load(self.id)]

    @strawberry.field(description="Members of each tier in the branch (that the caller may see).", permission_classes=[allow(*STAFF)])
    async def tier_counts(self, info: Info) -> TierCounts:
        return TierCounts.from_counts(await info.context.reads.tier_counts_of_branch.load(self.id))


@strawberry.type(description="A sales office (营业部): VIPs are assigned to one by their contact address.")
class Office:
    id: strawberry.Private[int]
    branch_id: strawberry.Private[int]
    code: str = strawberry.field(description="Office code, e.g. PEK01.")
    name: str = strawberry.field(description="Office name.")
    city: str = strawberry.field(description="City the office is in.")
    province: str | None = strawberry.field(description="Province or state, where the country has them.")
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 country code.")

    @classmethod
    def from_row(cls, row: models.Office) -> Office:
        return cls(
            id=row.id, branch_id=row.branch_id, code=row.code, name=row.name,
            city=row.city, province=row.province, country=row.country,
        )

    @strawberry.field(description="The branch the office belongs to.")
    async def branch(self, info: Info) -> Branch:
        return Branch.from_row(await info.context.reads.branch.load(self.branch_id))

    @strawberry.field(description="Members of each tier assigned to the office (that the caller may see).", permission_classes=[allow(*STAFF)])
    async def tier_counts(self, info: Info) -> TierCounts:
        return TierCounts.from_counts(await info.context.reads.tier_counts_of_office.load(self.id))


@strawberry.type
class RegionQuery:
    @strawberry.field(description="Branches visible to the caller (admin: all six; branch and office staff: their own).", permission_classes=[allow(*STAFF)])
    async def branches(self, info: Info) -> list[Branch]:
        rows = await info.context.reads.branches().order_by("code")
        return [Branch.from_row(row) for row in rows]

    @strawberry.field(description="One office by code; null when unknown or outside the caller's scope.", permission_classes=[allow(*STAFF)])
    async def office(self, info: Info, code: str) -> Office | None:
        code = code.strip().upper()
        if not fits(models.Office, code):
            return None
        row = await info.context.reads.offices().filter(code=code).first()
        return Office.from_row(row) if row else None

    @strawberry.field(
        description="Members of each tier in the caller's scope, optionally narrowed to one office or branch inside it.",
        permission_classes=[allow(*STAFF)],
    )
    async def tier_counts(self, info: Info, office_code: str | None = None, branch_code: str | None = None) -> TierCounts:
        columns = await region_filter(info.context.caller, office_code, branch_code)
        offices = info.context.reads.offices().filter(**{"id" if column == "office_id" else column: value for column, value in columns.items()})
        return TierCounts.from_counts((await office_tier_counts(offices)).get(None))


