"""Contact addresses: validation and the address-rules lookup that picks an office."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pycountry

from members.errors import invalid
from members.models import AddressRule, Office

_SPACES = re.compile(r"\s+")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Address:
    country: str
    city: str
    province: str | None = None
    line: str | None = None
    postal_code: str | None = None


def address_key(value: str | None) -> str:
    """Normalised form used to match address rules: case- and spacing-insensitive."""
    return _SPACES.sub(" ", value or "").strip().casefold()


def _clean(value: str | None, limit: int, *field: str) -> str | None:
    if value is None:
        return None
    value = _SPACES.sub(" ", value).strip()
    if len(value) > limit:
        raise invalid(f"{field[-1]} is longer than {limit} characters", *field)
    return value or None


def validate_address(address: Address, *field: str) -> Address:
    """A clean copy of the address, or INVALID naming the field at fault."""
    country = (address.country or "").strip().upper()
    if not _COUNTRY.match(country) or pycountry.countries.get(alpha_2=country) is None:
        raise invalid("country must be an ISO 3166-1 alpha-2 code, e.g. CN", *field, "country")
    city = _clean(address.city, 64, *field, "city")
    if not city:
        raise invalid("city is required", *field, "city")
    return Address(
        country=country,
        city=city,
        province=_clean(address.province, 64, *field, "province"),
        line=_clean(address.line, 200, *field, "line"),
        postal_code=_clean(address.postal_code, 16, *field, "postalCode"),
    )


async def office_for_address(address: Address) -> Office:
    """The most specific matching rule wins: city, then province, then country, then
    the default rule (country '')."""
    country = address.country.upper()
    province = address_key(address.province)
    city = address_key(address.city)
    candidates = await AddressRule.filter(country__in=[country, ""], city__in=[city, ""]).select_related("office")
    # A province rule must name the member's province; a city rule also matches when
    # the member left the province out (city names rarely repeat across provinces).
    rules = [
        rule
        for rule in candidates
        if rule.province in ("", province) or (rule.city and not province)
    ]
    if not rules:
        raise LookupError("no address rule matches and no default office is configured")

    def specificity(rule: AddressRule) -> tuple[bool, bool, bool]:
        return (rule.country != "", rule.city != "", rule.province == province)

    return max(rules, key=specificity).office
