"""Constructed member histories for the care tests, posted through the real services."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from itertools import count

from care.calls import log_care_call
from care.models import CallOutcome
from care.segments import refresh_segments

from loyalty.ledger import FlightDetails, flight_accrue, partner_accrue, reverse
from loyalty.models import LedgerEntry
from loyalty.rules import load_rules
from loyalty.tiers import override_tier, review_tiers
from members.access import Caller, Role
from members.addresses import Address
from members.enums import Tier
from members.models import Member
from members.regions import region_data
from members.services import Enrolment, enroll

RULES = load_rules()
ADMIN = Caller(Role.ADMIN, "care-test")
AIRLINE = Caller(Role.AIRLINE, "ca-system")
_refs = count(1)


def office_address(office_code: str) -> Address:
    """An address the shipped address rules map to this office."""
    rule = next(r for r in region_data()["address_rules"] if r["office"] == office_code and r.get("city"))
    return Address(country=rule["country"], province=rule.get("province"), city=rule["city"])


async def member_at(
    office_code: str, family: str = "Wang", given: str = "Fang", *, enrolled_on: date = date(2024, 3, 1),
    birth_date: date | None = None,
) -> Member:
    """A member of `office_code`, enrolled (enrolled_at) at noon UTC of `enrolled_on`."""
    member = await enroll(
        ADMIN, Enrolment(family_name=family, given_name=given, address=office_address(office_code), birth_date=birth_date),
        today=enrolled_on if birth_date is None or birth_date <= enrolled_on else birth_date,
    )
    await Member.filter(id=member.id).update(enrolled_at=datetime(enrolled_on.year, enrolled_on.month, enrolled_on.day, 12, tzinfo=timezone.utc))
    return await Member.get(id=member.id)


async def fly(member: Member, day: date, km: int = 1000, fare_class: str = "Y") -> LedgerEntry:
    """A flight of `day` credited on that day (Y earns 110 % of the distance)."""
    details = FlightDetails("CA", "1501", day, "PEK", "SHA", km, fare_class)
    result = await flight_accrue(AIRLINE, member.card_number, details, f"care-flight-{next(_refs)}", rules=RULES, today=day)
    return result.entry


async def credit(member: Member, day: date, miles: int = 500) -> LedgerEntry:
    """A partner credit of `day` (redeemable miles only)."""
    result = await partner_accrue(
        ADMIN, member.card_number, member.family_name, miles, day, None, f"care-credit-{next(_refs)}", rules=RULES, today=day
    )
    return result.entry


async def undo(entry: LedgerEntry, today: date) -> None:
    await reverse(ADMIN, str(entry.id), "not flown", f"care-undo-{next(_refs)}", rules=RULES, today=today)


async def random_step(rng: random.Random, day: date, members: list[Member], flights: list) -> None:
    """One random change through the services: a flight, a reversal, a tier override, a
    care call, a tier review or the lifecycle refresh on ``day``."""
    member = rng.choice(members)
    action = rng.choice(("fly", "fly", "undo", "override", "call", "call", "review", "stages"))
    if action == "fly":
        km = rng.choice((800, 2000, 6000, 12000))
        flights.append(await fly(member, day - timedelta(days=rng.randint(0, 20)), km=km, fare_class=rng.choice("JYB")))
    elif action == "undo" and flights:
        await undo(flights.pop(rng.randrange(len(flights))), day)
    elif action == "override":
        tier = rng.choice(list(Tier))
        until = None if tier is Tier.STANDARD else rng.choice((None, day + timedelta(days=rng.randint(0, 400))))
        await override_tier(ADMIN, str(member.id), tier, until, "property test", rules=RULES, today=day)
    elif action == "call":
        now = datetime.combine(day, time(10), tzinfo=timezone.utc)
        follow_up = rng.choice((None, None, day + timedelta(days=rng.randint(0, 20))))
        outcome = rng.choice((CallOutcome.REACHED, CallOutcome.NO_ANSWER, CallOutcome.DECLINED))
        await log_care_call(ADMIN, str(member.id), outcome, follow_up_on=follow_up, now=now, rules=RULES)
    elif action == "review":
        await review_tiers(day, rules=RULES)
    elif action == "stages":  # the daily refresh's lifecycle stages (DECLINING / DORMANT calls)
        await refresh_segments(RULES, day)
