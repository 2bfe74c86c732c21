"""Partner webhooks: the tier changes a partner may see, POSTed to the partner's own
endpoint from the durable event log (loyalty.models.TierEvent), at least once and in
log order per partner.

- Registry: one webhook per partner (PartnerWebhook): its url and secret, set by an
  admin (partnerWebhookSet, `loyalty webhooks set`). The secret is shown once, when it
  is made (set, rotate); reads show its last four characters only.
- What a partner gets: exactly the events its tierChanged subscription would get, by
  the subscription's own rule (loyalty.reads.tier_change_test for the partner's
  caller), each with the fields of its subscription's payload (the body is rendered by
  the schema through ``render``: api.webhooks wires schema.webhooks in).
- Order and at-least-once: a dispatcher delivers a partner's events one at a time in
  log order; the next only after the previous one was answered 2xx. ``cursor`` (the
  position of the last event delivered) moves in the transaction that logs the
  delivery, so a dispatcher that stops between the answer and that commit delivers the
  event again after a restart: the same id (the ``Loyalty-Webhook-Id`` header), which
  the receiver uses to drop the duplicate. Nothing is lost: what is not delivered is
  still after the cursor, in the log.
- Failure: a failed attempt (no answer within the timeout, a non-2xx status, a redirect:
  none are followed) schedules the next one after an exponential backoff
  (Policy.delay: base, doubling, capped; no jitter); after max_failures in a row the
  webhook is PAUSED until an admin resumes it (partnerWebhookResume, `loyalty webhooks
  resume`), from its cursor or from a cursor given.
- Lease: a dispatcher delivers a partner only while it holds the webhook's lease (a
  conditional UPDATE, as api.scheduler leases job runs), so any number of dispatchers
  may run; every write of the holder names its lease, and an admin change (set, rotate,
  pause, resume) breaks the lease, so the holder stops at its next write.
- Signature: hex HMAC-SHA256 of f"{timestamp}.{body}" with the secret (``sign``), the
  timestamp (Unix seconds) in ``Loyalty-Webhook-Timestamp``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from tortoise.transactions import in_transaction

from loyalty import reads
from loyalty.feed import head_position
from loyalty.models import PartnerWebhook, TierEvent, WebhookDelivery, WebhookStatus
from members.access import Caller, Role, resolve_caller
from members.background import wait_stop
from members.chunked import delete_in_chunks
from members.errors import DomainError, ForbiddenError, invalid, not_found
from members.models import Partner
from members.paging import Page, newest_first

__all__ = [
    "Dispatcher", "Outcome", "Policy", "WebhookHooks", "deliveries", "list_webhooks", "pause", "prune_deliveries",
    "resume", "rotate_secret", "set_webhook", "sign", "webhook_for",
]

log = logging.getLogger(__name__)

MAX_URL = 500
MAX_ERROR = 300
SECRET_PREFIX = "whsec_"
DELIVERIES_ORDER = "webhookDeliveries"
DEFAULT_DELIVERIES_PAGE = 50
HEADER_ID = "Loyalty-Webhook-Id"
HEADER_TIMESTAMP = "Loyalty-Webhook-Timestamp"
HEADER_SIGNATURE = "Loyalty-Webhook-Signature"
HEADER_ATTEMPT = "Loyalty-Webhook-Attempt"
EVENT_TYPE = "tierChanged"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Policy:
    """How the dispatcher retries (the settings' LOYALTY_WEBHOOK_* numbers)."""

    max_failures: int = 10  # failed attempts in a row that pause the webhook
    backoff_seconds: float = 10.0  # the wait after the first failure; doubled after each next one
    backoff_cap_seconds: float = 3600.0  # the longest wait
    lease_seconds: float = 60.0  # how long a dispatcher holds a partner without writing
    batch: int = 100  # events read per partner per turn

    def delay(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failure in a row: 10 s, 20 s, 40 s, ... up to the cap."""
        exponent = min(max(failures, 1) - 1, 62)
        return timedelta(seconds=min(self.backoff_cap_seconds, self.backoff_seconds * 2 ** exponent))


# ---- the registry ----------------------------------------------------------------


def check_url(url: str, *, allow_http: bool) -> str:
    """An absolute https URL (http too with ``allow_http``: demo and test set-ups), with a
    host, no user name or password and no fragment, at most 500 characters."""
    text = (url or "").strip()
    field = ("input", "url")
    if not text or len(text) > MAX_URL:
        raise invalid(f"url must be 1 to {MAX_URL} characters", *field)
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise invalid("url is not a valid URL", *field) from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise invalid(f"url must start with {' or '.join(s + '://' for s in schemes)}", *field)
    if not parts.hostname or not text.isprintable() or any(c.isspace() for c in text) or port == 0:
        raise invalid("url must name a host", *field)
    if parts.username is not None or parts.password is not None:
        raise invalid("url must not carry a user name or password (the signature authenticates the sender)", *field)
    if parts.fragment:
        raise invalid("url must not have a #fragment", *field)
    return text


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def _partner(code: str) -> Partner:
    partner = await Partner.get_or_none(code=code) if isinstance(code, str) and 0 < len(code) <= 12 else None
    if partner is None:
        raise not_found(f"no partner {code}", "input", "partnerCode")
    return partner


async def _webhook(code: str) -> PartnerWebhook:
    partner = await _partner(code)
    webhook = await PartnerWebhook.get_or_none(partner_id=partner.id).prefetch_related("partner")
    if webhook is None:
        raise not_found(f"partner {code} has no webhook: set one first", "input", "partnerCode")
    return webhook


def _lease_broken(now: datetime) -> dict[str, Any]:
    """Columns that take the lease from whoever holds it: its next write fails, it stops."""
    return {"lease_owner": None, "lease_until": now}


async def _change(webhook: PartnerWebhook, now: datetime, **columns: Any) -> PartnerWebhook:
    columns.update(_lease_broken(now))
    await PartnerWebhook.filter(id=webhook.id).update(**columns)
    await webhook.refresh_from_db()
    return webhook


async def set_webhook(code: str, url: str, *, now: datetime, allow_http: bool) -> tuple[PartnerWebhook, str | None]:
    """Register the partner's webhook, or change its url. A new webhook starts at the head
    of the log (the changes after now, as a subscription without ``after``) and gets a
    secret, returned here once; a changed url keeps the secret (None is returned), the
    cursor and the status, and is tried at once (no backoff left from the old url)."""
    url = check_url(url, allow_http=allow_http)
    partner = await _partner(code)
    existing = await PartnerWebhook.get_or_none(partner_id=partner.id).prefetch_related("partner")
    if existing is not None:
        return await _change(existing, now, url=url, next_attempt_at=now), None
    secret = _new_secret()
    webhook = await PartnerWebhook.create(
        partner_id=partner.id, url=url, secret=secret, cursor=await head_position(), next_attempt_at=now,
        lease_until=now, created_at=now, secret_set_at=now,
    )
    webhook.partner = partner
    return webhook, secret


async def rotate_secret(code: str, *, now: datetime) -> tuple[PartnerWebhook, str]:
    """A new secret for the partner's webhook, returned once; the next delivery is signed with it."""
    webhook = await _webhook(code)
    secret = _new_secret()
    return await _change(webhook, now, secret=secret, secret_set_at=now), secret


async def resume(code: str, *, now: datetime, after: str | None = None) -> PartnerWebhook:
    """ACTIVE again, due at once, failures forgotten: delivery goes on from the cursor (the
    event that failed comes first), or from ``after`` (a tierChanges cursor: an earlier one
    delivers again what followed it, a later one skips to it)."""
    webhook = await _webhook(code)
    columns: dict[str, Any] = {
        "status": WebhookStatus.ACTIVE, "failures": 0, "next_attempt_at": now, "paused_at": None, "last_error": None,
    }
    if after is not None:
        try:
            columns["cursor"] = reads.position_from_cursor(after)
        except DomainError:
            raise invalid("after is not a tierChanges cursor", "input", "after") from None
    return await _change(webhook, now, **columns)


async def pause(code: str, *, now: datetime) -> PartnerWebhook:
    """PAUSED until resumed: nothing is delivered; the cursor stays."""
    webhook = await _webhook(code)
    return await _change(webhook, now, status=WebhookStatus.PAUSED, paused_at=now)


async def webhook_for(caller: Caller, code: str | None) -> PartnerWebhook | None:
    """A partner's webhook as the caller may read it: a partner its own (another code is
    FORBIDDEN), an admin any partner's (``code`` required). None when there is none."""
    if caller.blocked or caller.role not in (Role.PARTNER, Role.ADMIN):
        raise ForbiddenError("webhooks are read by their partner and by admins")
    if caller.role is Role.PARTNER:
        if code is not None and code != caller.scope:
            raise ForbiddenError(f"partner {code} is not yours")
        code = caller.scope
    if code is None:
        raise invalid("partnerCode is required", "partnerCode")
    partner = await Partner.get_or_none(code=code) if len(code) <= 12 else None
    if partner is None:
        return None
    return await PartnerWebhook.get_or_none(partner_id=partner.id).prefetch_related("partner")


async def list_webhooks() -> list[PartnerWebhook]:
    """Every partner's webhook, by partner code (the registry is small: one per partner)."""
    return await PartnerWebhook.all().prefetch_related("partner").order_by("partner__code")


async def deliveries(code: str, first: int | None, after: str | None) -> Page[WebhookDelivery]:
    """The partner's delivery log, newest first, by key (time, id)."""
    webhook = await _webhook(code)
    query = WebhookDelivery.filter(webhook_id=webhook.id)
    return await newest_first(query, "at", DELIVERIES_ORDER, first, after, DEFAULT_DELIVERIES_PAGE)


PRUNE_CHUNK = 1000


async def prune_deliveries(
    before: datetime, *, dry_run: bool = False, progress: Callable[[int, int], None] | None = None
) -> int:
    """Delete the delivery log's attempts made before ``before``, every webhook's, in
    chunks by key (webhook, at, id): the cost follows the rows removed, not the log.
    The number of attempts removed (or, dry, that would be)."""
    webhook_ids = await PartnerWebhook.all().order_by("id").values_list("id", flat=True)
    total = 0
    for webhook_id in webhook_ids:
        total += await WebhookDelivery.filter(webhook_id=webhook_id, at__lt=before).count()
    if dry_run or not total:
        if progress:
            progress(total, total)
        return total
    done = 0
    for webhook_id in webhook_ids:
        before_this = done

        def report(deleted: int) -> None:
            if progress:
                progress(min(before_this + deleted, total), total)

        done += await delete_in_chunks(WebhookDelivery.filter(webhook_id=webhook_id, at__lt=before), ("at", "id"),
                                       chunk=PRUNE_CHUNK, done=report)
    return done


# ---- signing ---------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256(secret, f"{timestamp}.{body}"): what the receiver recomputes."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def body_of(code: str, event: TierEvent, data: dict[str, Any]) -> bytes:
    """The request body: the event's id (its position in the log), the partner, and the
    subscription's payload for the event (``data``: {"tierChanged": {...}})."""
    envelope = {"id": str(event.id), "type": EVENT_TYPE, "partner": code, "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


# ---- the dispatcher --------------------------------------------------------------

# The subscription's payload of an event for a partner's caller ({"tierChanged": {...}}).
Render = Callable[[Caller, TierEvent], Awaitable[dict[str, Any]]]
# POST (url, headers, body) -> the HTTP status; raises on no answer.
Send = Callable[[str, dict[str, str], bytes], Awaitable[int]]


def _ignore(*args: object) -> None:
    return None


@dataclass(frozen=True)
class WebhookHooks:
    """What the dispatcher reports as it runs, for the server's metrics (api.metrics sets
    them; this package knows nothing of Prometheus). Cheap, synchronous; default: nothing."""

    attempt: Callable[[str, bool, float], None] = _ignore  # (partner, delivered, seconds) of every attempt
    paused: Callable[[str], None] = _ignore  # (partner) paused after repeated failure


@dataclass(frozen=True)
class Outcome:
    """What one turn did for one partner."""

    partner: str
    delivered: int
    cursor: int
    failed: str | None = None  # the failed attempt's error
    paused: bool = False

    def line(self) -> str:
        text = f"webhook {self.partner}: {self.delivered} delivered, at event {self.cursor}"
        if self.failed:
            text += f"; failed: {self.failed}" + ("; PAUSED" if self.paused else "")
        return text


class _LeaseLost(Exception):
    pass


class Dispatcher:
    """Delivers what is due to every active partner's webhook (see the module docstring)."""

    def __init__(
        self, render: Render, send: Send, *, owner: str, clock: Callable[[], datetime],
        policy: Policy = Policy(), concurrency: int = 8, hooks: WebhookHooks = WebhookHooks(),
    ) -> None:
        self.render = render
        self.send = send
        self.owner = owner
        self.clock = clock
        self.policy = policy
        self.concurrency = concurrency
        self.hooks = hooks

    def now(self) -> datetime:
        return self.clock().astimezone(timezone.utc)

    def _lease_end(self) -> datetime:
        return self.now() + timedelta(seconds=self.policy.lease_seconds)

    async def due(self) -> list[int]:
        """Webhooks with something to deliver now: ACTIVE, of an active partner, due an
        attempt, not leased, behind the head of the log. One read of the registry."""
        head, now = await head_position(), self.now()
        return await PartnerWebhook.filter(
            status=WebhookStatus.ACTIVE, next_attempt_at__lte=now, lease_until__lte=now, cursor__lt=head,
            partner__active=True,
        ).order_by("id").values_list("id", flat=True)

    async def acquire(self, webhook_id: int) -> bool:
        """Take the webhook's lease when nobody holds it (a conditional UPDATE: one winner)."""
        now = self.now()
        taken = await PartnerWebhook.filter(id=webhook_id, lease_until__lte=now).update(
            lease_owner=self.owner, lease_until=self._lease_end())
        return taken == 1

    async def _write(self, webhook_id: int, connection=None, **columns: Any) -> bool:
        """Update the webhook under this dispatcher's lease (renewed); False when the
        lease was lost (nothing written)."""
        query = PartnerWebhook.filter(id=webhook_id, lease_owner=self.owner)
        if connection is not None:
            query = query.using_db(connection)
        return await query.update(**{"lease_until": self._lease_end(), **columns}) == 1

    async def _hold(self, webhook_id: int, **columns: Any) -> None:
        """_write, or _LeaseLost."""
        if not await self._write(webhook_id, **columns):
            raise _LeaseLost

    async def tick(self, stop: asyncio.Event | None = None) -> list[Outcome]:
        """One turn: every due webhook whose lease this dispatcher wins, up to ``batch``
        events each, several partners at once (each partner's events one at a time).
        Once ``stop`` is set, no partner is started and each one under way stops after
        its attempt in flight (see ``deliver``)."""
        limit = asyncio.Semaphore(self.concurrency)

        async def turn(webhook_id: int) -> Outcome | None:
            async with limit:
                if (stop is not None and stop.is_set()) or not await self.acquire(webhook_id):
                    return None
                return await self.deliver(webhook_id, stop)

        outcomes = []
        due = await self.due()
        for webhook_id, result in zip(due, await asyncio.gather(*(turn(i) for i in due), return_exceptions=True)):
            if isinstance(result, Exception):  # a database blip: its lease lapses, a later turn retries
                log.warning("webhook %s: turn failed: %s: %s", webhook_id, type(result).__name__, result)
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                outcomes.append(result)
        return outcomes

    async def deliver(self, webhook_id: int, stop: asyncio.Event | None = None) -> Outcome | None:
        """Deliver the leased webhook's next events in order; stop at the first failure,
        or once ``stop`` is set (after the attempt in flight, logged: a shutdown waits
        for one request at most). Releases the lease at the end (None: it was lost to an
        admin change)."""
        webhook = await PartnerWebhook.get(id=webhook_id).prefetch_related("partner")
        code = webhook.partner.code
        delivered, cursor = 0, webhook.cursor
        try:
            caller = await resolve_caller(Role.PARTNER, "webhook", code)
            try:
                wants = await reads.tier_change_test(caller, None, None)
            except ForbiddenError:  # disabled meanwhile: nothing is the partner's now
                wants = None
            events = [] if wants is None else await TierEvent.filter(id__gt=cursor).order_by("id").limit(self.policy.batch)
            for event in events:
                if stop is not None and stop.is_set():
                    break
                if not wants(event):
                    cursor = event.id  # not the partner's: passed by (written with the next move)
                    continue
                error = await self._attempt(webhook, caller, event)
                if error is not None:
                    paused = await self._failed(webhook, cursor, error)
                    return Outcome(code, delivered, cursor, error, paused)
                delivered, cursor = delivered + 1, event.id
            await self._hold(webhook.id, cursor=cursor, lease_until=self.now())  # released
            return Outcome(code, delivered, cursor)
        except _LeaseLost:
            return None

    async def _attempt(self, webhook: PartnerWebhook, caller: Caller, event: TierEvent) -> str | None:
        """POST one event, log the attempt and, on 2xx, move the cursor to it (one
        transaction). The error of a failed attempt, None on success."""
        attempt = webhook.failures + 1
        started = time.monotonic()
        status: int | None = None
        try:
            body = body_of(webhook.partner.code, event, await self.render(caller, event))
            timestamp = int(self.now().timestamp())
            headers = {
                "Content-Type": "application/json", HEADER_ID: str(event.id), HEADER_TIMESTAMP: str(timestamp),
                HEADER_SIGNATURE: sign(webhook.secret, timestamp, body), HEADER_ATTEMPT: str(attempt),
            }
            status = await self.send(webhook.url, headers, body)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except Exception as failure:  # noqa: BLE001 - no answer: recorded, retried
            error = (f"{type(failure).__name__}: {failure}".splitlines() or [""])[0]
        seconds = time.monotonic() - started
        duration = int(seconds * 1000)
        self.hooks.attempt(webhook.partner.code, error is None, seconds)
        held = True
        async with in_transaction() as connection:
            # The attempt is logged whatever happens next; the cursor moves with it.
            await WebhookDelivery.create(
                webhook_id=webhook.id, event_id=event.id, attempt=attempt, delivered=error is None,
                status_code=status, error=error[:MAX_ERROR] if error else None, duration_ms=duration, at=self.now(),
                using_db=connection,
            )
            if error is None:
                held = await self._write(webhook.id, connection, cursor=event.id, failures=0, last_error=None,
                                         next_attempt_at=self.now())
        if not held:
            raise _LeaseLost
        if error is None:
            webhook.failures = 0
        return error

    async def _failed(self, webhook: PartnerWebhook, cursor: int, error: str) -> bool:
        """Count the failure: the next attempt after the backoff, or PAUSED at the maximum.
        Releases the lease. True when paused."""
        failures = webhook.failures + 1
        now = self.now()
        paused = failures >= self.policy.max_failures
        columns: dict[str, Any] = {
            "cursor": cursor, "failures": failures, "last_error": error[:MAX_ERROR],
            "next_attempt_at": now + self.policy.delay(failures), "lease_until": now,
        }
        if paused:
            columns.update(status=WebhookStatus.PAUSED, paused_at=now)
        await self._hold(webhook.id, **columns)
        if paused:
            log.warning("webhook %s paused after %d failures in a row: %s", webhook.partner.code, failures, error)
            self.hooks.paused(webhook.partner.code)
        return paused

    async def run_forever(self, every: float = 1.0, stop: asyncio.Event | None = None,
                          report: Callable[[str], None] | None = None) -> None:
        """tick() every ``every`` seconds (at once again while a turn delivered a full
        batch) until ``stop`` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            busy = False
            try:
                for outcome in await self.tick(stop):
                    busy = busy or (outcome.delivered >= self.policy.batch and not outcome.failed)
                    if report and (outcome.delivered or outcome.failed):
                        report(outcome.line())
            except Exception as error:  # noqa: BLE001 - a database blip must not end the dispatcher
                if report:
                    report(f"webhooks: turn failed, trying again in {every:g}s: {type(error).__name__}: {error}".splitlines()[0])
            if busy:
                continue
            await wait_stop(stop, every)
