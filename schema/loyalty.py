"""Miles and tiers: ledger entries, tier status and changes, rules, and the posting mutations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from loyalty import ledger as ledger_services
from loyalty import reads, statements, tiers
from loyalty.statements import Statement
from loyalty.models import LedgerEntry as EntryRow
from loyalty.models import LedgerEntryKind as DomainKind
from loyalty.models import TierChangeReason as DomainReason
from loyalty.models import TierEvent
from members import models
from members.access import Role
from members.enums import Tier as DomainTier
from members.paging import Page
from schema.common import PageInfo
from schema.context import Info
from schema.errors import UserError, mutation
from schema.permissions import ALL_ROLES, FULL_MEMBER_VIEW, allow

MembersModule = "schema.members"
MemberType = Annotated["Member", strawberry.lazy(MembersModule)]
TierType = Annotated["Tier", strawberry.lazy(MembersModule)]

LedgerEntryKind = strawberry.enum(DomainKind, name="LedgerEntryKind", description="What a ledger entry records.")
TierChangeReason = strawberry.enum(DomainReason, name="TierChangeReason", description="Why a tier changed.")


def _segments(hundredths: int) -> float:
    return hundredths / 100


def _member(info: Info, row: models.Member | None):
    from schema.members import member_view

    return member_view(info, row)


@strawberry.type(description="A member's tier, its validity and progress in the rolling window.")
class TierStatus:
    tier: TierType = strawberry.field(description="Current tier.")
    since: date = strawberry.field(description="When the current tier was reached or last decided.")
    valid_until: date | None = strawberry.field(description="Last day the tier is held unless it is retained or raised; null for STANDARD.")
    qualifying_miles: int = strawberry.field(description="Qualifying miles in the current rolling window.")
    qualifying_segments: float = strawberry.field(description="Qualifying segments in the current rolling window.")
    next_tier: TierType | None = strawberry.field(description="The next tier up (null at PLATINUM).")
    miles_to_next_tier: int | None = strawberry.field(description="Qualifying miles still missing for the next tier.")
    segments_to_next_tier: float | None = strawberry.field(description="Qualifying segments still missing for the next tier.")
    at_risk_of_downgrade: bool = strawberry.field(description="Whether, at today's pace, the tier would be lost at validUntil.")


async def tier_status(info: Info, row: models.Member) -> TierStatus:
    view = await info.context.reads.tier_status.load(row)
    return TierStatus(
        tier=view.tier, since=view.since, valid_until=view.valid_until,
        qualifying_miles=view.qualifying_miles, qualifying_segments=_segments(view.qualifying_segments),
        next_tier=view.next_tier, miles_to_next_tier=view.miles_to_next_tier,
        segments_to_next_tier=None if view.segments_to_next_tier is None else _segments(view.segments_to_next_tier),
        at_risk_of_downgrade=view.at_risk_of_downgrade,
    )


async def miles_expiring_soon(info: Info, row: models.Member) -> int:
    from loyalty.jobs import miles_expiring_soon as expiring

    return await expiring(row.id, rules=info.context.rules, today=info.context.today())


@strawberry.type(description="The flight a FLIGHT entry was earned on.")
class Flight:
    carrier: str = strawberry.field(description="IATA carrier code, e.g. CA.")
    flight_number: str = strawberry.field(description="Flight number.")
    date: date = strawberry.field(description="Date of the flight.")
    origin: str = strawberry.field(description="IATA airport code of departure.")
    destination: str = strawberry.field(description="IATA airport code of arrival.")
    distance_km: int = strawberry.field(description="Flown distance in km.")
    fare_class: str = strawberry.field(description="Booking class letter, e.g. Y.")


@strawberry.type(description="One append-only ledger posting.")
class LedgerEntry:
    row: strawberry.Private[EntryRow]
    id: strawberry.ID = strawberry.field(description="Opaque entry id.")
    kind: LedgerEntryKind = strawberry.field(description="What the entry records.")
    activity_date: date = strawberry.field(description="Date of the activity (flight date, partner activity, redemption day).")
    posted_at: datetime = strawberry.field(description="When the entry was posted.")
    qualifying_miles: int = strawberry.field(description="Qualifying miles (signed).")
    qualifying_segments: float = strawberry.field(description="Qualifying segments (signed).")
    redeemable_miles: int = strawberry.field(description="Redeemable miles, signed: negative for redemption, expiry.")
    source: str = strawberry.field(description='"AIRLINE", a partner code, or "ADMIN".')
    external_ref: str | None = strawberry.field(description="The source's reference, unique per source.")
    description: str | None = strawberry.field(description="Free text.")

    @classmethod
    def from_row(cls, row: EntryRow) -> LedgerEntry:
        return cls(
            row=row, id=strawberry.ID(str(row.id)), kind=row.kind, activity_date=row.activity_date,
            posted_at=row.posted_at, qualifying_miles=row.qualifying_miles,
            qualifying_segments=_segments(row.qualifying_segments), redeemable_miles=row.redeemable_miles,
            source=row.source, external_ref=row.external_ref, description=row.description,
        )

    @strawberry.field(description="The member the entry belongs to.")
    async def member(self, info: Info) -> MemberType:
        return _member(info, await info.context.reads.member.load(self.row.member_id))

    @strawberry.field(description="The flight, on FLIGHT entries.")
    def flight(self) -> Flight | None:
        r = self.row
        if r.kind is not DomainKind.FLIGHT or r.carrier is None:
            return None
        return Flight(
            carrier=r.carrier, flight_number=r.flight_number, date=r.activity_date, origin=r.origin,
            destination=r.destination, distance_km=r.distance_km, fare_class=r.fare_class,
        )

    @strawberry.field(description="On a flight entry: the TIER_BONUS entry posted with it, if any.")
    async def bonus(self, info: Info) -> LedgerEntry | None:
        return _entry(await info.context.reads.bonus_of.load(self.row.id))

    @strawberry.field(description="On a TIER_BONUS entry: the flight it was earned on.")
    async def bonus_for(self, info: Info) -> LedgerEntry | None:
        return await _entry_by_id(info, self.row.bonus_for_id)

    @strawberry.field(description="The REVERSAL entry that undid this entry, if any.")
    async def reversed_by(self, info: Info) -> LedgerEntry | None:
        return _entry(await info.context.reads.reversal_of.load(self.row.id))

    @strawberry.field(description="On a REVERSAL entry: the entry it undoes.")
    async def reverses(self, info: Info) -> LedgerEntry | None:
        return await _entry_by_id(info, self.row.reverses_id)


def _entry(row: EntryRow | None) -> LedgerEntry | None:
    return LedgerEntry.from_row(row) if row is not None else None


async def _entry_by_id(info: Info, entry_id: int | None) -> LedgerEntry | None:
    return _entry(await info.context.reads.entry.load(entry_id)) if entry_id is not None else None


@strawberry.type(description="A tier change from the durable event log.")
class TierChange:
    event: strawberry.Private[TierEvent]
    cursor: str = strawberry.field(description="Opaque cursor of this event in the durable event log; resume with after:.")
    card_number: str = strawberry.field(description="Card number of the member.")
    from_tier: TierType = strawberry.field(description="Tier before the change.")
    to_tier: TierType = strawberry.field(description="Tier after the change.")
    effective_at: datetime = strawberry.field(description="When the change took effect.")
    valid_until: date | None = strawberry.field(description="Validity of the new tier; null for STANDARD.")

    @classmethod
    def from_event(cls, event: TierEvent) -> TierChange:
        return cls(
            event=event, cursor=reads.cursor_for(event), card_number=event.card_number,
            from_tier=event.from_tier, to_tier=event.to_tier,
            effective_at=event.effective_at, valid_until=event.valid_until,
        )

    # Partners (and the airline, like a partner) see only the card, the tiers and the dates (AUTH.md).
    @strawberry.field(description="Why the tier changed.", permission_classes=[allow(*FULL_MEMBER_VIEW)])
    def reason(self) -> TierChangeReason:
        return self.event.reason

    @strawberry.field(
        description="The member whose tier changed; null when the member has since moved outside the caller's scope "
        "(the change itself stays visible to the office and branch of its time).",
        permission_classes=[allow(*FULL_MEMBER_VIEW)],
    )
    async def member(self, info: Info) -> MemberType | None:
        return _member(info, await info.context.reads.member.load(self.event.member_id))

    @strawberry.field(description="Office of the member at the time of the change.", permission_classes=[allow(*FULL_MEMBER_VIEW)])
    def office_code(self) -> str:
        return self.event.office_code

    @strawberry.field(description="Branch of the member at the time of the change.", permission_classes=[allow(*FULL_MEMBER_VIEW)])
    def branch_code(self) -> str:
        return self.event.branch_code


@strawberry.type(description="A ledger entry in a list, with its cursor.")
class LedgerEntryEdge:
    node: LedgerEntry = strawberry.field(description="The entry.")
    cursor: str = strawberry.field(description="Opaque keyset cursor.")


@strawberry.type(description="A page of ledger entries.")
class LedgerEntryConnection:
    edges: list[LedgerEntryEdge] = strawberry.field(description="The entries of this page.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and where to continue.")


@strawberry.type(description="A tier change in a list, with its cursor.")
class TierChangeEdge:
    node: TierChange = strawberry.field(description="The tier change.")
    cursor: str = strawberry.field(description="Opaque cursor (the event's position).")


@strawberry.type(description="A page of tier changes.")
class TierChangeConnection:
    edges: list[TierChangeEdge] = strawberry.field(description="The tier changes of this page.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and where to continue.")


def _entry_connection(page: Page[EntryRow]) -> LedgerEntryConnection:
    return LedgerEntryConnection(
        edges=[LedgerEntryEdge(node=LedgerEntry.from_row(r), cursor=c) for r, c in zip(page.items, page.cursors)],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )


def _change_connection(page: Page[TierEvent]) -> TierChangeConnection:
    return TierChangeConnection(
        edges=[TierChangeEdge(node=TierChange.from_event(e), cursor=c) for e, c in zip(page.items, page.cursors)],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )


async def member_ledger(info: Info, row: models.Member, first, after, kinds) -> LedgerEntryConnection:
    return _entry_connection(await reads.member_ledger(row.id, first, after, kinds))


async def member_tier_history(info: Info, row: models.Member, first, after) -> TierChangeConnection:
    return _change_connection(await reads.member_tier_history(row.id, first, after))


@strawberry.type(description="Thresholds and benefits of one tier.")
class TierRule:
    tier: TierType = strawberry.field(description="The tier.")
    upgrade_miles: int = strawberry.field(description="Qualifying miles in the window that win the tier.")
    upgrade_segments: float = strawberry.field(description="Or qualifying segments in the window that win it.")
    retain_miles: int = strawberry.field(description="Qualifying miles that keep it at review.")
    retain_segments: float = strawberry.field(description="Or qualifying segments that keep it.")
    validity_months: int = strawberry.field(description="Months the tier is valid after an upgrade.")
    bonus_percent: int = strawberry.field(description="Redeemable bonus on flights, in percent.")


@strawberry.type(description="The tier rules in force.")
class TierRules:
    window_months: int = strawberry.field(description="Length of the rolling qualifying window in calendar months.")
    rules: list[TierRule] = strawberry.field(description="One rule per tier, lowest first.")


@strawberry.type(description="A partner's own postings over a range of days, with totals, to reconcile its books.")
class PartnerStatement:
    statement: strawberry.Private[Statement]
    partner_code: str = strawberry.field(description="The partner.")
    from_: date = strawberry.field(name="from", description="First day (posting date, programme time zone).")
    to: date = strawberry.field(description="Last day.")

    @strawberry.field(description="Entries the partner credited in the range (reversed ones included).")
    async def total_entries(self) -> int:
        return (await self.statement.totals())[0]

    @strawberry.field(description="Miles those entries credited (before any reversal).")
    async def total_miles(self) -> int:
        return (await self.statement.totals())[1]

    @strawberry.field(description="The entries, newest first (each says whether it was reversed: reversedBy).")
    async def entries(self, first: int | None = 100, after: str | None = None) -> LedgerEntryConnection:
        return _entry_connection(await self.statement.page(first, after))


@strawberry.type
class LoyaltyQuery:
    @strawberry.field(
        description="A partner's postings from `from` to `to` (posting days, at most 366) with totals: a partner its "
        "own (partnerCode omitted), an admin any partner's.",
        permission_classes=[allow(Role.PARTNER, Role.ADMIN)],
    )
    async def partner_statement(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from", description="First day.")],
        to: Annotated[date, strawberry.argument(description="Last day (not before from).")],
        partner_code: str | None = None,
    ) -> PartnerStatement:
        statement = await statements.partner_statement(
            info.context.caller, partner_code, from_, to, timezone=info.context.timezone
        )
        return PartnerStatement(statement=statement, partner_code=statement.partner_code, from_=from_, to=to)

    @strawberry.field(
        description="Tier changes visible to the caller, oldest first, after a cursor: the replayable event log.",
        permission_classes=[allow(*ALL_ROLES)],
    )
    async def tier_changes(
        self, info: Info, after: str | None = None, first: int | None = 50,
        office_code: str | None = None, branch_code: str | None = None,
    ) -> TierChangeConnection:
        page = await reads.tier_changes(info.context.caller, after, first, office_code, branch_code)
        return _change_connection(page)

    @strawberry.field(description="The tier rules in force (thresholds, windows, bonuses).", permission_classes=[allow(*ALL_ROLES)])
    def tier_rules(self, info: Info) -> TierRules:
        rules = info.context.rules
        return TierRules(
            window_months=rules.window_months,
            rules=[
                TierRule(
                    tier=DomainTier[r.tier], upgrade_miles=r.upgrade_miles, upgrade_segments=_segments(r.upgrade_segments),
                    retain_miles=r.retain_miles, retain_segments=_segments(r.retain_segments),
                    validity_months=r.validity_months, bonus_percent=r.bonus_percent,
                )
                for r in rules.tiers
            ],
        )


# ---- mutations -------------------------------------------------------------------


@strawberry.input(description="A flown segment.")
class FlightInput:
    carrier: str = strawberry.field(description="IATA carrier code, e.g. CA.")
    flight_number: str = strawberry.field(description="Flight number, e.g. 1501.")
    date: date = strawberry.field(description="Date of the flight (within the claims window).")
    origin: str = strawberry.field(description="IATA airport code of departure.")
    destination: str = strawberry.field(description="IATA airport code of arrival.")
    distance_km: int = strawberry.field(description="Flown distance in km (500 km minimum credit).")
    fare_class: str = strawberry.field(description="Booking class letter, e.g. Y.")


@strawberry.input(description="Credit a flight to a member.")
class FlightAccrueInput:
    card_number: str = strawberry.field(description="The member's card number.")
    flight: FlightInput = strawberry.field(description="The flight.")
    external_ref: str = strawberry.field(description="The airline's reference; unique, a replay returns the first result.")


@strawberry.type(description="Result of flightAccrue.")
class FlightAccruePayload:
    entry: LedgerEntry | None = strawberry.field(description="The FLIGHT entry.")
    member: MemberType | None = strawberry.field(description="The member after the posting.")
    tier_change: TierChange | None = strawberry.field(description="Set when this accrual moved the member to another tier.")
    user_errors: list[UserError] = strawberry.field(description="Why the accrual was refused.")


@strawberry.input(description="Credit partner miles to a member.")
class PartnerAccrueInput:
    card_number: str = strawberry.field(description="The member's card number.")
    family_name: str = strawberry.field(description="Checked against the card to stop mistyped or guessed card numbers.")
    miles: int = strawberry.field(description="Redeemable miles to credit.")
    activity_date: date = strawberry.field(description="Date of the partner activity (within the claims window).")
    external_ref: str = strawberry.field(description="The partner's reference; unique per partner.")
    description: str | None = strawberry.field(default=None, description="Free text, e.g. the hotel stay.")


@strawberry.type(description="Result of partnerAccrue.")
class PartnerAccruePayload:
    entry: LedgerEntry | None = strawberry.field(description="The PARTNER entry.")
    user_errors: list[UserError] = strawberry.field(description="Why the accrual was refused.")


@strawberry.input(description="Spend redeemable miles.")
class MilesRedeemInput:
    member_id: strawberry.ID = strawberry.field(description="The member.")
    miles: int = strawberry.field(description="Miles to redeem (positive).")
    description: str = strawberry.field(description="What the miles are for.")
    idempotency_key: str = strawberry.field(description="Retry key: the same key and content returns the first result.")


@strawberry.type(description="Result of milesRedeem.")
class MilesRedeemPayload:
    entry: LedgerEntry | None = strawberry.field(description="The REDEMPTION entry.")
    member: MemberType | None = strawberry.field(description="The member after the redemption.")
    user_errors: list[UserError] = strawberry.field(description="Why the redemption was refused.")


@strawberry.input(description="Undo a ledger entry.")
class LedgerEntryReverseInput:
    entry_id: strawberry.ID = strawberry.field(description="The entry to reverse.")
    reason: str = strawberry.field(description="Why; kept on the reversal entry.")
    idempotency_key: str = strawberry.field(description="Retry key: the same key and content returns the first result.")


@strawberry.type(description="Result of ledgerEntryReverse.")
class LedgerEntryReversePayload:
    entry: LedgerEntry | None = strawberry.field(description="The REVERSAL entry (of the flight, when a bonus was reversed too).")
    member: MemberType | None = strawberry.field(description="The member after the reversal.")
    tier_change: TierChange | None = strawberry.field(description="Set when the reversal changed the member's tier.")
    user_errors: list[UserError] = strawberry.field(description="Why the reversal was refused.")


@strawberry.input(description="Set a member's tier by hand.")
class TierOverrideInput:
    member_id: strawberry.ID = strawberry.field(description="The member.")
    tier: TierType = strawberry.field(description="The tier to set.")
    reason: str = strawberry.field(description="Why; audited.")
    valid_until: date | None = strawberry.field(default=None, description="Validity; default as for an upgrade today.")


@strawberry.type(description="Result of tierOverride.")
class TierOverridePayload:
    member: MemberType | None = strawberry.field(description="The member after the override.")
    tier_change: TierChange | None = strawberry.field(description="The MANUAL tier change.")
    user_errors: list[UserError] = strawberry.field(description="Why the override was refused.")


def _change(event: TierEvent | None) -> TierChange | None:
    return TierChange.from_event(event) if event is not None else None


async def _announce(info: Info, event: TierEvent | None) -> None:
    """After a commit that wrote a tier event: wake the tierChanged feed at once (in this
    process, and in the others through Redis) instead of at its next poll."""
    if event is not None:
        await info.context.extra["event_feed"].announce()


@strawberry.type
class LoyaltyMutation:
    @mutation(description="Credit a flown segment (source AIRLINE); upgrades take effect at once.",
                         permission_classes=[allow(Role.AIRLINE, Role.ADMIN)])
    async def flight_accrue(self, info: Info, input: FlightAccrueInput) -> FlightAccruePayload:
        f = input.flight
        details = ledger_services.FlightDetails(
            carrier=f.carrier, flight_number=f.flight_number, date=f.date, origin=f.origin,
            destination=f.destination, distance_km=f.distance_km, fare_class=f.fare_class,
        )
        result = await ledger_services.flight_accrue(
            info.context.caller, input.card_number, details, input.external_ref,
            rules=info.context.rules, today=info.context.today(),
        )
        await _announce(info, result.tier_event)
        return FlightAccruePayload(
            entry=LedgerEntry.from_row(result.entry), member=_member(info, result.member),
            tier_change=_change(result.tier_event), user_errors=[],
        )

    @mutation(description="Credit partner miles under the partner's own code (redeemable only).",
                         permission_classes=[allow(Role.PARTNER, Role.ADMIN)])
    async def partner_accrue(self, info: Info, input: PartnerAccrueInput) -> PartnerAccruePayload:
        result = await ledger_services.partner_accrue(
            info.context.caller, input.card_number, input.family_name, input.miles, input.activity_date,
            input.description, input.external_ref, rules=info.context.rules, today=info.context.today(),
        )
        return PartnerAccruePayload(entry=LedgerEntry.from_row(result.entry), user_errors=[])

    @mutation(description="Redeem miles, earliest-expiring first (a member their own, or an admin).",
                         permission_classes=[allow(Role.MEMBER, Role.ADMIN)])
    async def miles_redeem(self, info: Info, input: MilesRedeemInput) -> MilesRedeemPayload:
        result = await ledger_services.redeem(
            info.context.caller, input.member_id, input.miles, input.description, input.idempotency_key,
            rules=info.context.rules, today=info.context.today(),
        )
        return MilesRedeemPayload(entry=LedgerEntry.from_row(result.entry), member=_member(info, result.member), user_errors=[])

    @mutation(description="Reverse an entry at most once (airline: its flight entries; admin: any entry).",
                         permission_classes=[allow(Role.AIRLINE, Role.ADMIN)])
    async def ledger_entry_reverse(self, info: Info, input: LedgerEntryReverseInput) -> LedgerEntryReversePayload:
        result = await ledger_services.reverse(
            info.context.caller, input.entry_id, input.reason, input.idempotency_key,
            rules=info.context.rules, today=info.context.today(),
        )
        await _announce(info, result.tier_event)
        return LedgerEntryReversePayload(
            entry=LedgerEntry.from_row(result.entry), member=_member(info, result.member),
            tier_change=_change(result.tier_event), user_errors=[],
        )

    @mutation(description="Admin: set a member's tier by hand, with a reason (reason MANUAL).",
                         permission_classes=[allow(Role.ADMIN)])
    async def tier_override(self, info: Info, input: TierOverrideInput) -> TierOverridePayload:
        row, event = await tiers.override_tier(
            info.context.caller, input.member_id, input.tier, input.valid_until, input.reason,
            rules=info.context.rules, today=info.context.today(),
        )
        await _announce(info, event)
        return TierOverridePayload(member=_member(info, row), tier_change=_change(event), user_errors=[])
