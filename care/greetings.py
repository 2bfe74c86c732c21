"""Greetings due: members' birthdays and the festivals of care/data/festivals.json.

Birthdays are found by the database: the scoped ACTIVE members whose birth date's
month and day ("MM-DD") is one of those of the range, so only the members to greet
are read. A birthday on February 29 is greeted on February 28 in a year without
February 29. Festivals carry the number of ACTIVE VIP members (tier SILVER and above)
in the region: the people a festival greeting goes to. Only members who hold the
greetings consent (members.privacy) are greeted or counted.

Staff mark a greeting sent (``mark_greeting_sent``): a member's birthday greeting of a
day, or an office's festival greeting of a day. The list shows when each was marked:
a birthday always, a festival when the list is one office's (an office's staff, or
officeCode given), since in a branch or the whole programme each office sends its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from functools import cache
from importlib import resources

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import RawSQL

from care.models import GreetingSent
from care.stats import require_staff
from members.access import Caller, Role, region_filter, restrict_members
from members.enums import MemberStatus, Tier
from members.errors import invalid
from members.models import Member, Office
from members.services import visible_member

__all__ = [
    "Festival", "Greeting", "GreetingKind", "MAX_RANGE_DAYS", "festivals", "greetings_due", "mark_greeting_sent",
]

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
    sent_at: datetime | None = None  # when staff marked it sent (a festival: one office's list only)
    sent_by: str | None = None


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
    """Birthdays of the caller's ACTIVE members who consent to greetings (narrowed to an
    office or branch in scope) and festivals in [start, end], in date order; on one day
    festivals first, then birthdays by family name, given name and member id;
    a festival's recipients are the consenting ACTIVE VIPs. ForbiddenError for a region
    outside the caller's scope or a caller who is not staff; INVALID for an unknown code
    or a range that is reversed or longer than 366 days, or with more than MAX_BIRTHDAYS
    birthdays (read no further than one more)."""
    require_staff(caller)
    check_range(start, end)
    members = restrict_members(Member.filter(status=MemberStatus.ACTIVE, consent_greetings=True), caller)
    columns = await region_filter(caller, office_code, branch_code)
    members = members.filter(**columns)
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

    greetings = await _with_marks(greetings, _one_office(caller, columns))

    def order(g: Greeting) -> tuple:
        if g.member is None:
            return (g.date, 0, g.festival or "", "", 0)
        return (g.date, 1, g.member.family_name, g.member.given_name, g.member.id)

    return sorted(greetings, key=order)


def _birthday_key(member_id: int, day: date) -> str:
    return f"B:{member_id}:{day.isoformat()}"


def _festival_key(office_id: int, day: date, festival: str) -> str:
    return f"F:{office_id}:{day.isoformat()}:{festival}"


def _one_office(caller: Caller, columns: dict[str, int]) -> int | None:
    """The office a greetings list is of, when it is one office's: the one asked for
    (``columns``, region_filter's), or an office's staff's own."""
    if "office_id" in columns:
        return columns["office_id"]
    return caller.office_id if caller.role is Role.OFFICE else None


async def _with_marks(greetings: list[Greeting], office_id: int | None) -> list[Greeting]:
    """The greetings with when they were marked sent: one read of the marks."""
    keys = {}
    for index, g in enumerate(greetings):
        if g.member is not None:
            keys[_birthday_key(g.member.id, g.date)] = index
        elif office_id is not None and g.festival is not None:
            keys[_festival_key(office_id, g.date, g.festival)] = index
    if not keys:
        return greetings
    marks = await GreetingSent.filter(greeting_key__in=list(keys)).values_list("greeting_key", "sent_at", "actor")
    marked = list(greetings)
    for key, sent_at, actor in marks:
        g = marked[keys[key]]
        marked[keys[key]] = Greeting(g.date, g.kind, g.member, g.festival, g.recipients, sent_at, actor)
    return marked


async def mark_greeting_sent(
    caller: Caller, kind: GreetingKind, day: date, *, member_id: str | None = None, office_code: str | None = None,
    now: datetime,
) -> Greeting:
    """Mark a greeting sent (staff in scope): BIRTHDAY needs ``member_id`` (an ACTIVE
    member in scope whose birthday is greeted on ``day``); FESTIVAL needs a festival on
    ``day`` and is marked for ``office_code`` (an office's staff: their own office by
    default). Marking a greeting again returns the first mark. INVALID for a day that is
    not the greeting's, ForbiddenError for a member or office outside the scope."""
    require_staff(caller)
    kind = GreetingKind(kind)
    now = now.astimezone(timezone.utc)
    if kind is GreetingKind.BIRTHDAY:
        if member_id is None:
            raise invalid("memberId is required for a BIRTHDAY greeting", "input", "memberId")
        if office_code is not None:
            raise invalid("officeCode is for FESTIVAL greetings (a birthday is the member's office's)", "input", "officeCode")
        member = await visible_member(caller, member_id, "input", "memberId")
        if member.status is not MemberStatus.ACTIVE:
            raise invalid(f"the member is {member.status.value}", "input", "memberId")
        if not member.consent_greetings:
            raise invalid("the member has withdrawn their consent to greetings", "input", "memberId")
        if member.birth_date is None or member.birth_date.strftime("%m-%d") not in _birthday_dates(day, day):
            raise invalid(f"{day} is not the member's birthday greeting day", "input", "date")
        key = _birthday_key(member.id, day)
        values = {"member_id": member.id, "office_id": member.office_id, "branch_id": member.branch_id}
        greeting = Greeting(day, kind, member=member)
    else:
        if member_id is not None:
            raise invalid("memberId is for BIRTHDAY greetings", "input", "memberId")
        festival = next((f for f in festivals() if f.date == day), None)
        if festival is None:
            raise invalid(f"no festival on {day}", "input", "date")
        if office_code is None and caller.role is not Role.OFFICE:
            raise invalid("officeCode is required: each office sends its own festival greeting", "input", "officeCode")
        office_id = (await region_filter(caller, office_code, None))["office_id"] if office_code else caller.office_id
        office = await Office.get(id=office_id)
        key = _festival_key(office.id, day, festival.name)
        values = {"office_id": office.id, "branch_id": office.branch_id, "festival": festival.name}
        greeting = Greeting(day, kind, festival=festival.name)
    mark = await GreetingSent.get_or_none(greeting_key=key)
    if mark is None:
        try:
            mark = await GreetingSent.create(
                greeting_key=key, kind=kind.value, on_date=day, sent_at=now, actor=caller.actor, **values
            )
        except IntegrityError:  # marked at the same moment by another request: that mark stands
            mark = await GreetingSent.get(greeting_key=key)
    return Greeting(greeting.date, kind, greeting.member, greeting.festival, None, mark.sent_at, mark.actor)
