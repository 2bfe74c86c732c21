"""Members: the Member type, member queries and the member mutations."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.permission import BasePermission
from tortoise.expressions import Q

from members import models
from members import services as member_services
from members.access import Role
from members.access_log import PersonalField as DomainPersonalField
from members.access_log import member_access_page
from members.ids import database_id
from members.models import MemberAccess as MemberAccessRow
from members.addresses import Address as DomainAddress
from members.enums import MemberStatus as DomainStatus
from members.enums import Tier as DomainTier
from members.paging import Page
from members.queries import MemberFilter as DomainFilter
from members.queries import MemberOrder as DomainOrder
from members.queries import find_member, list_members
from schema.common import PageInfo, total_count_field
from schema.context import Info
from schema.errors import UserError, forbidden, mutation
from schema.permissions import FULL_MEMBER_VIEW, STAFF, allow
from schema.regions import Branch, Office

if TYPE_CHECKING:
    from schema.loyalty import LedgerEntryConnection, LedgerEntryKind, TierChangeConnection, TierStatus
    from schema.insights import LifecycleStage, ValueSegment
    from schema.care import CareCallConnection

Tier = strawberry.enum(DomainTier, name="Tier", description="Membership tiers, lowest to highest: 普通知音卡, 银卡, 金卡, 白金卡.")
MemberStatus = strawberry.enum(DomainStatus, name="MemberStatus", description="Whether a member may earn and redeem.")
MemberOrder = strawberry.enum(DomainOrder, name="MemberOrder", description="Orderings of member lists.")


class InScope(BasePermission):
    """Refuses the fields beyond the card view (id, cardNumber, names, tier) of a member
    shown outside the caller's scope: memberEnroll's member, which the address put in
    another office than the enroller's (or which has moved away since)."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        if not source.in_scope:
            raise forbidden("the member is outside your scope: only its card number, names and tier are shown")
        return True


full_view = [allow(*FULL_MEMBER_VIEW), InScope]


def row_columns(*columns: str) -> dict[str, tuple[str, ...]]:
    """A Member field's metadata: the member row's columns its resolver reads. A compiled
    member read (schema.plans) selects only its fields' columns (and the card view's and
    the scope's, members.queries.MEMBER_BASE_COLUMNS); a field without it reads the whole row."""
    return {ROW_COLUMNS: columns}


ROW_COLUMNS = "row_columns"

LoyaltyModule = "schema.loyalty"
InsightsModule = "schema.insights"
CareModule = "schema.care"


@strawberry.type(description="A contact address; it decides the member's office.")
class Address:
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 country code.")
    province: str | None = strawberry.field(description="Province or state.")
    city: str = strawberry.field(description="City.")
    line: str | None = strawberry.field(description="Street address.")
    postal_code: str | None = strawberry.field(description="Postal code.")


@strawberry.type(description="A member's consents (docs/PRIVACY.md): greetings are on until withdrawn, marketing is opt-in.")
class Consents:
    greetings: bool = strawberry.field(description="Birthday and festival greetings (greetingsDue lists only these members).")
    marketing: bool = strawberry.field(description="Marketing messages.")
    updated_at: datetime | None = strawberry.field(description="The last change of either; null if never changed.")


@strawberry.type(description="One assignment of a member to an office; every assignment is kept.")
class RegionAssignment:
    office_id: strawberry.Private[int]
    assigned_at: datetime = strawberry.field(description="When the assignment was made.")
    reason: str = strawberry.field(description='Why: "enrolment", "address" or "manual: <reason>".')

    @strawberry.field(description="The office assigned.")
    async def office(self, info: Info) -> Office:
        return Office.from_row(await info.context.reads.office.load(self.office_id))


@strawberry.type(description="A programme member (知音卡 holder).")
class Member:
    row: strawberry.Private[models.Member]
    id: strawberry.ID = strawberry.field(description="Opaque member id.")
    card_number: str = strawberry.field(description="Card number, CA + 9 digits; assigned at enrolment, never changes.")
    tier: Tier = strawberry.field(description="Current tier.")
    # False: the card view of a member outside the caller's scope (InScope).
    in_scope: strawberry.Private[bool] = True

    @classmethod
    def from_row(cls, row: models.Member, in_scope: bool = True) -> Member:
        return cls(
            row=row, id=strawberry.ID(str(row.id)), card_number=row.card_number, tier=row.tier, in_scope=in_scope,
        )

    def _read(self, info: Info, field: DomainPersonalField) -> None:
        """Note the read of a personal field in the access audit (members.access_log)."""
        context = info.context
        if context.access_log is not None:
            context.access_log.note(context.caller, context.request_key, self.row.id, field)

    @strawberry.field(description="Family name as given (Chinese or Latin).", metadata=row_columns("family_name"))
    def family_name(self, info: Info) -> str:
        self._read(info, DomainPersonalField.NAMES)
        return self.row.family_name

    @strawberry.field(description="Given name as given.", metadata=row_columns("given_name"))
    def given_name(self, info: Info) -> str:
        self._read(info, DomainPersonalField.NAMES)
        return self.row.given_name

    @strawberry.field(description="ACTIVE, SUSPENDED or CLOSED.", permission_classes=full_view, metadata=row_columns("status"))
    def status(self) -> MemberStatus:
        return self.row.status

    @strawberry.field(description="Redeemable miles balance (may be negative after a reversal).", permission_classes=full_view,
                      metadata=row_columns("redeemable_miles"))
    def redeemable_miles(self) -> int:
        return self.row.redeemable_miles

    @strawberry.field(description="When the member enrolled.", permission_classes=full_view, metadata=row_columns("enrolled_at"))
    def enrolled_at(self) -> datetime:
        return self.row.enrolled_at

    @strawberry.field(description="Date of birth, if given.", permission_classes=full_view, metadata=row_columns("birth_date"))
    def birth_date(self, info: Info) -> date | None:
        self._read(info, DomainPersonalField.BIRTH_DATE)
        return self.row.birth_date

    @strawberry.field(description="Phone number as given.", permission_classes=full_view, metadata=row_columns("phone_cipher"))
    def phone(self, info: Info) -> str | None:
        self._read(info, DomainPersonalField.PHONE)
        return member_services.member_phone(self.row)

    @strawberry.field(description="Email address as given.", permission_classes=full_view, metadata=row_columns("email_cipher"))
    def email(self, info: Info) -> str | None:
        self._read(info, DomainPersonalField.EMAIL)
        return member_services.member_email(self.row)

    @strawberry.field(
        description="Contact address; null once the member's personal data is erased.", permission_classes=full_view,
        metadata=row_columns("erased_at", "address_country", "address_province", "address_city", "address_line",
                             "address_postal_code"),
    )
    def address(self, info: Info) -> Address | None:
        self._read(info, DomainPersonalField.ADDRESS)
        r = self.row
        if r.erased_at is not None:
            return None
        return Address(
            country=r.address_country, province=r.address_province, city=r.address_city,
            line=r.address_line, postal_code=r.address_postal_code,
        )

    @strawberry.field(description="What the member consents to (greetings, marketing).", permission_classes=full_view,
                      metadata=row_columns("consent_greetings", "consent_marketing", "consents_updated_at"))
    def consents(self) -> Consents:
        r = self.row
        return Consents(greetings=r.consent_greetings, marketing=r.consent_marketing, updated_at=r.consents_updated_at)

    @strawberry.field(description="When the member's personal data was erased (memberErase); null if never.",
                      permission_classes=full_view, metadata=row_columns("erased_at"))
    def erased_at(self) -> datetime | None:
        return self.row.erased_at

    @strawberry.field(description="The sales office the member is assigned to.", permission_classes=full_view)
    async def office(self, info: Info) -> Office:
        return Office.from_row(await info.context.reads.office.load(self.row.office_id))

    @strawberry.field(description="The branch of the member's office.", permission_classes=full_view)
    async def branch(self, info: Info) -> Branch:
        return Branch.from_row(await info.context.reads.branch.load(self.row.branch_id))

    @strawberry.field(description="Every office assignment, oldest first.", permission_classes=full_view)
    async def region_history(self, info: Info) -> list[RegionAssignment]:
        rows = await info.context.reads.region_history.load(self.row.id)
        return [RegionAssignment(office_id=r.office_id, assigned_at=r.assigned_at, reason=r.reason) for r in rows]

    @strawberry.field(description="Tier, validity, qualifying totals of the rolling window and what the next tier needs.", permission_classes=full_view)
    async def tier_status(self, info: Info) -> Annotated[TierStatus, strawberry.lazy(LoyaltyModule)]:
        from schema.loyalty import tier_status

        return await tier_status(info, self.row)

    @strawberry.field(description="Redeemable miles that expire within the next 90 days.", permission_classes=full_view)
    async def miles_expiring_soon(self, info: Info) -> int:
        from schema.loyalty import miles_expiring_soon

        return await miles_expiring_soon(info, self.row)

    @strawberry.field(description="Ledger entries, newest first.", permission_classes=full_view)
    async def ledger(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        kinds: list[Annotated[LedgerEntryKind, strawberry.lazy(LoyaltyModule)]] | None = None,
    ) -> Annotated[LedgerEntryConnection, strawberry.lazy(LoyaltyModule)]:
        from schema.loyalty import member_ledger

        return await member_ledger(info, self.row, first, after, kinds)

    @strawberry.field(description="The member's tier changes, newest first.", permission_classes=full_view)
    async def tier_history(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Annotated[TierChangeConnection, strawberry.lazy(LoyaltyModule)]:
        from schema.loyalty import member_tier_history

        return await member_tier_history(info, self.row, first, after)

    @strawberry.field(
        description="Lifecycle stage (考察 NEW, 形成 GROWING, 稳定 STABLE, 退化 DECLINING, DORMANT) from earning activity: "
        "a daily snapshot as of segmentsAsOf, written by `loyalty care refresh`; the member's own postings do not change it until the next run.",
        permission_classes=full_view,
        metadata=row_columns("lifecycle_stage"),
    )
    def lifecycle_stage(self) -> Annotated[LifecycleStage, strawberry.lazy(InsightsModule)]:
        return self.row.lifecycle_stage

    @strawberry.field(
        description="Value segment: rank of the trailing qualifying miles within the member's office; "
        "a daily snapshot as of segmentsAsOf, like lifecycleStage.",
        permission_classes=full_view,
        metadata=row_columns("value_segment"),
    )
    def value_segment(self) -> Annotated[ValueSegment, strawberry.lazy(InsightsModule)]:
        return self.row.value_segment

    @strawberry.field(
        description="The day lifecycleStage and valueSegment were computed for; null before the first `loyalty care refresh`.",
        permission_classes=full_view,
        metadata=row_columns("care_refreshed_on"),
    )
    def segments_as_of(self) -> date | None:
        return self.row.care_refreshed_on

    @strawberry.field(
        description="Care calls made to the member, newest first (staff only: calls are staff notes).",
        permission_classes=[allow(*STAFF), InScope],
    )
    async def care_calls(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Annotated[CareCallConnection, strawberry.lazy(CareModule)]:
        from schema.care import member_care_calls

        return await member_care_calls(info, self.row, first, after)


@strawberry.type(description="A member in a list, with its cursor.")
class MemberEdge:
    node: Member = strawberry.field(description="The member.")
    cursor: str = strawberry.field(description="Opaque keyset cursor; pass as after: to continue.")


@strawberry.type(description="A page of members.")
class MemberConnection:
    edges: list[MemberEdge] = strawberry.field(description="The members of this page.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and where to continue.")
    page: strawberry.Private[Page]
    total_count: int = total_count_field("Members matching the filter in the caller's scope.")


@strawberry.input(description="Narrows a member list; scope always applies.")
class MemberFilter:
    office_code: str | None = strawberry.field(default=None, description="Only this office (must be in scope).")
    branch_code: str | None = strawberry.field(default=None, description="Only this branch (must be in scope).")
    tiers: list[Tier] | None = strawberry.field(default=None, description="E.g. [SILVER, GOLD, PLATINUM] for the VIP list.")
    search: str | None = strawberry.field(default=None, description="Matches card number exactly, or family/given name by prefix.")
    at_risk_of_downgrade: bool | None = strawberry.field(default=None, description="Only members at risk of losing their tier at validUntil (or only those not at risk).")
    lifecycle_stages: list[Annotated[LifecycleStage, strawberry.lazy(InsightsModule)]] | None = strawberry.field(
        default=None, description="Only members in these lifecycle stages (the daily snapshot), e.g. [DECLINING]."
    )
    value_segments: list[Annotated[ValueSegment, strawberry.lazy(InsightsModule)]] | None = strawberry.field(
        default=None, description="Only members in these value segments (the daily snapshot), e.g. [HIGH]."
    )


async def _at_risk_condition(info: Info, at_risk: bool) -> Q:
    from loyalty.tiers import at_risk_member_ids

    ids = list(await at_risk_member_ids(info.context.reads.members(), rules=info.context.rules, today=info.context.today()))
    if at_risk:
        return Q(id__in=ids) if ids else Q(id__lt=0)
    return ~Q(id__in=ids) if ids else Q()


@strawberry.enum(description="A member's personal field, as the access audit records its reads.")
class PersonalField(Enum):
    NAMES = strawberry.enum_value("NAMES", description="familyName and givenName (recorded for partners and the airline).")
    BIRTH_DATE = strawberry.enum_value("BIRTH_DATE", description="birthDate.")
    PHONE = strawberry.enum_value("PHONE", description="phone.")
    EMAIL = strawberry.enum_value("EMAIL", description="email.")
    ADDRESS = strawberry.enum_value("ADDRESS", description="address.")


@strawberry.type(description="One caller's read of a member's personal fields in one request (the access audit).")
class MemberAccess:
    row: strawberry.Private[MemberAccessRow]

    @strawberry.field(description="When the fields were read.")
    def at(self) -> datetime:
        return self.row.at

    @strawberry.field(description="Who read them, as audit trails write a caller: role:subject@scope.")
    def actor(self) -> str:
        return self.row.actor

    @strawberry.field(description="The caller's role: admin, branch, office, partner or airline.")
    def role(self) -> str:
        return self.row.role

    @strawberry.field(description="The partner's code when a partner read them.")
    def partner_code(self) -> str | None:
        return self.row.partner_code

    @strawberry.field(description="The personal fields read.")
    def fields(self) -> list[PersonalField]:
        return [PersonalField[bit.name] for bit in DomainPersonalField if self.row.field_bits & bit]


@strawberry.type(description="A read of a member's personal fields, with its cursor.")
class MemberAccessEdge:
    node: MemberAccess = strawberry.field(description="The read.")
    cursor: str = strawberry.field(description="Opaque keyset cursor; pass as after: to continue.")


@strawberry.type(description="A page of the access audit of one member, newest first.")
class MemberAccessConnection:
    edges: list[MemberAccessEdge] = strawberry.field(description="The reads of this page.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and where to continue.")
    page: strawberry.Private[Page]
    total_count: int = total_count_field("Reads of the member's personal fields recorded so far.")


def member_view(info: Info, row: models.Member | None) -> Member | None:
    """A member row as the caller may see it through the read layer (schema.reads):
    null when there is none or it is outside the caller's scope, e.g. a payload's
    member that moved to another office since the first response of a replayed
    request."""
    return Member.from_row(row) if row is not None and info.context.reads.visible(row) else None


@strawberry.type
class MemberQuery:
    @strawberry.field(description="The member behind a member token.", permission_classes=[allow(Role.MEMBER)])
    async def me(self, info: Info) -> Member | None:
        return member_view(info, await info.context.reads.member.load(info.context.caller.member_id))

    @strawberry.field(
        description="One of id or cardNumber. Null when unknown or outside the caller's scope.",
        permission_classes=[allow(*FULL_MEMBER_VIEW, Role.PARTNER, Role.AIRLINE)],
    )
    async def member(self, info: Info, id: strawberry.ID | None = None, card_number: str | None = None) -> Member | None:
        caller = info.context.caller
        if caller.role in (Role.PARTNER, Role.AIRLINE) and card_number is None:
            # Ids are sequential, card numbers unguessable: by id they could list every member.
            raise forbidden(f"role {caller.role.value} looks members up by cardNumber")
        # A compiled plan's info says which columns its selection reads (schema.plans.member_columns).
        columns = getattr(info, "row_columns", None)
        return member_view(info, await find_member(caller, member_id=id, card_number=card_number, columns=columns))

    @strawberry.field(
        description="Admin: who read the member's personal fields (contact details and birth date by staff, names by "
        "partners and the airline), newest first. Reads are written in batches within about a second.",
        permission_classes=[allow(Role.ADMIN)],
    )
    async def member_access_log(
        self, info: Info, member_id: strawberry.ID, first: int | None = 20, after: str | None = None
    ) -> MemberAccessConnection:
        page = await member_access_page(database_id(member_id) or 0, first, after)
        return MemberAccessConnection(
            edges=[MemberAccessEdge(node=MemberAccess(row=row), cursor=c) for row, c in zip(page.items, page.cursors)],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            page=page,
        )

    @strawberry.field(
        description="Members visible to the caller (office staff: their office; branch: their branch).",
        permission_classes=[allow(*STAFF)],
    )
    async def members(
        self,
        info: Info,
        filter: MemberFilter | None = None,
        order_by: MemberOrder | None = DomainOrder.TIER_DESC_NAME,
        first: int | None = 50,
        after: str | None = None,
    ) -> MemberConnection:
        caller = info.context.caller
        domain_filter = None
        extra = None
        if filter is not None:
            domain_filter = DomainFilter(
                office_code=filter.office_code, branch_code=filter.branch_code,
                tiers=tuple(filter.tiers) if filter.tiers is not None else None, search=filter.search,
                lifecycle_stages=tuple(filter.lifecycle_stages) if filter.lifecycle_stages is not None else None,
                value_segments=tuple(filter.value_segments) if filter.value_segments is not None else None,
            )
            if filter.at_risk_of_downgrade is not None:
                extra = await _at_risk_condition(info, filter.at_risk_of_downgrade)
        page = await list_members(caller, domain_filter, order_by or DomainOrder.TIER_DESC_NAME, first, after, extra=extra)
        return MemberConnection(
            edges=[MemberEdge(node=Member.from_row(m), cursor=c) for m, c in zip(page.items, page.cursors)],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            page=page,
        )


# ---- mutations -------------------------------------------------------------------


@strawberry.input(description="A contact address.")
class AddressInput:
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 country code, e.g. CN.")
    city: str = strawberry.field(description="City.")
    province: str | None = strawberry.field(default=None, description="Province or state.")
    line: str | None = strawberry.field(default=None, description="Street address.")
    postal_code: str | None = strawberry.field(default=None, description="Postal code.")

    def to_domain(self) -> DomainAddress:
        return DomainAddress(country=self.country, city=self.city, province=self.province, line=self.line, postal_code=self.postal_code)


@strawberry.input(description="A new member.")
class MemberEnrollInput:
    family_name: str = strawberry.field(description="Family name (Chinese or Latin).")
    given_name: str = strawberry.field(description="Given name.")
    address: AddressInput = strawberry.field(description="Contact address; it decides the office.")
    birth_date: date | None = strawberry.field(default=None, description="Date of birth.")
    phone: str | None = strawberry.field(default=None, description="Phone; no two active members share one.")
    email: str | None = strawberry.field(default=None, description="Email; no two active members share one.")
    idempotency_key: str | None = strawberry.field(default=None, description="Retry key: the same key and content returns the first result.")


@strawberry.type(description="Result of memberEnroll.")
class MemberEnrollPayload:
    member: Member | None = strawberry.field(
        description="The enrolled member; outside the caller's scope (the address decides the office), only its id, card number, names and tier."
    )
    user_errors: list[UserError] = strawberry.field(description="Why the enrolment was refused.")


@strawberry.input(description="Changes to a member's contact details; omitted fields stay as they are.")
class MemberUpdateInput:
    id: strawberry.ID = strawberry.field(description="The member.")
    phone: str | None = strawberry.field(default=strawberry.UNSET, description="New phone; null clears it.")
    email: str | None = strawberry.field(default=strawberry.UNSET, description="New email; null clears it.")
    address: AddressInput | None = strawberry.field(
        default=strawberry.UNSET, description="A new address re-assigns the member's office by the address rules, with history."
    )


@strawberry.type(description="Result of memberUpdate.")
class MemberUpdatePayload:
    member: Member | None = strawberry.field(description="The member after the change.")
    user_errors: list[UserError] = strawberry.field(description="Why the change was refused.")


@strawberry.input(description="Assign a member to an office by hand.")
class MemberRegionAssignInput:
    member_id: strawberry.ID = strawberry.field(description="The member.")
    office_code: str = strawberry.field(description="The office to assign (within the caller's branch for branch staff).")
    reason: str = strawberry.field(description="Why; kept in the region history.")


@strawberry.type(description="Result of memberRegionAssign.")
class MemberRegionAssignPayload:
    member: Member | None = strawberry.field(description="The member after the assignment.")
    user_errors: list[UserError] = strawberry.field(description="Why the assignment was refused.")


@strawberry.input(description="Suspend, close or re-activate a member.")
class MemberStatusSetInput:
    member_id: strawberry.ID = strawberry.field(description="The member.")
    status: MemberStatus = strawberry.field(description="The new status.")
    reason: str = strawberry.field(description="Why; audited.")


@strawberry.type(description="Result of memberStatusSet.")
class MemberStatusSetPayload:
    member: Member | None = strawberry.field(description="The member after the change.")
    user_errors: list[UserError] = strawberry.field(description="Why the change was refused.")


def _unset(value):
    return member_services.UNSET if value is strawberry.UNSET else value


@strawberry.type
class MemberMutation:
    @mutation(description="Enrol a member; the address decides the office, whoever enrols.",
                         permission_classes=[allow(Role.ADMIN, Role.AIRLINE, Role.OFFICE, Role.BRANCH)])
    async def member_enroll(self, info: Info, input: MemberEnrollInput) -> MemberEnrollPayload:
        enrolment = member_services.Enrolment(
            family_name=input.family_name, given_name=input.given_name, address=input.address.to_domain(),
            birth_date=input.birth_date, phone=input.phone, email=input.email,
        )
        row = await member_services.enroll(
            info.context.caller, enrolment, today=info.context.today(), idempotency_key=input.idempotency_key
        )
        # The enroller is shown the card (id, card number, names, tier) of a member the
        # address put in another office, and of one that has moved away since a
        # replayed first response; the rest only in scope.
        return MemberEnrollPayload(member=Member.from_row(row, in_scope=info.context.reads.visible(row)), user_errors=[])

    @mutation(description="Change a member's phone, email or address (the member themself, or an admin).",
                         permission_classes=[allow(Role.MEMBER, Role.ADMIN)])
    async def member_update(self, info: Info, input: MemberUpdateInput) -> MemberUpdatePayload:
        address = _unset(input.address)
        changes = member_services.MemberChanges(
            phone=_unset(input.phone), email=_unset(input.email),
            address=address.to_domain() if isinstance(address, AddressInput) else address,
        )
        row = await member_services.update(info.context.caller, input.id, changes)
        return MemberUpdatePayload(member=member_view(info, row), user_errors=[])

    @mutation(description="Assign a member to an office by hand, with a reason (branch staff within their branch, or admin).",
                         permission_classes=[allow(Role.BRANCH, Role.ADMIN)])
    async def member_region_assign(self, info: Info, input: MemberRegionAssignInput) -> MemberRegionAssignPayload:
        row = await member_services.assign_region(info.context.caller, input.member_id, input.office_code, input.reason)
        return MemberRegionAssignPayload(member=member_view(info, row), user_errors=[])

    @mutation(description="Admin: suspend, close or re-activate a member; the ledger is kept.",
                         permission_classes=[allow(Role.ADMIN)])
    async def member_status_set(self, info: Info, input: MemberStatusSetInput) -> MemberStatusSetPayload:
        row = await member_services.set_status(info.context.caller, input.member_id, input.status, input.reason)
        return MemberStatusSetPayload(member=member_view(info, row), user_errors=[])
