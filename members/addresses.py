"""Contact addresses: validation and the address-rules lookup that picks an office."""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import pycountry

from members.errors import invalid
from members.models import AddressRule, Office

_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Address:
    country: str
    city: str
    province: str | None = None
    line: str | None = None
    postal_code: str | None = None


def squeeze(value: str | None) -> str:
    """Runs of white space as one space, none at the ends."""
    return " ".join((value or "").split())


def address_key(value: str | None) -> str:
    """Normalised form used to match address rules: case- and spacing-insensitive."""
    return squeeze(value).casefold()


def _clean(value: str | None, limit: int, *field: str) -> str | None:
    if value is None:
        return None
    value = squeeze(value)
    if len(value) > limit:
        raise invalid(f"{field[-1]} is longer than {limit} characters", *field)
    return value or None


@functools.cache
def _is_country(code: str) -> bool:
    """An ISO 3166-1 alpha-2 code (remembered: a bulk import asks for the same few)."""
    return bool(_COUNTRY.match(code)) and pycountry.countries.get(alpha_2=code) is not None


def validate_address(address: Address, *field: str) -> Address:
    """A clean copy of the address, or INVALID naming the field at fault."""
    country = (address.country or "").strip().upper()
    if not _is_country(country):
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


def _best_rule(candidates: Iterable[AddressRule], address: Address) -> AddressRule:
    """The most specific of the candidate rules (those for the address's country or any,
    city or any) matching the address: city, then province, then country, then the
    default rule (country '')."""
    province = address_key(address.province)
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

    return max(rules, key=specificity)


async def office_for_address(address: Address) -> Office:
    """The office of the most specific address rule matching the address."""
    country, city = address.country.upper(), address_key(address.city)
    candidates = await AddressRule.filter(country__in=[country, ""], city__in=[city, ""]).select_related("office")
    return _best_rule(candidates, address).office


class AddressBook:
    """Every address rule in memory, for a job that assigns offices to many addresses
    (`loyalty import members`): the same choice as office_for_address without a query per
    address. The rules are configuration (a few per office), not member data."""

    def __init__(self, rules: Iterable[AddressRule]) -> None:
        self._by_place: dict[tuple[str, str], list[AddressRule]] = defaultdict(list)
        for rule in rules:
            self._by_place[(rule.country, rule.city)].append(rule)
        self._chosen: dict[tuple[str, str | None, str], Office] = {}  # many members share a place

    @classmethod
    async def load(cls) -> AddressBook:
        return cls(await AddressRule.all().select_related("office"))

    def office_for(self, address: Address) -> Office:
        place = (address.country, address.province, address.city)
        office = self._chosen.get(place)
        if office is None:
            country, city = address.country.upper(), address_key(address.city)
            candidates = [
                rule for rules_place in ((country, city), (country, ""), ("", city), ("", ""))
                for rule in self._by_place.get(rules_place, ())
            ]
            office = self._chosen[place] = _best_rule(candidates, address).office
        return office
