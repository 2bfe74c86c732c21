"""Export of everything the programme holds about one member, as a plain JSON-ready dict.

``export_member`` returns the profile (names, contacts, address, consents, tier and
balances, office) and one section per table that refers to the member: SECTIONS below.
A table with a foreign key to the member, or a plain member_id column (the access audit
has no foreign key), that is not a section fails tests/members/test_member_privacy.py,
so a new table is either exported or its omission is decided there. Secrets are never exported (a password's hash, a
refresh token's hash) nor request fingerprints; rows are every column otherwise, keys
in camelCase, times in UTC ISO 8601, tiers by name.

Each section is one query by the member's id (indexed), ordered by id: what it costs
grows with the member's own rows, never with the programme.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any

from tortoise.models import Model

from care.models import CareCall, Feedback, FeedbackChange, GoodwillCredit, GreetingSent
from loyalty.models import CreditLot, LedgerEntry, MilesClaim, TierEvent
from members.access import Caller, Role, can_see_member, require_role
from members.enums import Tier
from members.errors import ForbiddenError, invalid
from members.ids import database_id
from members.access_log import PersonalField
from members.models import (
    Branch, Member, MemberAccess, MemberConsentChange, MemberCredential, MemberErasure, MemberStatusChange, Office,
    RefreshToken, RegionAssignment,
)
from members.services import member_email, member_phone

__all__ = ["EXPORT_VERSION", "SECTIONS", "Section", "export_member", "find_member_for_export"]

EXPORT_VERSION = 1


@dataclass(frozen=True)
class Section:
    """One table's rows about the member: every column but `secret` ones."""

    name: str
    model: type[Model]
    secret: tuple[str, ...] = ()


SECTIONS: tuple[Section, ...] = (
    Section("regionHistory", RegionAssignment),
    Section("statusChanges", MemberStatusChange),
    Section("consentChanges", MemberConsentChange),
    Section("credential", MemberCredential, secret=("password_hash",)),
    Section("refreshTokens", RefreshToken, secret=("token_hash",)),
    Section("ledger", LedgerEntry, secret=("fingerprint",)),
    Section("creditLots", CreditLot),
    Section("tierHistory", TierEvent),
    Section("milesClaims", MilesClaim),
    Section("careCalls", CareCall),
    Section("feedback", Feedback),
    Section("goodwillCredits", GoodwillCredit),
    Section("greetingsSent", GreetingSent, secret=("greeting_key",)),
    Section("erasure", MemberErasure),
    # Who read the member's personal fields (the right of access covers to whom the data
    # was disclosed): the actor as audited (role:subject@scope), with fieldsRead added.
    Section("accessLog", MemberAccess),
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _json(value: Any) -> Any:
    if isinstance(value, Tier):
        return value.name
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row(row: Model, secret: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every column of `row` (foreign keys as their *_id column) but the secret ones."""
    return {
        _camel(name): _json(getattr(row, name))
        for name in row._meta.fields_db_projection
        if name not in secret
    }


def _profile(member: Member, office: Office, branch: Branch) -> dict[str, Any]:
    # Phone and email are stored sealed (members.contacts): opened here as given.
    return {
        "id": member.id,
        "cardNumber": member.card_number,
        "familyName": member.family_name,
        "givenName": member.given_name,
        "status": _json(member.status),
        "birthDate": _json(member.birth_date),
        "phone": member_phone(member),
        "email": member_email(member),
        "address": {
            "country": member.address_country, "province": member.address_province, "city": member.address_city,
            "line": member.address_line, "postalCode": member.address_postal_code,
        },
        "enrolledAt": _json(member.enrolled_at),
        "office": {"code": office.code, "name": office.name},
        "branch": {"code": branch.code, "name": branch.name},
        "tier": _json(member.tier),
        "tierSince": _json(member.tier_since),
        "tierValidUntil": _json(member.tier_valid_until),
        "redeemableMiles": member.redeemable_miles,
        "lifecycleStage": _json(member.lifecycle_stage),
        "valueSegment": _json(member.value_segment),
        "segmentsAsOf": _json(member.care_refreshed_on),
        "careLastContactOn": _json(member.care_last_contact_on),
        "careFollowUpOn": _json(member.care_follow_up_on),
        "consents": {
            "greetings": member.consent_greetings, "marketing": member.consent_marketing,
            "updatedAt": _json(member.consents_updated_at),
        },
        "erasedAt": _json(member.erased_at),
    }


async def _section(section: Section, member_id: int) -> list[dict[str, Any]]:
    rows = await section.model.filter(member_id=member_id).order_by("id")
    return [_row(row, section.secret) for row in rows]


async def find_member_for_export(caller: Caller, member_id: str | int | None) -> Member | None:
    """The member a caller may export: a member their own (member_id omitted or their
    own id), an admin anyone; None for an unknown member or another member's.
    INVALID when an admin names no member."""
    require_role(caller, (Role.MEMBER, Role.ADMIN), "a member's data is exported by the member or an admin")
    if member_id is None:
        if caller.role is not Role.MEMBER:
            raise invalid("memberId is required", "memberId")
        member_id = caller.member_id
    pk = database_id(member_id)
    member = await Member.get_or_none(id=pk) if pk is not None else None
    if member is not None and caller.role is Role.MEMBER and member.erased_at is not None:
        # A token checked before the erasure may still be cached by this process: the
        # erased member's own export is refused here too, not only at the token.
        raise ForbiddenError("this member's personal data is erased")
    return member if member is not None and can_see_member(caller, member) else None


async def export_member(member: Member, *, now: datetime) -> dict[str, Any]:
    """Everything held about `member` (see the module docstring), as of `now`."""
    office = await Office.get(id=member.office_id)
    branch = await Branch.get(id=member.branch_id)
    export: dict[str, Any] = {
        "exportVersion": EXPORT_VERSION,
        "exportedAt": _json(now),
        "member": _profile(member, office, branch),
    }
    for section in SECTIONS:
        export[section.name] = await _section(section, member.id)
    # A feedback item's history hangs from the item (its rows name no member).
    feedback_ids = [item["id"] for item in export["feedback"]]
    history: dict[int, list[dict[str, Any]]] = {pk: [] for pk in feedback_ids}
    if feedback_ids:
        for change in await FeedbackChange.filter(feedback_id__in=feedback_ids).order_by("id"):
            history[change.feedback_id].append(_row(change))
    for item in export["feedback"]:
        item["history"] = history[item["id"]]
    for read in export["accessLog"]:
        read["fieldsRead"] = [field.name for field in PersonalField if field & read["fieldBits"]]
    return export
