"""Satisfaction scores over HTTP: told on a REACHED care call (careCallLog) or with a
feedback resolution (feedbackUpdate), 1 to 5; averaged by regionStats and officeStats
over the 30 days ending today, per office and scope. Bad scores are refused and change
nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from care.models import CareCall, OfficeSatisfactionDay
from members.models import Member
from tests.api.care_factories import ADMIN, PEK01, TSN01, care_rows, log_call, logged, submitted, update_payload, vip
from tests.api.conftest import data

SATISFACTION = "satisfactionScores averageSatisfaction"
REGION = "query($o: String) { regionStats(officeCode: $o) { %s } }" % SATISFACTION
OFFICES = "query { officeStats { officeCode %s } }" % SATISFACTION


def fix_clock(api) -> datetime:
    api.clock.now = now = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=10)
    return now


async def region(api, office: str, as_=ADMIN) -> dict:
    return data(await api.gql(REGION, {"o": office}, as_=as_))["regionStats"]


async def test_scores_of_calls_and_resolutions_are_averaged_per_office(clocked_api):
    api = clocked_api
    fix_clock(api)
    pek, tsn = await vip(api, "PEK01"), await vip(api, "TSN01")
    call = await logged(api, pek, satisfaction=4)
    assert call["satisfaction"] == 4
    await logged(api, pek, satisfaction=2)
    await logged(api, pek)  # no score asked: not counted
    await logged(api, tsn, as_=TSN01, satisfaction=5)
    item = await submitted(api, pek, kind="COMPLAINT")
    payload = await update_payload(api, item, "RESOLVED", resolution="rebooked", satisfaction=5)
    assert payload["userErrors"] == [] and payload["feedback"]["satisfaction"] == 5
    # PEK01: 4, 2 and 5: three scores, mean 11 / 3.
    assert await region(api, "PEK01") == {"satisfactionScores": 3, "averageSatisfaction": pytest.approx(11 / 3)}
    assert await region(api, "PEK01", as_=PEK01) == {"satisfactionScores": 3, "averageSatisfaction": pytest.approx(11 / 3)}
    assert await region(api, "TSN01") == {"satisfactionScores": 1, "averageSatisfaction": 5.0}
    assert await region(api, "PVG01") == {"satisfactionScores": 0, "averageSatisfaction": None}
    rows = {row["officeCode"]: row for row in data(await api.gql(OFFICES, as_=ADMIN))["officeStats"]}
    assert rows["PEK01"]["satisfactionScores"] == 3 and rows["TSN01"]["averageSatisfaction"] == 5.0
    # The branch NCB holds both offices: 4, 2, 5, 5.
    branch = data(await api.gql("query { regionStats(branchCode: \"NCB\") { %s } }" % SATISFACTION, as_=ADMIN))
    assert branch["regionStats"] == {"satisfactionScores": 4, "averageSatisfaction": 4.0}
    # An office sees only its own.
    assert data(await api.gql(OFFICES, as_=PEK01))["officeStats"] == [
        {"officeCode": "PEK01", "satisfactionScores": 3, "averageSatisfaction": pytest.approx(11 / 3)}
    ]


async def test_only_the_30_days_ending_today_count(clocked_api):
    api = clocked_api
    now = fix_clock(api)
    member = await vip(api, "PEK01")
    await Member.filter(id=int(member["id"])).update(enrolled_at=now - timedelta(days=400))
    today = now.astimezone(api.settings.tz)
    await logged(api, member, satisfaction=1, calledAt=(today - timedelta(days=30)).isoformat())  # day 31 back: out
    await logged(api, member, satisfaction=3, calledAt=(today - timedelta(days=29)).isoformat())  # day 30 back: in
    await logged(api, member, satisfaction=5)  # today
    assert await region(api, "PEK01") == {"satisfactionScores": 2, "averageSatisfaction": 4.0}


@pytest.mark.parametrize("score", [0, 6, -1])
async def test_a_score_outside_1_to_5_is_refused_and_changes_nothing(clocked_api, score):
    api = clocked_api
    fix_clock(api)
    member = await vip(api, "PEK01")
    before = await care_rows()
    payload = await log_call(api, member, satisfaction=score)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", "satisfaction"])]
    assert payload["careCall"] is None
    item = await submitted(api, member, kind="COMPLAINT")
    payload = await update_payload(api, item, "RESOLVED", resolution="done", satisfaction=score)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", "satisfaction"])]
    assert (await care_rows())[0] == before[0]
    assert await OfficeSatisfactionDay.all().count() == 0


async def test_a_score_needs_a_reached_call_or_a_resolution(clocked_api):
    api = clocked_api
    fix_clock(api)
    member = await vip(api, "PEK01")
    for outcome in ("NO_ANSWER", "DECLINED", "WRONG_NUMBER"):
        payload = await log_call(api, member, outcome=outcome, satisfaction=3)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", "satisfaction"])]
    item = await submitted(api, member, kind="COMPLAINT")
    payload = await update_payload(api, item, "IN_PROGRESS", satisfaction=3)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", "satisfaction"])]
    assert await CareCall.all().count() == 0
    assert await OfficeSatisfactionDay.all().count() == 0


async def test_a_replayed_call_counts_its_score_once(clocked_api):
    api = clocked_api
    fix_clock(api)
    member = await vip(api, "PEK01")
    for _ in range(3):
        await logged(api, member, satisfaction=4, idempotencyKey="call-1")
    assert await region(api, "PEK01") == {"satisfactionScores": 1, "averageSatisfaction": 4.0}
