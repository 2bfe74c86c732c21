"""Who is calling, and what they may see: the one place that restricts querysets by caller.

Every resolver and DataLoader that lists or fetches members, offices or branches goes
through these functions, in the manner of NetBox's `restrict(user)`; scope is
never re-implemented in a resolver.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum
from typing import Any

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


def member_scope(caller: Caller, member_column: str = "member_id") -> dict[str, int] | None:
    """THE scope rule: the column values a row carrying a member's office_id and
    branch_id (a member, a tier event, a care call, a feedback item) must have for the
    caller to see it; {} for every row, None for none. `member_column` names the member
    id column: "id" on the member table. Querysets (restrict_by_member_region) and rows
    already loaded (can_see_member) are both judged by it."""
    if caller.blocked:
        return None
    if caller.role in (Role.ADMIN, Role.AIRLINE, Role.PARTNER):
        return {}
    if caller.role is Role.BRANCH:
        return {"branch_id": caller.branch_id}
    if caller.role is Role.OFFICE:
        return {"office_id": caller.office_id}
    if caller.role is Role.MEMBER:
        return {member_column: caller.member_id}
    return None


def office_scope(caller: Caller) -> dict[str, int] | None:
    """The same for offices (columns of the office table): staff see the offices of
    their scope; other roles list none (they reach an office through a member)."""
    if caller.blocked:
        return None
    if caller.role is Role.ADMIN:
        return {}
    if caller.role is Role.BRANCH:
        return {"branch_id": caller.branch_id}
    if caller.role is Role.OFFICE:
        return {"id": caller.office_id}
    return None


def branch_scope(caller: Caller) -> dict[str, int] | None:
    """The same for branches (columns of the branch table)."""
    if caller.blocked:
        return None
    if caller.role is Role.ADMIN:
        return {}
    if caller.role in (Role.BRANCH, Role.OFFICE):
        return {"id": caller.branch_id}
    return None


def restrict(queryset: QuerySet, scope: dict[str, int] | None) -> QuerySet:
    """`queryset` narrowed to a scope of the *_scope rules."""
    return nothing(queryset) if scope is None else queryset.filter(**scope)


def in_scope(row: Any, scope: dict[str, int] | None) -> bool:
    """Whether a loaded row is inside a scope of the *_scope rules: the same rule as
    `restrict` on a queryset."""
    return scope is not None and all(getattr(row, column) == value for column, value in scope.items())


def restrict_by_member_region(queryset: QuerySet, caller: Caller, member_column: str = "member_id") -> QuerySet:
    """Rows that carry a member's office_id and branch_id (members themselves, tier
    events) restricted to what the caller may see (member_scope)."""
    return restrict(queryset, member_scope(caller, member_column))


def restrict_members(queryset: QuerySet[Member], caller: Caller) -> QuerySet[Member]:
    """Members the caller may see at all (field-level limits are the schema's)."""
    return restrict_by_member_region(queryset, caller, "id")


def restrict_offices(queryset: QuerySet[Office], caller: Caller) -> QuerySet[Office]:
    return restrict(queryset, office_scope(caller))


def restrict_branches(queryset: QuerySet[Branch], caller: Caller) -> QuerySet[Branch]:
    return restrict(queryset, branch_scope(caller))


def can_see_member(caller: Caller, member: Any, member_column: str = "id") -> bool:
    """The same rule as restrict_by_member_region, for a row already loaded: a member,
    or (member_column="member_id") a row carrying a member's office_id and branch_id,
    such as a tier event."""
    return in_scope(member, member_scope(caller, member_column))


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
        if office is None or not in_scope(office, office_scope(caller)):
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
        # An erased member's tokens are refused too (privacy.erasure).
        if member_id is None or not await Member.filter(id=member_id, erased_at__isnull=True).exists():
            return Caller(role, subject, scope, blocked=True)
        return Caller(role, subject, scope, member_id=member_id)
    return Caller(role, subject, scope)
