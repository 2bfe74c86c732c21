"""greetings_due: birthdays found by the database, festivals from care/data/festivals.json."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from care.greetings import GreetingKind, festivals, greetings_due
from members.access import Caller, Role
from members.enums import MemberStatus, Tier
from members.errors import DomainError, ForbiddenError
from members.models import Member, Office
from tests.care.history import member_at

D = date.fromisoformat
ADMIN = Caller(Role.ADMIN, "t")
FESTIVALS = Path(__file__).parents[2] / "care" / "data" / "festivals.json"


async def office_caller(code: str) -> Caller:
    office = await Office.get(code=code)
    return Caller(Role.OFFICE, "desk", code, office_id=office.id, branch_id=office.branch_id)


def shown(greetings) -> list[tuple]:
    return [
        (g.date.isoformat(), g.kind.value, g.member.given_name if g.member else g.festival, g.recipients)
        for g in greetings
    ]


async def born(given: str, birth: str, office: str = "PEK01", family: str = "Wang") -> Member:
    return await member_at(office, family, given, birth_date=D(birth))


def test_the_festival_calendar_2025_to_2030():
    data = json.loads(FESTIVALS.read_text(encoding="utf-8"))
    assert sorted(data) == ["2025", "2026", "2027", "2028", "2029", "2030"]
    assert all(len(items) == 7 for items in data.values())
    # The lunar dates (and Qingming, a solar term) of each year, as published for China.
    assert [f.date.isoformat() for f in festivals() if "春节" in f.name] == [
        "2025-01-29", "2026-02-17", "2027-02-06", "2028-01-26", "2029-02-13", "2030-02-03"]
    assert [f.date.isoformat() for f in festivals() if "元宵节" in f.name] == [
        "2025-02-12", "2026-03-03", "2027-02-20", "2028-02-09", "2029-02-27", "2030-02-17"]
    assert [f.date.isoformat() for f in festivals() if "清明节" in f.name] == [
        "2025-04-04", "2026-04-05", "2027-04-05", "2028-04-04", "2029-04-04", "2030-04-05"]
    assert [f.date.isoformat() for f in festivals() if "端午节" in f.name] == [
        "2025-05-31", "2026-06-19", "2027-06-09", "2028-05-28", "2029-06-16", "2030-06-05"]
    assert [f.date.isoformat() for f in festivals() if "中秋节" in f.name] == [
        "2025-10-06", "2026-09-25", "2027-09-15", "2028-10-03", "2029-09-22", "2030-09-12"]
    assert [f.date.isoformat() for f in festivals() if "国庆节" in f.name] == [f"{y}-10-01" for y in range(2025, 2031)]
    assert [f.date.isoformat() for f in festivals() if "元旦" in f.name] == [f"{y}-01-01" for y in range(2025, 2031)]
    # The Lantern Festival is the 15th day of the first month: 14 days after the Spring Festival.
    spring = [f.date for f in festivals() if "春节" in f.name]
    lantern = [f.date for f in festivals() if "元宵节" in f.name]
    assert all((b - a).days == 14 for a, b in zip(spring, lantern))


async def test_birthdays_across_a_month_in_date_then_name_order(db):
    await born("Early", "1980-04-30")  # the day before the range
    await born("Mei", "1975-05-01")
    await born("Lan", "1990-05-17", family="Li")
    await born("Hua", "1985-05-17", family="Chen")
    await born("Last", "2001-05-31")
    await born("After", "1999-06-01")
    await member_at("PEK01", "Wang", "NoBirthday")
    closed = await born("Closed", "1970-05-10")
    await Member.filter(id=closed.id).update(status=MemberStatus.CLOSED)
    result = await greetings_due(ADMIN, D("2027-05-01"), D("2027-05-31"))
    assert shown(result) == [
        ("2027-05-01", "BIRTHDAY", "Mei", None),
        ("2027-05-17", "BIRTHDAY", "Hua", None),  # Chen before Li
        ("2027-05-17", "BIRTHDAY", "Lan", None),
        ("2027-05-31", "BIRTHDAY", "Last", None),
    ]
    assert all(g.kind is GreetingKind.BIRTHDAY and g.member.status is MemberStatus.ACTIVE for g in result)


async def test_across_the_year_end_with_new_years_day(db):
    await born("Dec", "1982-12-30")
    await born("Jan", "1982-01-02")
    await born("Nov", "1982-11-30")
    vip = await born("Vip", "1982-07-07")
    await Member.filter(id=vip.id).update(tier=Tier.GOLD)
    result = await greetings_due(ADMIN, D("2026-12-28"), D("2027-01-03"))
    assert shown(result) == [
        ("2026-12-30", "BIRTHDAY", "Dec", None),
        ("2027-01-01", "FESTIVAL", "New Year's Day 元旦", 1),  # one ACTIVE VIP
        ("2027-01-02", "BIRTHDAY", "Jan", None),
    ]


async def test_february_29_birthdays_are_greeted_on_february_28_in_2027(db):
    await born("Leap", "1996-02-29")
    await born("TwentyEight", "1990-02-28", family="Zhang")
    assert shown(await greetings_due(ADMIN, D("2027-02-27"), D("2027-03-01"))) == [
        ("2027-02-28", "BIRTHDAY", "Leap", None),  # Wang before Zhang
        ("2027-02-28", "BIRTHDAY", "TwentyEight", None),
    ]
    # 2028 has a February 29
    assert shown(await greetings_due(ADMIN, D("2028-02-28"), D("2028-03-01"))) == [
        ("2028-02-28", "BIRTHDAY", "TwentyEight", None),
        ("2028-02-29", "BIRTHDAY", "Leap", None),
    ]
    # a range ending on 2027-02-27 has neither (only the Spring and Lantern festivals)
    assert shown(await greetings_due(ADMIN, D("2027-02-01"), D("2027-02-27"))) == [
        ("2027-02-06", "FESTIVAL", "Spring Festival 春节", 0),
        ("2027-02-20", "FESTIVAL", "Lantern Festival 元宵节", 0),
    ]


async def test_festivals_of_a_year_and_a_366_day_range(db):
    await born("Twice", "1988-03-15")
    result = await greetings_due(ADMIN, D("2026-03-15"), D("2027-03-15"))  # 366 days: the limit
    assert [(g.date.isoformat(), g.festival) for g in result if g.kind is GreetingKind.FESTIVAL] == [
        ("2026-04-05", "Qingming Festival 清明节"),
        ("2026-06-19", "Dragon Boat Festival 端午节"),
        ("2026-09-25", "Mid-Autumn Festival 中秋节"),
        ("2026-10-01", "National Day 国庆节"),
        ("2027-01-01", "New Year's Day 元旦"),
        ("2027-02-06", "Spring Festival 春节"),
        ("2027-02-20", "Lantern Festival 元宵节"),
    ]
    assert all(g.recipients == 0 for g in result if g.kind is GreetingKind.FESTIVAL)
    assert [g.date.isoformat() for g in result if g.kind is GreetingKind.BIRTHDAY] == ["2026-03-15", "2027-03-15"]


async def test_ranges_reversed_or_longer_than_366_days_are_invalid(db):
    with pytest.raises(DomainError) as error:
        await greetings_due(ADMIN, D("2026-03-15"), D("2027-03-16"))  # 367 days
    assert (error.value.code, error.value.field) == ("INVALID", ("to",))
    with pytest.raises(DomainError) as error:
        await greetings_due(ADMIN, D("2026-03-15"), D("2026-03-14"))
    assert error.value.code == "INVALID"
    assert await greetings_due(ADMIN, D("2026-03-15"), D("2026-03-15")) == []


async def test_more_birthdays_than_a_request_may_read_are_refused(db, monkeypatch):
    import care.greetings

    monkeypatch.setattr(care.greetings, "MAX_BIRTHDAYS", 3)
    for n in range(3):
        await born(f"B{n}", f"1980-05-0{n + 1}")
    assert len(await greetings_due(ADMIN, D("2026-05-01"), D("2026-05-31"))) == 3  # at the limit
    await born("B3", "1980-05-20")
    with pytest.raises(DomainError) as error:
        await greetings_due(ADMIN, D("2026-05-01"), D("2026-05-31"))  # 4 birthdays, limit 3
    assert (error.value.code, error.value.field) == ("INVALID", ("to",))
    assert "more than 3 birthdays" in str(error.value)
    assert len(await greetings_due(ADMIN, D("2026-05-01"), D("2026-05-19"))) == 3  # a shorter range


async def test_scope_an_office_sees_only_its_members_and_counts_only_its_vips(db):
    await born("Beijing", "1980-10-01", "PEK01")
    await born("Tianjin", "1980-10-01", "TSN01")
    for office in ("PEK01", "TSN01", "TSN01"):
        vip = await member_at(office, "Vip", office)
        await Member.filter(id=vip.id).update(tier=Tier.SILVER)
    pek = await office_caller("PEK01")
    assert shown(await greetings_due(pek, D("2026-10-01"), D("2026-10-01"))) == [
        ("2026-10-01", "FESTIVAL", "National Day 国庆节", 1),
        ("2026-10-01", "BIRTHDAY", "Beijing", None),
    ]
    assert shown(await greetings_due(ADMIN, D("2026-10-01"), D("2026-10-01"), office_code="TSN01")) == [
        ("2026-10-01", "FESTIVAL", "National Day 国庆节", 2),
        ("2026-10-01", "BIRTHDAY", "Tianjin", None),
    ]
    with pytest.raises(ForbiddenError):
        await greetings_due(pek, D("2026-10-01"), D("2026-10-01"), office_code="TSN01")
    for outsider in (Caller(Role.PARTNER, "p", "HOTELCO"), Caller(Role.AIRLINE, "ca"), Caller(Role.OFFICE, "x", "GONE", blocked=True)):
        with pytest.raises(ForbiddenError):
            await greetings_due(outsider, D("2026-10-01"), D("2026-10-01"))
