"""Role checks on fields: `permission_classes=[allow(Role.ADMIN, ...)]`.

A missing or bad token is UNAUTHENTICATED; a valid token whose role is not listed
(or whose scope is no longer valid, e.g. a disabled partner) is FORBIDDEN.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from strawberry.permission import BasePermission

from members.access import Caller, Role
from schema.errors import forbidden, unauthenticated


def require_caller(info: Any) -> Caller:
    context = info.context
    if context.caller is None:
        raise unauthenticated(context.auth_error or "authentication required: send Authorization: Bearer <token>")
    if context.caller.blocked:
        if context.caller.role is Role.MEMBER:
            raise forbidden(f"this token's sub {context.caller.subject!r} names no current member")
        raise forbidden(f"the scope {context.caller.scope!r} of this token is not a current {context.caller.role.value}")
    return context.caller


def check_role(info: Any, roles: frozenset[Role]) -> Caller:
    caller = require_caller(info)
    if caller.role not in roles:
        raise forbidden(f"role {caller.role.value} may not use {info.field_name}")
    return caller


@cache
def allow(*roles: Role) -> type[BasePermission]:
    """A permission class admitting these roles."""
    allowed = frozenset(roles)

    class Allow(BasePermission):
        def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
            check_role(info, allowed)
            return True

    Allow.__name__ = "Allow_" + "_".join(sorted(r.value for r in allowed))
    return Allow


ALL_ROLES = tuple(Role)
STAFF = (Role.ADMIN, Role.BRANCH, Role.OFFICE)
# Partners and the airline see a member's card, names and tier only (AUTH.md).
FULL_MEMBER_VIEW = (Role.ADMIN, Role.BRANCH, Role.OFFICE, Role.MEMBER)
