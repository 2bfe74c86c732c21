"""Roles without a region see no offices or branches: the empty queryset really is empty."""

from __future__ import annotations

from members.access import Caller, Role, restrict_branches, restrict_offices
from members.models import Branch, Office


async def test_roles_outside_the_regions_see_no_offices_or_branches(db):
    for role in (Role.AIRLINE, Role.PARTNER, Role.MEMBER):
        caller = Caller(role, "t", "HOTEL1" if role is Role.PARTNER else None, member_id=1 if role is Role.MEMBER else None)
        assert await restrict_offices(Office.all(), caller).count() == 0
        assert await restrict_branches(Branch.all(), caller).count() == 0
    admin = Caller(Role.ADMIN, "t")
    assert await restrict_offices(Office.all(), admin).count() == 142
    assert await restrict_branches(Branch.all(), admin).count() == 6

