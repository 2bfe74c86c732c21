"""Fan-out across server processes through Redis: two servers on one database and one
Redis, a subscriber on one, the change made through the other (or by a CLI job).

The servers poll the log only every 60 s, so a change that arrives within the 20 s
timeouts below was carried by a Redis hint. Needs TEST_REDIS_URL (scripts/run_tests.py
sets it when Redis answers).
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from loyalty.feed import redis_channel
from tests.api.conftest import enroll
from tests.api.test_subscriptions import STAFF_FIELDS, Live, _env, cards_and_tiers, changes, subscribe
from tests.live import ROOT, start_server

REDIS_URL = os.environ.get("TEST_REDIS_URL")
pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/15): no Redis to fan out through"),
]
HINTED = 20.0  # well under the servers' 60 s poll


@pytest.fixture(scope="module")
def servers(database):
    env = _env(database, REDIS_URL=REDIS_URL or "", LOYALTY_FEED_POLL_SECONDS="60")
    a = start_server(env)
    try:
        b = start_server(env)
    except Exception:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
async def pair(db, servers):
    """A Live client for each server."""
    a, b = servers
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as ca, httpx.AsyncClient(base_url=b.url, timeout=30) as cb:
        lives = Live(client=ca, settings=db, server=a), Live(client=cb, settings=db, server=b)
        try:
            yield lives
        finally:
            for live in lives:
                for ws in live.clients:
                    await ws.close()


async def test_a_change_through_one_server_reaches_subscribers_of_the_other(pair):
    a, b = pair
    member = await enroll(b, "PEK01")
    on_a = await a.ws(("office", "PEK01"))
    on_b = await b.ws(("office", "PEK01"))
    await subscribe(on_a)
    await subscribe(on_b)
    through_b = await b.change(member, "GOLD")
    through_a = await a.change(member, "PLATINUM")
    want = [(member["cardNumber"], "GOLD"), (member["cardNumber"], "PLATINUM")]
    for client in (on_a, on_b):
        got = await changes(client, 2, timeout=HINTED)
        assert cards_and_tiers(got) == want
        assert [g["cursor"] for g in got] == [through_b["cursor"], through_a["cursor"]]


async def test_a_hint_from_another_deployment_moves_nothing(pair):
    """Another deployment on the same Redis (or a stray publisher) sends messages that
    mean nothing here, even a huge "position": the next real change still arrives, once."""
    import redis.asyncio as redis

    a, b = pair
    member = await enroll(b, "PEK01")
    on_a = await a.ws(("admin",))
    await subscribe(on_a)
    client = redis.from_url(REDIS_URL)
    try:
        for message in ("999999999999", "-1", "not a number"):
            await client.publish(redis_channel(REDIS_URL), message)
    finally:
        await client.aclose()
    first = await b.change(member, "SILVER")
    second = await b.change(member, "GOLD")
    assert [g["cursor"] for g in await changes(on_a, 2, timeout=HINTED)] == [first["cursor"], second["cursor"]]


async def test_a_cli_tier_review_reaches_subscribers_at_once(pair, db):
    a, b = pair
    member = await enroll(b, "PEK01")
    gold = await b.change(member, "GOLD")  # valid until 2028: decided by a review as of 2031
    on_a = await a.ws(("office", "PEK01"))
    await subscribe(on_a, after=gold["cursor"])
    env = {**os.environ, "DATABASE_URL": db.database_url, "REDIS_URL": REDIS_URL, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "tiers", "review", "--allow-future", "--as-of", "2031-01-01"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (got,) = await changes(on_a, 1, timeout=HINTED)
    assert (got["cardNumber"], got["fromTier"], got["reason"]) == (member["cardNumber"], "GOLD", "DOWNGRADE")
