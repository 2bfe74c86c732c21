"""Greetings due: members' birthdays and the festivals of care/data/festivals.json.

Birthdays are found by the database: the scoped ACTIVE members whose birth date's
month and day ("MM-DD") is one of those of the range, so only the members to greet
are read. A birthday on February 29 is greeted on February 28 in a year without
February 29. Festivals carry the number of ACTIVE VIP members (tier SILVER and above)
in the region: the people a festival greeting goes to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from functools import cache
from importlib import resources

from tortoise import connections
from tortoise.expressions import RawSQL

from care.stats import require_staff
from members.access import Caller, in_region, restrict_members
from members.enums import MemberStatus, Tier
from members.errors import invalid
from members.models import Member

__all__ = ["Festival", "Greeting", "GreetingKind", "MAX_RANGE_DAYS", "festivals", "greetings_due"]

MAX_RANGE_DAYS = 366  # both ends included: a leap year, or any 366 consecutive days
# The most birthdays one request reads: an office has about 7,000 members at 1,000,000,
# so a year of an office's birthdays, or a whole branch's, is refused rather than read
# (a request's work is bounded before it runs); a week of a branch's fits.
MAX_BIRTHDAYS = 1_000


class GreetingKind(str, Enum):
    BIRTHDAY = "BIRTHDAY"
    FESTIVAL = "FESTIVAL"


@dataclass(frozen=True)
class Festival:
    date: date
    name: str  # "Spring Festival 春节"


@dataclass(frozen=True)
class Greeting:
    date: date
    kind: GreetingKind
    member: Member | None = None  # BIRTHDAY
    festival: str | None = None  # FESTIVAL
    recipients: int | None = None  # FESTIVAL: ACTIVE VIPs of the region


@cache
def festivals() -> tuple[Festival, ...]:
    """The shipped festival calendar (2025 to 2030), in date order."""
    text = resources.files("care").joinpath("data/festivals.json").read_text(encoding="utf-8")
    rows = [Festival(date.fromisoformat(item["date"]), item["name"]) for items in json.loads(text).values() for item in items]
    return tuple(sorted(rows, key=lambda f: (f.date, f.name)))


def _month_day_sql() -> RawSQL:
    """The "MM-DD" of birth_date, in the database's own dialect (EXTRACT, which the ORM's
    __month/__day lookups use, does not exist on SQLite; SQLite keeps dates as ISO text)."""
    if connections.get("default").capabilities.dialect == "sqlite":
        return RawSQL('substr("birth_date", 6, 5)')
    return RawSQL("""to_char("birth_date", 'MM-DD')""")


def _birthday_dates(start: date, end: date) -> dict[str, list[date]]:
    """For every "MM-DD" a birthday may have, the dates in [start, end] it is greeted on."""
    days: dict[str, list[date]] = {}
    day = start
    while day <= end:
        days.setdefault(day.strftime("%m-%d"), []).append(day)
        if day.month == 2 and day.day == 28 and (day + timedelta(days=1)).month == 3:
            days.setdefault("02-29", []).append(day)  # no Feb 29 this year: greet on the 28th
        day += timedelta(days=1)
    return days


def check_range(start: date, end: date) -> None:
    if end < start:
        raise invalid("to must not be before from", "to")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise invalid(f"the range may span at most {MAX_RANGE_DAYS} days", "to")


async def greetings_due(
    caller: Caller, start: date, end: date, office_code: str | None = None, branch_code: str | None = None
) -> list[Greeting]:
    """Birthdays of the caller's ACTIVE members (narrowed to an office or branch in scope)
    and festivals in [start, end], in date order; on one day festivals first, then
    birthdays by family name, given name and member id. ForbiddenError for a region
    outside the caller's scope or a caller who is not staff; INVALID for an unknown code
    or a range that is reversed or longer than 366 days, or with more than MAX_BIRTHDAYS
    birthdays (read no further than one more)."""
    require_staff(caller)
    check_range(start, end)
    members = restrict_members(Member.filter(status=MemberStatus.ACTIVE), caller)
    members = await in_region(members, caller, office_code, branch_code)
    greetings: list[Greeting] = []
    in_range = [f for f in festivals() if start <= f.date <= end]
    if in_range:
        vips = await members.filter(tier__gte=Tier.SILVER).count()
        greetings += [Greeting(f.date, GreetingKind.FESTIVAL, festival=f.name, recipients=vips) for f in in_range]
    dates = _birthday_dates(start, end)
    rows = await members.filter(birth_date__isnull=False).annotate(month_day=_month_day_sql()).filter(
        month_day__in=sorted(dates)
    ).limit(MAX_BIRTHDAYS + 1)
    if len(rows) > MAX_BIRTHDAYS:
        raise invalid(
            f"more than {MAX_BIRTHDAYS:,} birthdays from {start} to {end} in this region: "
            "ask for fewer days or one office", "to",
        )
    for row in rows:
        greetings += [Greeting(day, GreetingKind.BIRTHDAY, member=row) for day in dates[row.month_day]]

    def order(g: Greeting) -> tuple:
        if g.member is None:
            return (g.date, 0, g.festival or "", "", 0)
        return (g.date, 1, g.member.family_name, g.member.given_name, g.member.id)

    return sorted(greetings, key=order)
