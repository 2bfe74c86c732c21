"""Partner webhooks against a real HTTP receiver on a loopback port (tests/api/
webhook_receiver.py), which verifies every signature: the tier changes a partner may
see, delivered once each in log order through a receiver's outage (500s, then
connection refused), retried after 10 s then 20 s (the clock is the test's; nothing
sleeps), paused after 3 failures in a row, resumed from the cursor, carried on by a new
dispatcher after a crash (the one event whose answer was lost delivered again with the
same id), one dispatcher per partner at a time; and the admin mutations and queries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.webhooks import dispatcher
from loyalty.models import PartnerWebhook, TierEvent, WebhookDelivery, WebhookStatus
from loyalty.rules import load_rules
from loyalty.webhooks import HEADER_ID, Policy
from members import partners
from schema.build import build_schema
from tests.api.conftest import USER_ERRORS, Api, Clock, data, enroll, error_codes, set_tier
from tests.api.webhook_receiver import Receiver

RULES = load_rules()
SCHEMA = build_schema()
PARTNER = ("partner", "HOTELCO")
ADMIN = ("admin",)
WEBHOOK_FIELDS = "partnerCode url status secretHint cursor failures nextAttemptAt lastError pausedAt"
SET = """mutation($input: PartnerWebhookSetInput!) { partnerWebhookSet(input: $input) {
  webhook { %s } secret %s } }""" % (WEBHOOK_FIELDS, USER_ERRORS)
ROTATE = """mutation($input: PartnerWebhookInput!) { partnerWebhookSecretRotate(input: $input) {
  webhook { %s } secret %s } }""" % (WEBHOOK_FIELDS, USER_ERRORS)
PAUSE = """mutation($input: PartnerWebhookInput!) { partnerWebhookPause(input: $input) {
  webhook { %s } %s } }""" % (WEBHOOK_FIELDS, USER_ERRORS)
RESUME = """mutation($input: PartnerWebhookResumeInput!) { partnerWebhookResume(input: $input) {
  webhook { %s } %s } }""" % (WEBHOOK_FIELDS, USER_ERRORS)
STATUS = "query($code: String) { partnerWebhook(partnerCode: $code) { %s } }" % WEBHOOK_FIELDS
DELIVERIES = """query($code: String!, $first: Int, $after: String) {
  partnerWebhookDeliveries(partnerCode: $code, first: $first, after: $after) {
    totalCount edges { node { eventId attempt delivered statusCode error } } pageInfo { hasNextPage endCursor } } }"""
PARTNER_CHANGE_FIELDS = "cursor cardNumber fromTier toTier effectiveAt validUntil"


@dataclass
class Hooks:
    api: Api
    clock: Clock
    settings: Any
    receiver: Receiver

    def advance(self, seconds: float) -> None:
        self.clock.now += timedelta(seconds=seconds)

    def dispatcher(self, owner: str = "a", **settings):
        return dispatcher(replace(self.settings, **settings), RULES, owner=owner, schema=SCHEMA)

    async def tick(self, owner: str = "a") -> list:
        async with self.dispatcher(owner) as running:
            return await running.tick()


@pytest.fixture
async def hooks(db):
    clock = Clock(datetime.now(timezone.utc).replace(microsecond=0))
    settings = replace(db, clock=clock, webhook_allow_http=True, webhook_max_failures=3)
    receiver = Receiver().start()
    app = create_app(settings, manage_orm=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield Hooks(Api(client=client, settings=settings), clock, settings, receiver)
    finally:
        receiver.stop()


async def register(hooks: Hooks, code: str = "HOTELCO") -> dict:
    """Register the partner and its webhook at the receiver; the receiver learns the secret."""
    await partners.add_partner(code, f"{code} Hotels")
    payload = data(await hooks.api.gql(SET, {"input": {"partnerCode": code, "url": hooks.receiver.url}}, as_=ADMIN))["partnerWebhookSet"]
    assert payload["userErrors"] == [] and payload["secret"].startswith("whsec_")
    hooks.receiver.secret = payload["secret"]
    return payload


async def tier_changes(hooks: Hooks, count: int, member: dict | None = None) -> list[str]:
    """`count` tier changes of one member (SILVER, GOLD, SILVER, ...); their event ids."""
    member = member or await enroll(hooks.api, "PEK01")
    before = await TierEvent.all().count()
    for n in range(count):
        await set_tier(hooks.api, member, ("SILVER", "GOLD")[n % 2])
    ids = await TierEvent.all().order_by("id").offset(before).values_list("id", flat=True)
    assert len(ids) == count
    return [str(i) for i in ids]


async def webhook() -> PartnerWebhook:
    return await PartnerWebhook.get(partner__code="HOTELCO")


async def log_rows() -> list[tuple]:
    return await WebhookDelivery.all().order_by("id").values_list("event_id", "attempt", "delivered", "status_code")


def counted(name: str, **labels: str) -> float:
    """A metric's value now (api.metrics; the counters live for the whole test session)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, {"partner": "HOTELCO", **labels}) or 0.0


def delays() -> list[timedelta]:
    policy = Policy()
    return [policy.delay(n) for n in range(1, 12)]


def test_backoff_doubles_from_10_seconds_to_the_one_hour_cap():
    assert [d.total_seconds() for d in delays()] == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]


async def test_every_change_is_delivered_once_in_order_through_an_outage(hooks):
    await register(hooks)
    first = await tier_changes(hooks, 3)
    start = hooks.clock.now
    failed, delivered = (counted("loyalty_webhook_attempts_total", outcome=o) for o in ("failed", "delivered"))
    hooks.receiver.status = 500
    (outcome,) = await hooks.tick()
    assert (outcome.delivered, outcome.failed) == (0, "HTTP 500")
    row = await webhook()
    assert (row.failures, row.next_attempt_at - start, row.status) == (1, timedelta(seconds=10), WebhookStatus.ACTIVE)
    assert await hooks.tick() == []  # not due before the backoff has passed
    hooks.receiver.stop()  # down: connection refused
    hooks.advance(10)
    (outcome,) = await hooks.tick()
    assert outcome.delivered == 0 and outcome.failed.startswith("ConnectError")
    row = await webhook()
    assert (row.failures, row.next_attempt_at - hooks.clock.now) == (2, timedelta(seconds=20))
    later = await tier_changes(hooks, 2)  # the log grows during the outage
    hooks.receiver.status = 200
    hooks.receiver.start()  # back, on the same port
    hooks.advance(19)
    assert await hooks.tick() == []
    hooks.advance(1)
    (outcome,) = await hooks.tick()
    assert (outcome.delivered, outcome.failed) == (5, None)
    events = first + later
    # Every change once, in log order; every request's signature verified.
    assert hooks.receiver.delivered() == events
    assert all(r.verified for r in hooks.receiver.received)
    # The receiver saw attempt 1 (answered 500) and attempt 3 (attempt 2 found it down).
    assert [r.attempt for r in hooks.receiver.received] == ["1", "3"] + ["1"] * 4
    assert [r.body["id"] for r in hooks.receiver.received[1:]] == events
    assert await log_rows() == [
        (int(events[0]), 1, False, 500), (int(events[0]), 2, False, None), (int(events[0]), 3, True, 200),
        *[(int(e), 1, True, 200) for e in events[1:]],
    ]
    row = await webhook()
    assert (row.cursor, row.failures, row.last_error) == (int(events[-1]), 0, None)
    assert await hooks.tick() == []  # nothing left
    assert counted("loyalty_webhook_attempts_total", outcome="failed") - failed == 2
    assert counted("loyalty_webhook_attempts_total", outcome="delivered") - delivered == 5


async def test_after_3_failures_in_a_row_the_webhook_pauses_until_resumed_from_its_cursor(hooks):
    await register(hooks)
    events = await tier_changes(hooks, 2)
    pauses = counted("loyalty_webhook_pauses_total")
    hooks.receiver.status = 503
    for wait in (0, 10, 20):
        hooks.advance(wait)
        (outcome,) = await hooks.tick()
    assert outcome.paused and outcome.failed == "HTTP 503"
    assert counted("loyalty_webhook_pauses_total") - pauses == 1
    status = data(await hooks.api.gql(STATUS, {"code": "HOTELCO"}, as_=ADMIN))["partnerWebhook"]
    assert (status["status"], status["failures"], status["lastError"]) == ("PAUSED", 3, "HTTP 503")
    hooks.advance(86_400)
    assert await hooks.tick() == []  # paused: nothing however long
    hooks.receiver.status = 200
    resumed = data(await hooks.api.gql(RESUME, {"input": {"partnerCode": "HOTELCO"}}, as_=ADMIN))["partnerWebhookResume"]
    assert (resumed["webhook"]["status"], resumed["webhook"]["failures"], resumed["userErrors"]) == ("ACTIVE", 0, [])
    (outcome,) = await hooks.tick()
    assert outcome.delivered == 2 and hooks.receiver.delivered() == events  # from the cursor: the failed one first
    # Resume from an earlier cursor: what followed it is delivered again, with the same ids.
    cursor = data(await hooks.api.gql("{ tierChanges(first: 1) { edges { cursor } } }", as_=ADMIN))["tierChanges"]["edges"][0]["cursor"]
    await hooks.api.gql(RESUME, {"input": {"partnerCode": "HOTELCO", "after": cursor}}, as_=ADMIN)
    await hooks.tick()
    assert hooks.receiver.delivered() == events + events[1:]


async def test_a_new_dispatcher_carries_on_from_the_stored_cursor_after_a_crash(hooks):
    """The dispatcher dies after the receiver answered the second event and before the
    cursor moved: a new one, once the lease lapsed, delivers that event again (the same
    id: the receiver drops it) and the rest; nothing lost."""
    await register(hooks)
    events = await tier_changes(hooks, 4)

    class Crash(BaseException):
        pass

    async with hooks.dispatcher("a") as crashing:
        send = crashing.send

        async def send_then_die(url, headers, body):
            status = await send(url, headers, body)
            if headers[HEADER_ID] == events[1]:
                raise Crash
            return status

        crashing.send = send_then_die
        with pytest.raises(Crash):
            await crashing.tick()
    assert hooks.receiver.delivered() == events[:2]
    assert (await webhook()).cursor == int(events[0])
    assert await hooks.tick("b") == []  # the dead one's lease holds for 60 s
    hooks.advance(60)
    (outcome,) = await hooks.tick("b")
    assert outcome.delivered == 3
    assert hooks.receiver.delivered() == events[:2] + events[1:]
    # Once per id: the duplicate is the one event whose answer was lost.
    assert list(dict.fromkeys(hooks.receiver.delivered())) == events


async def test_two_dispatchers_never_deliver_one_partner_at_once(hooks):
    await register(hooks)
    events = await tier_changes(hooks, 2)
    (row_id,) = await PartnerWebhook.all().values_list("id", flat=True)
    async with hooks.dispatcher("a") as a, hooks.dispatcher("b") as b:
        assert await a.acquire(row_id)
        assert not await b.acquire(row_id)
        assert await b.tick() == [] and hooks.receiver.received == []
        outcome = await a.deliver(row_id)
        assert outcome.delivered == 2
    assert hooks.receiver.delivered() == events


async def test_the_body_is_the_partners_subscription_payload_and_nothing_it_may_not_see(hooks):
    await register(hooks)
    (event,) = await tier_changes(hooks, 1)
    await hooks.tick()
    (received,) = hooks.receiver.received
    assert received.body["id"] == event and received.body["partner"] == "HOTELCO" and received.body["type"] == "tierChanged"
    # The same fields and values as the partner's own read of the change.
    page = data(await hooks.api.gql("{ tierChanges { edges { node { %s } } } }" % PARTNER_CHANGE_FIELDS, as_=PARTNER))
    assert received.body["data"] == {"tierChanged": page["tierChanges"]["edges"][0]["node"]}
    # Those are all the fields of a tier change a partner may select; the rest are FORBIDDEN.
    fields = data(await hooks.api.gql('{ __type(name: "TierChange") { fields { name type { kind } } } }', as_=ADMIN))
    allowed = []
    for field in fields["__type"]["fields"]:
        selection = field["name"] + (" { id }" if field["type"]["kind"] in ("OBJECT", "NON_NULL") and field["name"] == "member" else "")
        result = await hooks.api.gql("{ tierChanges { edges { node { %s } } } }" % selection, as_=PARTNER)
        if not result.get("errors"):
            allowed.append(field["name"])
        else:
            assert error_codes(result) == ["FORBIDDEN"], field
    assert sorted(allowed) == sorted(received.body["data"]["tierChanged"])
    # A disabled partner gets nothing more.
    await partners.disable_partner("HOTELCO")
    await tier_changes(hooks, 1)
    assert await hooks.tick() == [] and len(hooks.receiver.received) == 1


async def test_a_rotated_secret_signs_the_next_delivery(hooks):
    first = await register(hooks)
    rotated = data(await hooks.api.gql(ROTATE, {"input": {"partnerCode": "HOTELCO"}}, as_=ADMIN))["partnerWebhookSecretRotate"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != first["secret"]
    assert rotated["webhook"]["secretHint"] == "..." + rotated["secret"][-4:]
    await tier_changes(hooks, 1)
    await hooks.tick()  # still verified with the old one: refused 401
    assert [r.answered for r in hooks.receiver.received] == [401]
    hooks.receiver.secret = rotated["secret"]
    hooks.advance(10)
    await hooks.tick()
    assert [r.answered for r in hooks.receiver.received] == [401, 200]


async def test_registration_refusals_and_who_may_read(hooks):
    await partners.add_partner("HOTELCO", "HOTELCO Hotels")
    await partners.add_partner("BANKCO", "Bank Co")

    async def refused(url: str, code: str = "HOTELCO") -> list:
        payload = data(await hooks.api.gql(SET, {"input": {"partnerCode": code, "url": url}}, as_=ADMIN))["partnerWebhookSet"]
        assert payload["webhook"] is None and payload["secret"] is None
        return [(e["code"], e["field"]) for e in payload["userErrors"]]

    url_error = [("INVALID", ["input", "url"])]
    for bad in ("", "ftp://example.com/x", "example.com/hook", "https://", "https://user:pw@example.com/x",
                "https://example.com/x#frag", "https://example.com:0/x", "https://exa mple.com/x", "https://example.com/" + "x" * 500):
        assert await refused(bad) == url_error, bad
    assert await refused("https://example.com/x", "NOPE") == [("NOT_FOUND", ["input", "partnerCode"])]
    https_only = replace(hooks.settings, webhook_allow_http=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(https_only, manage_orm=False)), base_url="http://t") as c:
        payload = data(await Api(client=c, settings=https_only).gql(
            SET, {"input": {"partnerCode": "HOTELCO", "url": hooks.receiver.url}}, as_=ADMIN))["partnerWebhookSet"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == url_error
    assert await PartnerWebhook.all().count() == 0
    for mutation, input in ((RESUME, {"partnerCode": "HOTELCO"}), (PAUSE, {"partnerCode": "HOTELCO"}), (ROTATE, {"partnerCode": "HOTELCO"})):
        key = mutation.split("{ ")[1].split("(")[0]
        payload = data(await hooks.api.gql(mutation, {"input": input}, as_=ADMIN))[key]
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["input", "partnerCode"])]

    created = await register(hooks)
    assert created["webhook"]["url"] == hooks.receiver.url and created["webhook"]["status"] == "ACTIVE"
    # The secret is shown once: a url change keeps it and shows none; reads show a hint.
    changed = data(await hooks.api.gql(SET, {"input": {"partnerCode": "HOTELCO", "url": "https://hotel.example.com/hook"}}, as_=ADMIN))["partnerWebhookSet"]
    assert changed["secret"] is None and changed["webhook"]["url"] == "https://hotel.example.com/hook"
    own = data(await hooks.api.gql(STATUS, as_=PARTNER))["partnerWebhook"]
    assert own["secretHint"] == "..." + created["secret"][-4:] and created["secret"] not in str(own)
    assert data(await hooks.api.gql(STATUS, {"code": "BANKCO"}, as_=ADMIN))["partnerWebhook"] is None
    assert error_codes(await hooks.api.gql(STATUS, {"code": "BANKCO"}, as_=PARTNER)) == ["FORBIDDEN"]
    assert error_codes(await hooks.api.gql(STATUS, as_=ADMIN)) == ["INVALID"]
    bad_cursor = data(await hooks.api.gql(RESUME, {"input": {"partnerCode": "HOTELCO", "after": "nope"}}, as_=ADMIN))["partnerWebhookResume"]
    assert [(e["code"], e["field"]) for e in bad_cursor["userErrors"]] == [("INVALID", ["input", "after"])]
    for role in (PARTNER, ("office", "PEK01"), ("airline",)):
        assert error_codes(await hooks.api.gql(ROTATE, {"input": {"partnerCode": "HOTELCO"}}, as_=role)) == ["FORBIDDEN"]
        assert error_codes(await hooks.api.gql(DELIVERIES, {"code": "HOTELCO"}, as_=role)) == ["FORBIDDEN"]
    for role in (("office", "PEK01"), ("airline",)):
        assert error_codes(await hooks.api.gql(STATUS, {"code": "HOTELCO"}, as_=role)) == ["FORBIDDEN"]
    paused = data(await hooks.api.gql(PAUSE, {"input": {"partnerCode": "HOTELCO"}}, as_=ADMIN))["partnerWebhookPause"]
    assert paused["webhook"]["status"] == "PAUSED" and paused["webhook"]["pausedAt"] is not None


async def test_the_delivery_log_pages_newest_first_by_key(hooks):
    await register(hooks)
    events = await tier_changes(hooks, 3)
    hooks.receiver.status = 500
    await hooks.tick()
    hooks.receiver.status = 200
    hooks.advance(10)
    await hooks.tick()
    seen, after = [], None
    while True:
        page = data(await hooks.api.gql(DELIVERIES, {"code": "HOTELCO", "first": 2, "after": after}, as_=ADMIN))
        connection = page["partnerWebhookDeliveries"]
        assert connection["totalCount"] == 4
        seen += [(n["node"]["eventId"], n["node"]["attempt"], n["node"]["statusCode"]) for n in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == [(events[2], 1, 200), (events[1], 1, 200), (events[0], 2, 200), (events[0], 1, 500)]
    assert error_codes(await hooks.api.gql(DELIVERIES, {"code": "HOTELCO", "after": "bad"}, as_=ADMIN)) == ["INVALID"]
    assert error_codes(await hooks.api.gql(DELIVERIES, {"code": "HOTELCO", "first": 101}, as_=ADMIN)) == ["INVALID"]
    assert error_codes(await hooks.api.gql(DELIVERIES, {"code": "NOPE"}, as_=ADMIN)) == ["NOT_FOUND"]


async def test_a_redirect_is_a_failure_and_not_followed(hooks):
    await register(hooks)
    await tier_changes(hooks, 1)
    hooks.receiver.status = 307
    (outcome,) = await hooks.tick()
    assert outcome.failed == "HTTP 307" and len(hooks.receiver.received) == 1


async def test_an_endpoint_that_does_not_answer_in_time_is_a_failure(hooks):
    import threading

    await register(hooks)
    await tier_changes(hooks, 1)
    hooks.receiver.hold = threading.Event()  # answers only when released
    async with hooks.dispatcher("a", webhook_timeout_seconds=0.2) as running:
        (outcome,) = await running.tick()
    hooks.receiver.hold.set()
    assert outcome.failed.startswith("ReadTimeout") and outcome.delivered == 0
    assert await log_rows() == [(int((await TierEvent.all().values_list("id", flat=True))[0]), 1, False, None)]


async def test_a_server_with_webhooks_delivers_from_startup(hooks):
    """with_webhooks (LOYALTY_WEBHOOKS=1, `serve --webhooks`): a dispatcher beside the
    app from its lifespan startup to shutdown. Shutdown lets the turn under way end: a
    request answered during it is logged and moves the cursor. (Cancelled there instead,
    the dispatcher lost that log row, and a cancel landing as it opened the log's
    transaction left SQLite's connection locked: the next test's set-up hung.)"""
    import asyncio
    import threading

    from api.webhooks import with_webhooks

    await register(hooks)
    (event,) = await tier_changes(hooks, 1)
    hooks.receiver.hold = threading.Event()  # the request stays in flight until released

    async def app(scope, receive, send):  # an app with a lifespan of its own
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    server = with_webhooks(app, replace(hooks.settings, webhook_poll_seconds=3600), RULES)
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    lifespan = asyncio.create_task(server({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    async with asyncio.timeout(30):  # a lifespan that never answers fails the test, not the session
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
    assert await asyncio.to_thread(hooks.receiver.arrived.wait, 30)  # its first turn, at startup
    await inbox.put({"type": "lifespan.shutdown"})
    hooks.receiver.hold.set()  # answered while the server shuts down
    async with asyncio.timeout(30):  # a locked connection fails here rather than hanging the session
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await lifespan
        assert hooks.receiver.delivered() == [event]
        assert await log_rows() == [(int(event), 1, True, 200)]
        assert (await webhook()).cursor == int(event)


async def test_a_stopped_dispatcher_ends_its_turn_after_the_request_in_flight(hooks):
    """`stop` (set at a server's shutdown) ends a turn after the attempt in flight and its
    log write, leaving the lease free; the rest waits for the next turn."""
    import asyncio
    import threading

    await register(hooks)
    events = await tier_changes(hooks, 3)
    hooks.receiver.hold = threading.Event()
    stop = asyncio.Event()
    async with hooks.dispatcher("a") as running:
        turn = asyncio.create_task(running.tick(stop))
        assert await asyncio.to_thread(hooks.receiver.arrived.wait, 30)  # the first event is in flight
        stop.set()
        hooks.receiver.hold.set()
        async with asyncio.timeout(30):
            (outcome,) = await turn
        assert await running.tick(stop) == []  # stopped: no partner is started
    assert (outcome.delivered, outcome.cursor, outcome.failed) == (1, int(events[0]), None)
    assert await log_rows() == [(int(events[0]), 1, True, 200)]
    hooks.receiver.hold = None
    (outcome,) = await hooks.tick("b")  # the lease was given back: another dispatcher goes on at once
    assert outcome.delivered == 2 and hooks.receiver.delivered() == events


WEBHOOK_OPERATIONS = {
    "partnerWebhookSet": (SET, {"input": {"partnerCode": "HOTELCO", "url": "https://hotel.example/hook"}}),
    "partnerWebhookSecretRotate": (ROTATE, {"input": {"partnerCode": "HOTELCO"}}),
    "partnerWebhookPause": (PAUSE, {"input": {"partnerCode": "HOTELCO"}}),
    "partnerWebhookResume": (RESUME, {"input": {"partnerCode": "HOTELCO"}}),
    "partnerWebhooks": ("{ partnerWebhooks { partnerCode } }", {}),
    "partnerWebhookDeliveries": (DELIVERIES, {"code": "HOTELCO"}),
    "partnerWebhook": (STATUS, {"code": "HOTELCO"}),
}


@pytest.mark.parametrize("operation", list(WEBHOOK_OPERATIONS))
async def test_only_admins_manage_webhooks_and_a_partner_reads_its_own(hooks, operation):
    await register(hooks)
    member = await enroll(hooks.api, "PEK01")
    document, variables = WEBHOOK_OPERATIONS[operation]
    expected = {
        ("member", None, member["id"]): ["FORBIDDEN"], ("office", "PEK01"): ["FORBIDDEN"], ("branch", "NCB"): ["FORBIDDEN"],
        ("airline",): ["FORBIDDEN"], PARTNER: [] if operation == "partnerWebhook" else ["FORBIDDEN"], ADMIN: [],
    }
    got = {role: error_codes(await hooks.api.gql(document, variables, as_=role)) for role in expected}
    assert got == expected
    assert error_codes(await hooks.api.gql(document, variables)) == ["UNAUTHENTICATED"]


async def test_a_served_app_with_loyalty_webhooks_delivers_a_change_made_through_it(db):
    """`loyalty serve --webhooks` end to end: uvicorn with LOYALTY_WEBHOOKS=1 (api.asgi)
    delivers a change made through its own API to the receiver, signed."""
    import asyncio

    from tests.api.conftest import live_server_environment
    from tests.live import start_server

    receiver = Receiver().start()
    await partners.add_partner("HOTELCO", "HOTELCO Hotels")
    environment = {**live_server_environment(db), "LOYALTY_WEBHOOKS": "1", "LOYALTY_WEBHOOK_ALLOW_HTTP": "1",
                   "LOYALTY_WEBHOOK_POLL_SECONDS": "0.05"}
    server = start_server(environment)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            api = Api(client=client, settings=db)
            made = data(await api.gql(SET, {"input": {"partnerCode": "HOTELCO", "url": receiver.url}}, as_=ADMIN))
            receiver.secret = made["partnerWebhookSet"]["secret"]
            member = await enroll(api, "PEK01")
            await set_tier(api, member, "GOLD")
            assert await asyncio.to_thread(receiver.answered.wait, 30)
    finally:
        server.stop()
        receiver.stop()
    (received,) = receiver.received
    assert received.verified and received.answered == 200
    assert received.body["data"]["tierChanged"]["toTier"] == "GOLD"
    assert received.body["data"]["tierChanged"]["cardNumber"] == member["cardNumber"]


def test_the_webhook_settings_are_read_and_checked():
    from api.settings import SettingsError, load_settings

    settings = load_settings(environ={
        "LOYALTY_WEBHOOKS": "1", "LOYALTY_WEBHOOK_MAX_FAILURES": "4", "LOYALTY_WEBHOOK_BACKOFF_SECONDS": "2.5",
        "LOYALTY_WEBHOOK_BACKOFF_CAP_SECONDS": "60", "LOYALTY_WEBHOOK_TIMEOUT_SECONDS": "3",
        "LOYALTY_WEBHOOK_POLL_SECONDS": "0.5", "LOYALTY_WEBHOOK_ALLOW_HTTP": "1",
    }, dotenv=None)
    assert (settings.webhooks, settings.webhook_max_failures, settings.webhook_backoff_seconds,
            settings.webhook_backoff_cap_seconds, settings.webhook_timeout_seconds, settings.webhook_poll_seconds,
            settings.webhook_allow_http) == (True, 4, 2.5, 60, 3, 0.5, True)
    defaults = load_settings(environ={}, dotenv=None)
    assert (defaults.webhooks, defaults.webhook_max_failures, defaults.webhook_allow_http) == (False, 10, False)
    assert defaults.with_demo().webhook_allow_http
    from api.webhooks import policy_of

    assert [policy_of(settings).delay(n).total_seconds() for n in (1, 2, 5, 6, 9)] == [2.5, 5, 40, 60, 60]
    for name, bad in (("LOYALTY_WEBHOOK_MAX_FAILURES", "0"), ("LOYALTY_WEBHOOK_MAX_FAILURES", "2.5"),
                      ("LOYALTY_WEBHOOK_TIMEOUT_SECONDS", "-1"), ("LOYALTY_WEBHOOK_BACKOFF_SECONDS", "soon")):
        with pytest.raises(SettingsError, match=name):
            load_settings(environ={name: bad}, dotenv=None)
