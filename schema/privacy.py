"""A member's personal data over GraphQL (privacy, members.privacy): memberDataExport
(the member their own, an admin anyone's), memberErase (admin) and memberConsentSet
(the member their own, an admin anyone's)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from members.access import Role
from members.privacy import Consents as DomainConsents
from members.privacy import set_consents
from privacy.erasure import erase_member
from privacy.export import export_member, find_member_for_export
from schema.context import Info
from schema.errors import UserError, mutation
from schema.members import Member, member_view
from schema.permissions import allow


@strawberry.type(description="The audit record of a member's erasure: who erased the personal data, when and why.")
class MemberErasure:
    erased_at: datetime = strawberry.field(description="When the personal data was erased.")
    erased_by: str = strawberry.field(description='Who erased it, e.g. "admin:alice".')
    reason: str = strawberry.field(description="Why, in the operator's words.")


@strawberry.input(description="Erase a member's personal data; the card, ledger, balances and tier events stay.")
class MemberEraseInput:
    member_id: strawberry.ID = strawberry.field(description="The member.")
    reason: str = strawberry.field(description="Why (e.g. the request's reference); audited. Never the member's data.")


@strawberry.type(description="Result of memberErase.")
class MemberErasePayload:
    member: Member | None = strawberry.field(description="The member as erased: names ERASED, no contacts, CLOSED.")
    erasure: MemberErasure | None = strawberry.field(description="The erasure's audit record (the first one, when erased before).")
    user_errors: list[UserError] = strawberry.field(description="Why the erasure was refused.")


@strawberry.input(description="Change a member's consents; an omitted consent stays as it is.")
class MemberConsentSetInput:
    member_id: strawberry.ID | None = strawberry.field(
        default=None, description="The member; a member may omit it (their own). Required for an admin.")
    greetings: bool | None = strawberry.field(default=None, description="Birthday and festival greetings.")
    marketing: bool | None = strawberry.field(default=None, description="Marketing messages (opt-in).")


@strawberry.type(description="Result of memberConsentSet.")
class MemberConsentSetPayload:
    member: Member | None = strawberry.field(description="The member after the change.")
    user_errors: list[UserError] = strawberry.field(description="Why the change was refused.")


@strawberry.type
class PrivacyQuery:
    @strawberry.field(
        description="Everything the programme holds about a member, as one JSON document (docs/PRIVACY.md): "
        "the member their own (memberId omitted), an admin anyone's. Null for an unknown member or another member's.",
        permission_classes=[allow(Role.MEMBER, Role.ADMIN)],
    )
    async def member_data_export(self, info: Info, member_id: strawberry.ID | None = None) -> JSON | None:
        member = await find_member_for_export(info.context.caller, member_id)
        return await export_member(member, now=info.context.now()) if member is not None else None


@strawberry.type
class PrivacyMutation:
    @mutation(description="Admin: erase a member's personal data (names, contacts, address, birth date, free text about "
              "them); the card number stays reserved, the ledger, balances and tier events stay. Erasing again "
              "returns the first erasure.", permission_classes=[allow(Role.ADMIN)])
    async def member_erase(self, info: Info, input: MemberEraseInput) -> MemberErasePayload:
        erased = await erase_member(info.context.caller, input.member_id, input.reason, now=info.context.now())
        record = erased.erasure
        return MemberErasePayload(
            member=member_view(info, erased.member),
            erasure=MemberErasure(erased_at=record.erased_at, erased_by=record.actor, reason=record.reason),
            user_errors=[],
        )

    @mutation(description="Set a member's consents to greetings and marketing (the member their own, or an admin).",
              permission_classes=[allow(Role.MEMBER, Role.ADMIN)])
    async def member_consent_set(self, info: Info, input: MemberConsentSetInput) -> MemberConsentSetPayload:
        consents = DomainConsents(greetings=input.greetings, marketing=input.marketing)
        row = await set_consents(info.context.caller, input.member_id, consents, now=info.context.now())
        return MemberConsentSetPayload(member=member_view(info, row), user_errors=[])
