"""Group commit over HTTP (issue 12): concurrent flightAccrue requests through the whole
stack share COMMITs (counted at the driver), each answered with its own result after
the commit; LOYALTY_GROUP_COMMIT sets the mode."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest

from api.app import create_app
from api.settings import SettingsError, load_settings
from loyalty.jobs import reconcile
from members import group_commit
from tests.api.conftest import Api, data, enroll
from tests.api.loyalty_factories import loyalty_flight, loyalty_flight_accrue, loyalty_today
from tests.transactions import commits_counted, failing_commits, group_commit_on  # noqa: F401 (fixtures)


async def test_12_accruals_at_once_share_commits_and_each_gets_its_own_result(db, commits_counted, group_commit_on):
    app = create_app(replace(db, group_commit="on"), manage_orm=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        api = Api(client=client, settings=db)
        members = [await enroll(api) for _ in range(12)]
        flight = loyalty_flight(loyalty_today(api))
        await loyalty_flight_accrue(api, members[0]["cardNumber"], "WARM", flight)  # the airline token is checked once
        commits_counted.clear()
        results = await asyncio.gather(*(
            loyalty_flight_accrue(api, member["cardNumber"], f"H{n}", flight) for n, member in enumerate(members)
        ), loyalty_flight_accrue(api, "CA000000000", "H-none", flight))
    payloads = [data(result)["flightAccrue"] for result in results]
    # One transaction per request: 12 COMMITs (the refusal none). Today 1: every request
    # queues its posting before the writer first runs; fewer than 6 whatever a request
    # may come to read before posting (its reads wait behind the batch being written).
    assert 1 <= len(commits_counted) < 6, commits_counted
    assert [p["member"]["id"] for p in payloads[:12]] == [m["id"] for m in members]
    assert [p["entry"]["redeemableMiles"] for p in payloads[:12]] == [3000] * 12
    assert [e["code"] for e in payloads[12]["userErrors"]] == ["NOT_FOUND"]
    assert await reconcile() == (12, [])


def test_the_setting_names_the_mode_and_refuses_others():
    assert load_settings({}, dotenv=None).group_commit == "auto"
    assert load_settings({"LOYALTY_GROUP_COMMIT": " OFF "}, dotenv=None).group_commit == "off"
    with pytest.raises(SettingsError, match="LOYALTY_GROUP_COMMIT='sometimes' must be one of auto, on, off"):
        load_settings({"LOYALTY_GROUP_COMMIT": "sometimes"}, dotenv=None)


def test_the_app_sets_the_process_mode(group_commit_on):
    create_app(replace(load_settings({}, dotenv=None), group_commit="off"))
    assert group_commit._mode == "off"
