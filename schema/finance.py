"""Finance reads for admins: the miles liability and breakage (loyalty.liability)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, NewType

import strawberry

from loyalty.liability import Breakage, Liability, miles_breakage, miles_liability
from members.access import Role
from schema.context import Info
from schema.members import Tier
from schema.permissions import allow

# A NewType mapped to its scalar by the schema's config (schema.build: SCALARS).
BigInt = NewType("BigInt", int)
SCALARS = {
    BigInt: strawberry.scalar(
        name="BigInt", description="A whole number that may pass 32 bits (a programme's total of miles), as a JSON number.",
        serialize=int, parse_value=int,
    ),
}


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


@strawberry.type(description="Outstanding miles of one group.")
class MilesOfMonth:
    month: str = strawberry.field(description="The month, YYYY-MM.")
    miles: BigInt = strawberry.field(description="Miles.")


@strawberry.type(description="Outstanding miles of the members of one tier.")
class MilesOfTier:
    tier: Tier = strawberry.field(description="The members' current tier.")
    miles: BigInt = strawberry.field(description="Miles.")


@strawberry.type(description="Outstanding miles of the members of one office.")
class MilesOfOffice:
    office_code: str = strawberry.field(description="The members' current office.")
    branch_code: str = strawberry.field(description="Its branch.")
    miles: BigInt = strawberry.field(description="Miles.")


@strawberry.type(description="Outstanding miles expiring in one month, of the members of one tier in one office.")
class MilesLiabilityRow:
    expiry_month: str = strawberry.field(description="The month the miles expire at the end of, YYYY-MM.")
    tier: Tier = strawberry.field(description="The members' current tier.")
    office_code: str = strawberry.field(description="The members' current office.")
    branch_code: str = strawberry.field(description="Its branch.")
    miles: BigInt = strawberry.field(description="Miles still redeemable.")
    members: int = strawberry.field(description="Members holding them.")


@strawberry.type(
    description="The redeemable miles owed to members on a day: what is left of the credits good through that day "
    "or later, by the month they expire, the member's current tier and office (RULES.md, \"Liability and breakage\")."
)
class MilesLiability:
    liability: strawberry.Private[Liability]
    as_of: date = strawberry.field(description="The day: credits good through it or later count.")
    total_miles: BigInt = strawberry.field(description="All outstanding miles.")

    @strawberry.field(description="By expiry month, soonest first.")
    def by_expiry_month(self) -> list[MilesOfMonth]:
        return [MilesOfMonth(month=_month(m), miles=n) for m, n in self.liability.by(lambda row: row.expiry_month)]

    @strawberry.field(description="By the members' current tier, STANDARD first.")
    def by_tier(self) -> list[MilesOfTier]:
        return [MilesOfTier(tier=t, miles=n) for t, n in self.liability.by(lambda row: row.tier)]

    @strawberry.field(description="By the members' current office, by office code.")
    def by_office(self) -> list[MilesOfOffice]:
        return [MilesOfOffice(office_code=code, branch_code=branch, miles=n)
                for (code, branch), n in self.liability.by(lambda row: (row.office_code, row.branch_code))]

    @strawberry.field(description="One office's miles by expiry month and tier (`loyalty report liability` gives "
                                  "every office's as CSV).")
    async def rows(
        self, office_code: Annotated[str, strawberry.argument(description="The office (NOT_FOUND if unknown).")]
    ) -> list[MilesLiabilityRow]:
        return [
            MilesLiabilityRow(expiry_month=_month(row.expiry_month), tier=row.tier, office_code=row.office_code,
                              branch_code=row.branch_code, miles=row.miles, members=row.members)
            for row in await self.liability.of_office(office_code)
        ]


@strawberry.type(description="The credits of one credit month and what of them expired unredeemed so far.")
class BreakageMonth:
    month: str = strawberry.field(description="The credit month (of the credits' activity dates), YYYY-MM.")
    credits: int = strawberry.field(description="Credit entries (not reversed).")
    credited_miles: BigInt = strawberry.field(description="Miles those credits gave.")
    expired_miles: BigInt = strawberry.field(description="Of them, miles expired unredeemed so far.")
    basis_points: int = strawberry.field(description="expiredMiles / creditedMiles in basis points (1/10,000), "
                                                     "rounded down; 0 when nothing was credited.")


@strawberry.type(description="Breakage: the share of credited miles that expired unredeemed, by credit month.")
class MilesBreakage:
    from_: date = strawberry.field(name="from", description="First day of the first month.")
    to: date = strawberry.field(description="Last day of the last month.")
    credited_miles: BigInt = strawberry.field(description="Miles credited in the range.")
    expired_miles: BigInt = strawberry.field(description="Of them, miles expired unredeemed so far.")
    basis_points: int = strawberry.field(description="Their share in basis points, rounded down.")
    months: list[BreakageMonth] = strawberry.field(description="Every month of the range, oldest first.")

    @classmethod
    def from_domain(cls, breakage: Breakage) -> MilesBreakage:
        return cls(
            from_=breakage.start, to=breakage.end, credited_miles=breakage.credited_miles,
            expired_miles=breakage.expired_miles, basis_points=breakage.basis_points,
            months=[BreakageMonth(month=_month(m.month), credits=m.credits, credited_miles=m.credited_miles,
                                  expired_miles=m.expired_miles, basis_points=m.basis_points) for m in breakage.months],
        )


@strawberry.type
class FinanceQuery:
    @strawberry.field(
        description="Admin: the outstanding redeemable miles as of a day (default today; not before today), by expiry "
        "month, tier and office.",
        permission_classes=[allow(Role.ADMIN)],
    )
    async def miles_liability(self, info: Info, as_of: date | None = None) -> MilesLiability:
        liability = await miles_liability(info.context.caller, as_of, today=info.context.today())
        return MilesLiability(liability=liability, as_of=liability.as_of, total_miles=liability.total_miles)

    @strawberry.field(
        description="Admin: breakage of the credit months from `from`'s to `to`'s (at most 120 months).",
        permission_classes=[allow(Role.ADMIN)],
    )
    async def miles_breakage(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from", description="A day of the first credit month.")],
        to: Annotated[date, strawberry.argument(description="A day of the last credit month.")],
    ) -> MilesBreakage:
        return MilesBreakage.from_domain(await miles_breakage(info.context.caller, from_, to))
