"""Who is calling, and what they may see: the one place that restricts querysets by caller.

Every resolver and DataLoader that lists or fetches members, offices or branches goes
through these functions, in the manner of NetBox's `restrict(user)`; scope is
never re-implemented in a resolver.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

from tortoise.queryset import QuerySet

from members.codes import by_code
from members.errors import ForbiddenError, invalid
from members.ids import database_id
from members.models import Branch, Member, Office
from members.partners import is_active_partner


class Role(str, Enum):
    MEMBER = "member"
    PARTNER = "partner"
    OFFICE = "office"
    BRANCH = "branch"
    AIRLINE = "airline"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.OFFICE, Role.BRANCH, Role.ADMIN})
SCOPED_ROLES = frozenset({Role.PARTNER, Role.OFFICE, Role.BRANCH})


def require_role(caller: Caller, roles: Collection[Role], message: str) -> None:
    """ForbiddenError(message) unless the caller holds one of `roles` with a valid scope."""
    if caller.blocked or caller.role not in roles:
        raise ForbiddenError(message)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller with their scope resolved to ids.

    `blocked` is set when the token is well-formed and signed but names a scope that
    is not (or no longer) valid, e.g. an unregistered or disabled partner: every
    operation is then FORBIDDEN.
    """

    role: Role
    subject: str
    scope: str | None = None
    office_id: int | None = None
    branch_id: int | None = None
    member_id: int | None = None
    blocked: bool = False

    @property
    def key(self) -> str:
        """Identity for idempotency keys: unique per caller."""
        return f"{self.role.value}:{self.scope or ''}:{self.subject}"

    @property
    def actor(self) -> str:
        """How the caller is written in audit trails."""
        return f"{self.role.value}:{self.subject}" + (f"@{self.scope}" if self.scope else "")


def nothing(queryset: QuerySet) -> QuerySet:
    """An always-empty queryset (Tortoise has no QuerySet.none())."""
    return queryset.filter(pk__in=[])


def restrict_by_member_region(queryset: QuerySet, caller: Caller, member_column: str = "member_id") -> QuerySet:
    """Rows that carry a member's office_id and branch_id (members themselves, tier
    events) restricted to what the caller may see. `member_column` names the member
    id column: "id" on the member table."""
    if caller.role in (Role.ADMIN, Role.AIRLINE, Role.PARTNER):
        return queryset
    if caller.role is Role.BRANCH:
        return queryset.filter(branch_id=caller.branch_id)
    if caller.role is Role.OFFICE:
        return queryset.filter(office_id=caller.office_id)
    if caller.role is Role.MEMBER:
        return queryset.filter(**{member_column: caller.member_id})
    return nothing(queryset)


def restrict_members(queryset: QuerySet[Member], caller: Caller) -> QuerySet[Member]:
    """Members the caller may see at all (field-level limits are the schema's)."""
    return restrict_by_member_region(queryset, caller, "id")


def restrict_offices(queryset: QuerySet[Office], caller: Caller) -> QuerySet[Office]:
    if caller.role is Role.ADMIN:
        return queryset
    if caller.role is Role.BRANCH:
        return queryset.filter(branch_id=caller.branch_id)
    if caller.role is Role.OFFICE:
        return queryset.filter(id=caller.office_id)
    return nothing(queryset)


def restrict_branches(queryset: QuerySet[Branch], caller: Caller) -> QuerySet[Branch]:
    if caller.role is Role.ADMIN:
        return queryset
    if caller.role in (Role.BRANCH, Role.OFFICE):
        return queryset.filter(id=caller.branch_id)
    return nothing(queryset)


def can_see_member(caller: Caller, member: Member, member_column: str = "id") -> bool:
    """The same rule as restrict_by_member_region, for a row already loaded: a member,
    or (member_column="member_id") a row carrying a member's office_id and branch_id,
    such as a tier event."""
    if caller.role in (Role.ADMIN, Role.AIRLINE, Role.PARTNER):
        return True
    if caller.role is Role.BRANCH:
        return member.branch_id == caller.branch_id
    if caller.role is Role.OFFICE:
        return member.office_id == caller.office_id
    if caller.role is Role.MEMBER:
        return getattr(member, member_column) == caller.member_id
    return False


async def region_filter(caller: Caller, office_code: str | None, branch_code: str | None) -> dict[str, int]:
    """Turn officeCode/branchCode filters into column filters, refusing any region
    wider than or outside the caller's scope (ForbiddenError) and unknown codes for
    callers who may see every region (DomainError INVALID)."""
    filters: dict[str, int] = {}
    if branch_code is not None:
        branch = await by_code(Branch, branch_code)
        if caller.role is Role.OFFICE or (caller.role is not Role.ADMIN and (branch is None or branch.id != caller.branch_id)):
            raise ForbiddenError(f"branch {branch_code} is outside your scope")
        if branch is None:
            raise invalid(f"unknown branch code {branch_code}", "filter", "branchCode")
        filters["branch_id"] = branch.id
    if office_code is not None:
        office = await by_code(Office, office_code)
        visible = office is not None and (
            caller.role is Role.ADMIN
            or (caller.role is Role.BRANCH and office.branch_id == caller.branch_id)
            or (caller.role is Role.OFFICE and office.id == caller.office_id)
        )
        if not visible:
            if caller.role is not Role.ADMIN:
                raise ForbiddenError(f"office {office_code} is outside your scope")
            raise invalid(f"unknown office code {office_code}", "filter", "officeCode")
        filters["office_id"] = office.id
    return filters


async def in_region(queryset: QuerySet, caller: Caller, office_code: str | None, branch_code: str | None) -> QuerySet:
    """`queryset` (rows carrying office_id / branch_id) narrowed to the office or branch
    asked for, by region_filter's rules."""
    return queryset.filter(**await region_filter(caller, office_code, branch_code))


async def resolve_caller(role: Role, subject: str, scope: str | None) -> Caller:
    """A Caller with its scope resolved against the database. A scope that names no
    current office, branch or active partner, or a member token whose sub names no
    member, leaves the caller `blocked`."""
    if role is Role.OFFICE:
        office = await by_code(Office, scope)
        if office is None:
            return Caller(role, subject, scope, blocked=True)
        return Caller(role, subject, scope, office_id=office.id, branch_id=office.branch_id)
    if role is Role.BRANCH:
        branch = await by_code(Branch, scope)
        if branch is None:
            return Caller(role, subject, scope, blocked=True)
        return Caller(role, subject, scope, branch_id=branch.id)
    if role is Role.PARTNER:
        return Caller(role, subject, scope, blocked=not await is_active_partner(scope))
    if role is Role.MEMBER:
        # The token names a member who exists: a well-signed token for no member (or
        # one deleted from a test database) is refused, on HTTP and on the WebSocket.
        member_id = database_id(subject)
        if member_id is None or not await Member.filter(id=member_id).exists():
            return Caller(role, subject, scope, blocked=True)
        return Caller(role, subject, scope, member_id=member_id)
    return Caller(role, subject, scope)
