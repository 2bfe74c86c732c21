"""Partner webhooks over GraphQL (loyalty.webhooks): admins register, rotate, pause and
resume a partner's webhook and read its delivery log; a partner reads its own webhook.
And the body of a delivery: the partner's tierChanged subscription payload for the
event, executed by the schema itself (``render``), so a webhook carries exactly the
fields, names and formats of the subscription.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from loyalty import reads
from loyalty import webhooks as webhook_services
from loyalty.models import PartnerWebhook as WebhookRow
from loyalty.models import TierEvent
from loyalty.models import WebhookDelivery as DeliveryRow
from loyalty.models import WebhookStatus as DomainStatus
from members.access import Caller, Role
from members.paging import Page
from schema.common import PageInfo, total_count_field
from schema.context import Context, Info
from schema.errors import UserError, mutation
from schema.fanout import SINGLE_EVENT, execute_one
from schema.permissions import allow

WebhookStatus = strawberry.enum(
    DomainStatus, name="WebhookStatus",
    description="ACTIVE: delivering (retrying with backoff after a failure); PAUSED: stopped until resumed.",
)

# What a webhook carries: every field of TierChange a partner may select in its tierChanged
# subscription (the others are FORBIDDEN to partners; tests/api/test_partner_webhooks.py
# checks that this is all of them).
WEBHOOK_DOCUMENT = (
    "subscription PartnerWebhook { tierChanged { cursor cardNumber fromTier toTier effectiveAt validUntil } }"
)


class RenderError(Exception):
    """The subscription's execution for an event returned errors."""


def renderer(schema: Any, settings: Any, rules: Any) -> webhook_services.Render:
    """loyalty.webhooks' Render: the partner's subscription payload for one event,
    executed for the partner's caller as a live subscriber's event is (schema.fanout)."""

    async def render(caller: Caller, event: TierEvent) -> dict[str, Any]:
        context = Context(caller=caller, auth_error=None, timezone=settings.tz, settings=settings, rules=rules,
                          extra={SINGLE_EVENT: event})
        result = await execute_one(schema, WEBHOOK_DOCUMENT, None, None, context)
        if result.get("errors") or not result.get("data"):
            raise RenderError(f"the payload of event {event.id} failed: {result.get('errors')}")
        return result["data"]

    return render


@strawberry.type(description="A partner's webhook: where its tier changes are POSTed, and how delivery stands.")
class PartnerWebhook:
    partner_code: str = strawberry.field(description="The partner.")
    url: str = strawberry.field(description="Where each tier change is POSTed.")
    status: WebhookStatus = strawberry.field(description="ACTIVE or PAUSED.")
    secret_hint: str = strawberry.field(
        description="The last four characters of the signing secret (the secret itself is shown once, when made)."
    )
    secret_set_at: datetime = strawberry.field(description="When the current secret was made.")
    cursor: str = strawberry.field(
        description="tierChanges cursor of the last event delivered: delivery goes on with the change after it."
    )
    failures: int = strawberry.field(description="Failed attempts in a row (0 after a success).")
    next_attempt_at: datetime = strawberry.field(description="When the next attempt is due (while ACTIVE).")
    last_error: str | None = strawberry.field(description="The error of the last failed attempt, since the last success.")
    paused_at: datetime | None = strawberry.field(description="When it was paused, while PAUSED.")
    created_at: datetime = strawberry.field(description="When the webhook was registered.")

    @classmethod
    def from_row(cls, row: WebhookRow) -> PartnerWebhook:
        return cls(
            partner_code=row.partner.code, url=row.url, status=row.status, secret_hint="..." + row.secret[-4:],
            secret_set_at=row.secret_set_at, cursor=reads.cursor_at(row.cursor), failures=row.failures,
            next_attempt_at=row.next_attempt_at, last_error=row.last_error, paused_at=row.paused_at,
            created_at=row.created_at,
        )


@strawberry.type(description="One attempt to deliver one tier change to a partner's webhook.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Opaque id of the attempt.")
    event_id: strawberry.ID = strawberry.field(
        description="The event's id, as sent in the Loyalty-Webhook-Id header and the body's id."
    )
    attempt: int = strawberry.field(description="1 for the first attempt at the event, 2 for the first retry, ...")
    delivered: bool = strawberry.field(description="Whether the receiver answered 2xx.")
    status_code: int | None = strawberry.field(description="The receiver's HTTP status; null when none came.")
    error: str | None = strawberry.field(description="Why the attempt failed.")
    duration_ms: int = strawberry.field(description="How long the attempt took, in milliseconds.")
    at: datetime = strawberry.field(description="When the attempt ended.")

    @classmethod
    def from_row(cls, row: DeliveryRow) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(str(row.id)), event_id=strawberry.ID(str(row.event_id)), attempt=row.attempt,
            delivered=row.delivered, status_code=row.status_code, error=row.error, duration_ms=row.duration_ms,
            at=row.at,
        )


@strawberry.type(description="A delivery attempt in the log, with its cursor.")
class WebhookDeliveryEdge:
    node: WebhookDelivery = strawberry.field(description="The attempt.")
    cursor: str = strawberry.field(description="Opaque keyset cursor.")


@strawberry.type(description="A page of a webhook's delivery log, newest first.")
class WebhookDeliveryConnection:
    page: strawberry.Private[Page]
    edges: list[WebhookDeliveryEdge] = strawberry.field(description="The attempts of this page.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and where to continue.")
    total_count: int = total_count_field("Attempts in the log, over all pages (counted only when asked for).")


@strawberry.input(description="Register a partner's webhook, or change its url.")
class PartnerWebhookSetInput:
    partner_code: str = strawberry.field(description="The registered partner.")
    url: str = strawberry.field(
        description="Absolute https URL (http too on a server with LOYALTY_WEBHOOK_ALLOW_HTTP=1 or in demo mode), no user name or password, at most 500 characters."
    )


@strawberry.input(description="A partner's webhook.")
class PartnerWebhookInput:
    partner_code: str = strawberry.field(description="The partner.")


@strawberry.input(description="Resume a partner's webhook.")
class PartnerWebhookResumeInput:
    partner_code: str = strawberry.field(description="The partner.")
    after: str | None = strawberry.field(
        default=None,
        description="A tierChanges cursor to go on from (earlier: delivers again what followed it); default the webhook's own cursor.",
    )


@strawberry.type(description="Result of partnerWebhookSet or partnerWebhookSecretRotate.")
class PartnerWebhookSecretPayload:
    webhook: PartnerWebhook | None = strawberry.field(description="The webhook after the change.")
    secret: str | None = strawberry.field(
        description="The new signing secret, shown only here and only once (a new webhook, a rotation); null when it did not change."
    )
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type(description="Result of partnerWebhookPause or partnerWebhookResume.")
class PartnerWebhookPayload:
    webhook: PartnerWebhook | None = strawberry.field(description="The webhook after the change.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


def _webhook(row: WebhookRow | None) -> PartnerWebhook | None:
    return PartnerWebhook.from_row(row) if row is not None else None


@strawberry.type
class WebhookQuery:
    @strawberry.field(
        description="A partner's webhook: a partner its own (partnerCode may be left out), an admin any partner's; "
        "null when none is registered.",
        permission_classes=[allow(Role.PARTNER, Role.ADMIN)],
    )
    async def partner_webhook(self, info: Info, partner_code: str | None = None) -> PartnerWebhook | None:
        return _webhook(await webhook_services.webhook_for(info.context.caller, partner_code))

    @strawberry.field(description="Every partner's webhook, by partner code (admin).", permission_classes=[allow(Role.ADMIN)])
    async def partner_webhooks(self, info: Info) -> list[PartnerWebhook]:
        return [PartnerWebhook.from_row(row) for row in await webhook_services.list_webhooks()]

    @strawberry.field(
        description="A partner's delivery log, newest first: every attempt, with its status and error (admin).",
        permission_classes=[allow(Role.ADMIN)],
    )
    async def partner_webhook_deliveries(
        self, info: Info, partner_code: str, first: int | None = 50, after: str | None = None
    ) -> WebhookDeliveryConnection:
        page = await webhook_services.deliveries(partner_code, first, after)
        return WebhookDeliveryConnection(
            page=page,
            edges=[WebhookDeliveryEdge(node=WebhookDelivery.from_row(row), cursor=c) for row, c in zip(page.items, page.cursors)],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )


@strawberry.type
class WebhookMutation:
    @mutation(
        description="Register a partner's webhook (its secret is returned once; delivery starts with the changes after now), "
        "or change its url (admin).",
        permission_classes=[allow(Role.ADMIN)],
    )
    async def partner_webhook_set(self, info: Info, input: PartnerWebhookSetInput) -> PartnerWebhookSecretPayload:
        settings = info.context.settings
        row, secret = await webhook_services.set_webhook(
            input.partner_code, input.url, now=info.context.now(), allow_http=settings.webhook_allow_http)
        return PartnerWebhookSecretPayload(webhook=_webhook(row), secret=secret, user_errors=[])

    @mutation(description="A new signing secret for a partner's webhook, returned once (admin).", permission_classes=[allow(Role.ADMIN)])
    async def partner_webhook_secret_rotate(self, info: Info, input: PartnerWebhookInput) -> PartnerWebhookSecretPayload:
        row, secret = await webhook_services.rotate_secret(input.partner_code, now=info.context.now())
        return PartnerWebhookSecretPayload(webhook=_webhook(row), secret=secret, user_errors=[])

    @mutation(description="Stop delivering to a partner's webhook until it is resumed (admin).", permission_classes=[allow(Role.ADMIN)])
    async def partner_webhook_pause(self, info: Info, input: PartnerWebhookInput) -> PartnerWebhookPayload:
        return PartnerWebhookPayload(webhook=_webhook(await webhook_services.pause(input.partner_code, now=info.context.now())), user_errors=[])

    @mutation(
        description="Deliver again to a partner's webhook at once, from its cursor (the failed change first) or from `after` (admin).",
        permission_classes=[allow(Role.ADMIN)],
    )
    async def partner_webhook_resume(self, info: Info, input: PartnerWebhookResumeInput) -> PartnerWebhookPayload:
        row = await webhook_services.resume(input.partner_code, now=info.context.now(), after=input.after)
        return PartnerWebhookPayload(webhook=_webhook(row), user_errors=[])
