"""The partner registry: hotels, banks and car rental programmes that post miles."""

from __future__ import annotations

import re

from members.codes import fits
from members.errors import DomainError, invalid
from members.models import Partner

PARTNER_CODE = re.compile(r"^[A-Z0-9]{2,12}$")
# Codes a partner may never take: they name the airline's own sources.
# Ledger sources of the programme's own (a partner's code is its entries' source).
RESERVED_CODES = frozenset({"AIRLINE", "ADMIN", "MEMBER", "SYSTEM", "GOODWILL"})


def check_code(code: str) -> str:
    if not PARTNER_CODE.match(code or "") or code in RESERVED_CODES:
        raise invalid(f"partner code {code!r} must be 2-12 upper-case letters or digits (not AIRLINE, ADMIN, MEMBER, SYSTEM or GOODWILL)", "code")
    return code


async def add_partner(code: str, name: str) -> tuple[Partner, bool]:
    """Register a partner. Adding the same code with the same name again is a no-op;
    with another name it is DUPLICATE. Returns (partner, created)."""
    check_code(code)
    name = " ".join((name or "").split())
    if not name or len(name) > 100:
        raise invalid("partner name must be 1 to 100 characters", "name")
    existing = await Partner.get_or_none(code=code)
    if existing is not None:
        if existing.name != name:
            raise DomainError("DUPLICATE", f"partner {code} is already registered as {existing.name!r}", ("code",))
        return existing, False
    return await Partner.create(code=code, name=name), True


async def disable_partner(code: str) -> Partner:
    partner = await Partner.get_or_none(code=code)
    if partner is None:
        raise DomainError("NOT_FOUND", f"no partner {code}", ("code",))
    if partner.active:
        partner.active = False
        await partner.save(update_fields=["active"])
    return partner


async def list_partners() -> list[Partner]:
    return await Partner.all().order_by("code")


async def is_active_partner(code: str | None) -> bool:
    return fits(Partner, code) and await Partner.filter(code=code, active=True).exists()
