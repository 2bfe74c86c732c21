"""The webhook dispatcher (loyalty.webhooks) in process, with a recording `send` and a
stand-in `render` (the HTTP receiver and the schema's body are tests/api/
test_partner_webhooks.py's): the subscription's own rule decides what a partner gets
(changes not its own are passed by and the cursor moves over them), an admin change
breaks the lease of a dispatcher mid-turn (the change it had sent comes again, same
id), partners side by side (one endpoint down delays only its partner), the signature."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

from loyalty import reads, webhooks
from loyalty.models import PartnerWebhook, WebhookDelivery
from loyalty.webhooks import HEADER_ID, Dispatcher, Policy, sign
from members.enums import Tier
from members.partners import add_partner
from tests.loyalty.test_feed import change, changes, new_member

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)


class Endpoints:
    """`send` for the dispatcher: records (url, event id) and answers each url's status
    (an exception: no answer)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.answers: dict[str, int | Exception] = {}
        self.during: dict[str, object] = {}  # url -> coroutine function run while "sending"

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> int:
        self.sent.append((url, headers[HEADER_ID]))
        if url in self.during:
            await self.during.pop(url)()
        answer = self.answers.get(url, 200)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def ids(self, url: str) -> list[int]:
        return [int(i) for u, i in self.sent if u == url]


async def render(caller, event) -> dict:
    return {"tierChanged": {"cardNumber": event.card_number}}


def dispatcher(endpoints: Endpoints, owner: str = "a") -> Dispatcher:
    return Dispatcher(render, endpoints.send, owner=owner, clock=lambda: NOW, policy=Policy(max_failures=3))


async def registered(code: str) -> str:
    await add_partner(code, f"{code} Co")
    url = f"https://{code.lower()}.example/hook"
    await webhooks.set_webhook(code, url, now=NOW, allow_http=False)
    return url


def test_the_signature_is_hex_hmac_sha256_of_timestamp_dot_body():
    body = b'{"id":"7"}'
    expected = hmac.new(b"whsec_k", b"1764637200." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_k", 1764637200, body) == expected and len(expected) == 64


async def test_changes_the_partners_rule_does_not_show_are_passed_by_never_sent(db, monkeypatch):
    url = await registered("HOTELCO")
    shown, hidden = await new_member(), await new_member()
    mine = [(await change(shown, Tier.SILVER)).id]
    others = [(await change(hidden, Tier.GOLD)).id]
    mine.append((await change(shown, Tier.GOLD)).id)
    others.append((await change(hidden, Tier.SILVER)).id)
    rule = reads.tier_change_test

    async def narrower(caller, office_code, branch_code, member_id=None):  # the rule, as if it hid one member
        allowed = await rule(caller, office_code, branch_code, member_id)
        return lambda event: allowed(event) and event.member_id != hidden.id

    monkeypatch.setattr(reads, "tier_change_test", narrower)
    endpoints = Endpoints()
    (outcome,) = await dispatcher(endpoints).tick()
    assert endpoints.ids(url) == mine and outcome.delivered == 2
    assert (await PartnerWebhook.get()).cursor == others[-1]  # moved over the last one, not the partner's
    assert await dispatcher(endpoints).tick() == []  # nothing left behind the head


async def test_an_admin_change_mid_turn_stops_the_dispatcher_and_the_change_comes_again(db):
    url = await registered("HOTELCO")
    start = (await PartnerWebhook.get()).cursor
    member = await new_member()
    ids = await changes(member, 3)
    endpoints = Endpoints()

    async def paused_meanwhile():
        await webhooks.pause("HOTELCO", now=NOW)

    endpoints.during[url] = paused_meanwhile
    assert await dispatcher(endpoints).tick() == []  # its lease broken: it stopped
    assert endpoints.ids(url) == ids[:1]
    assert (await PartnerWebhook.get()).cursor == start  # not moved: the answer is not taken
    assert await WebhookDelivery.all().values_list("event_id", "delivered") == [(ids[0], True)]  # but logged
    await webhooks.resume("HOTELCO", now=NOW)
    (outcome,) = await dispatcher(endpoints, "b").tick()
    assert outcome.delivered == 3 and endpoints.ids(url) == ids[:1] + ids


async def test_one_endpoint_down_delays_only_its_own_partner(db):
    down, up = await registered("HOTELCO"), await registered("BANKCO")
    member = await new_member()
    ids = await changes(member, 3)
    endpoints = Endpoints()
    endpoints.answers[down] = ConnectionRefusedError("refused")
    outcomes = {o.partner: o for o in await dispatcher(endpoints).tick()}
    assert (outcomes["BANKCO"].delivered, outcomes["HOTELCO"].delivered) == (3, 0)
    assert outcomes["HOTELCO"].failed == "ConnectionRefusedError: refused"
    assert endpoints.ids(up) == ids and endpoints.ids(down) == ids[:1]
    rows = {row.partner.code: row for row in await PartnerWebhook.all().prefetch_related("partner")}
    assert (rows["HOTELCO"].failures, rows["HOTELCO"].next_attempt_at) == (1, NOW + timedelta(seconds=10))
    assert (rows["BANKCO"].failures, rows["BANKCO"].cursor) == (0, ids[-1])


async def test_prune_removes_the_attempts_before_the_cutoff_in_chunks(db, monkeypatch):
    url = await registered("HOTELCO")
    member = await new_member()
    ids = await changes(member, 3)
    endpoints = Endpoints()
    endpoints.answers[url] = 500
    clock = {"now": NOW}
    running = Dispatcher(render, endpoints.send, owner="a", clock=lambda: clock["now"], policy=Policy(max_failures=9))
    for day in range(3):  # one failed attempt a day, then the three delivered on day 4
        clock["now"] = NOW + timedelta(days=day)
        await running.tick()
    endpoints.answers[url] = 200
    clock["now"] = NOW + timedelta(days=3)
    await running.tick()
    assert await WebhookDelivery.all().count() == 6
    monkeypatch.setattr(webhooks, "PRUNE_CHUNK", 1)  # every chunk boundary exercised
    seen = []
    cutoff = NOW + timedelta(days=2)
    assert await webhooks.prune_deliveries(cutoff, dry_run=True) == 2 and await WebhookDelivery.all().count() == 6
    assert await webhooks.prune_deliveries(cutoff, progress=lambda done, total: seen.append((done, total))) == 2
    assert seen == [(1, 2), (2, 2)]
    kept = await WebhookDelivery.all().order_by("id").values_list("event_id", "attempt", "delivered")
    assert kept == [(ids[0], 3, False), (ids[0], 4, True), (ids[1], 1, True), (ids[2], 1, True)]
    assert await webhooks.prune_deliveries(cutoff) == 0


async def test_a_new_url_is_tried_at_once_from_the_cursor(db):
    old = await registered("HOTELCO")
    ids = await changes(await new_member(), 2)
    endpoints = Endpoints()
    endpoints.answers[old] = 404
    (outcome,) = await dispatcher(endpoints).tick()
    assert outcome.failed == "HTTP 404" and (await PartnerWebhook.get()).next_attempt_at == NOW + timedelta(seconds=10)
    new = "https://hotelco.example/v2/hook"
    row, secret = await webhooks.set_webhook("HOTELCO", new, now=NOW, allow_http=False)
    assert secret is None and row.next_attempt_at == NOW and row.failures == 1
    (outcome,) = await dispatcher(endpoints).tick()
    assert outcome.delivered == 2 and endpoints.ids(new) == ids and endpoints.ids(old) == ids[:1]
