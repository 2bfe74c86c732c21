"""Missing-miles claims over GraphQL (loyalty.claims): milesClaimSubmit (a member),
milesClaimDecide (the airline or an admin), milesClaims (a member their own; the airline
and admins every claim)."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from loyalty import claims as claim_services
from loyalty.ledger import FlightDetails
from loyalty.models import ClaimStatus as DomainStatus
from loyalty.models import MilesClaim as ClaimRow
from members.access import Role
from members.paging import Page
from schema.common import PageInfo, total_count_field
from schema.context import Info
from schema.errors import UserError, mutation
from schema.loyalty import FlightInput, LedgerEntry, _announce
from schema.permissions import allow

ClaimStatus = strawberry.enum(DomainStatus, name="ClaimStatus", description="Where a missing-miles claim stands.")


@strawberry.type(description="A member's claim for a flight that was not credited.")
class MilesClaim:
    row: strawberry.Private[ClaimRow]
    id: strawberry.ID = strawberry.field(description="Opaque claim id.")
    card_number: str = strawberry.field(description="The claiming member's card number.")
    carrier: str = strawberry.field(description="IATA carrier code.")
    flight_number: str = strawberry.field(description="Flight number.")
    flight_date: date = strawberry.field(description="Date of the flight.")
    origin: str = strawberry.field(description="IATA airport of departure.")
    destination: str = strawberry.field(description="IATA airport of arrival.")
    distance_km: int = strawberry.field(description="Flown distance in km.")
    fare_class: str = strawberry.field(description="Booking class letter.")
    status: ClaimStatus = strawberry.field(description="PENDING, APPROVED (the flight posted) or REJECTED.")
    submitted_at: datetime = strawberry.field(description="When the member made the claim.")
    decided_at: datetime | None = strawberry.field(description="When it was approved or rejected.")
    reason: str | None = strawberry.field(description="Why it was rejected (or a note with the approval).")

    @classmethod
    def from_row(cls, row: ClaimRow) -> MilesClaim:
        return cls(
            row=row, id=strawberry.ID(str(row.id)), card_number=row.member.card_number, carrier=row.carrier,
            flight_number=row.flight_number, flight_date=row.flight_date, origin=row.origin,
            destination=row.destination, distance_km=row.distance_km, fare_class=row.fare_class, status=row.status,
            submitted_at=row.submitted_at, decided_at=row.decided_at, reason=row.reason,
        )

    @strawberry.field(description="APPROVED: the FLIGHT entry posted for it.")
    def entry(self) -> LedgerEntry | None:
        # Loaded with the claim (loyalty.claims prefetches it): no query per claim.
        return LedgerEntry.from_row(self.row.entry) if self.row.entry_id is not None else None


@strawberry.type(description="A claim in a list, with its cursor.")
class MilesClaimEdge:
    node: MilesClaim = strawberry.field(description="The claim.")
    cursor: str = strawberry.field(description="Opaque keyset cursor.")


@strawberry.type(description="A page of claims, newest first.")
class MilesClaimConnection:
    page: strawberry.Private[Page]
    edges: list[MilesClaimEdge] = strawberry.field(description="The claims of this page.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and where to continue.")
    total_count: int = total_count_field("Claims matching, over all pages (counted only when asked for).")


@strawberry.input(description="A claim for a flight that was not credited.")
class MilesClaimSubmitInput:
    flight: FlightInput = strawberry.field(description="The flight, within the claims window.")
    idempotency_key: str | None = strawberry.field(default=None, description="Retry key: the same key and content returns the first claim.")


@strawberry.input(description="Approve or reject a PENDING claim.")
class MilesClaimDecideInput:
    claim_id: strawberry.ID = strawberry.field(description="The claim.")
    approve: bool = strawberry.field(description="True posts the flight; false rejects the claim.")
    reason: str | None = strawberry.field(default=None, description="Why (required to reject), up to 300 characters.")


@strawberry.type(description="Result of milesClaimSubmit or milesClaimDecide.")
class MilesClaimPayload:
    claim: MilesClaim | None = strawberry.field(description="The claim as it stands now.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type
class ClaimQuery:
    @strawberry.field(
        description="Missing-miles claims, newest first: a member their own, the airline and admins every claim.",
        permission_classes=[allow(Role.MEMBER, Role.AIRLINE, Role.ADMIN)],
    )
    async def miles_claims(
        self, info: Info, status: ClaimStatus | None = None, first: int | None = 50, after: str | None = None
    ) -> MilesClaimConnection:
        page = await claim_services.claims(info.context.caller, status, first, after)
        return MilesClaimConnection(
            page=page,
            edges=[MilesClaimEdge(node=MilesClaim.from_row(row), cursor=cursor) for row, cursor in zip(page.items, page.cursors)],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )


@strawberry.type
class ClaimMutation:
    @mutation(description="Claim a flight that was not credited (a member, for themselves).", permission_classes=[allow(Role.MEMBER)])
    async def miles_claim_submit(self, info: Info, input: MilesClaimSubmitInput) -> MilesClaimPayload:
        f = input.flight
        flight = FlightDetails(f.carrier, f.flight_number, f.date, f.origin, f.destination, f.distance_km, f.fare_class)
        row = await claim_services.submit_claim(
            info.context.caller, flight, idempotency_key=input.idempotency_key, rules=info.context.rules,
            today=info.context.today(), now=info.context.now(),
        )
        await row.fetch_related("member", "entry")
        return MilesClaimPayload(claim=MilesClaim.from_row(row), user_errors=[])

    @mutation(
        description="Approve (post the flight, once however often approved) or reject a PENDING claim: the airline or an admin.",
        permission_classes=[allow(Role.AIRLINE, Role.ADMIN)],
    )
    async def miles_claim_decide(self, info: Info, input: MilesClaimDecideInput) -> MilesClaimPayload:
        decision = await claim_services.decide_claim(
            info.context.caller, input.claim_id, input.approve, input.reason, rules=info.context.rules,
            today=info.context.today(), now=info.context.now(),
        )
        await _announce(info, decision.tier_event)
        await decision.claim.fetch_related("member", "entry")
        return MilesClaimPayload(claim=MilesClaim.from_row(decision.claim), user_errors=[])
