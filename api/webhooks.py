"""The partner webhook dispatcher's wiring (loyalty.webhooks.Dispatcher): the bodies
rendered by the schema (schema.webhooks.renderer), POSTed with httpx (a timeout, no
redirects followed, the response body never read), the settings' retry policy and
clock. Run by `loyalty webhooks run` and, with LOYALTY_WEBHOOKS=1 (`loyalty serve
--webhooks`), beside every server process; the per-partner lease keeps any number of
them from delivering one partner twice at once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import httpx

from api.scheduler import default_owner, with_background
from api.settings import Settings
from loyalty.rules import Rules
from loyalty.webhooks import Dispatcher, Policy, Send, WebhookHooks

USER_AGENT = "loyalty-webhooks/1"
# Beyond the request timeout, what a stopping dispatcher gets to write its log and cursor.
SHUTDOWN_WRITES_SECONDS = 10.0


def policy_of(settings: Settings) -> Policy:
    return Policy(
        max_failures=settings.webhook_max_failures, backoff_seconds=settings.webhook_backoff_seconds,
        backoff_cap_seconds=settings.webhook_backoff_cap_seconds,
        # A held partner is renewed at every delivery: a few timeouts' worth is plenty.
        lease_seconds=max(60.0, settings.webhook_timeout_seconds * 4),
    )


def http_sender(client: httpx.AsyncClient) -> Send:
    async def send(url: str, headers: dict[str, str], body: bytes) -> int:
        # Streamed and closed unread: only the status counts, whatever the size of the answer.
        async with client.stream("POST", url, content=body, headers=headers) as response:
            return response.status_code

    return send


@contextlib.asynccontextmanager
async def dispatcher(settings: Settings, rules: Rules, *, owner: str | None = None, schema=None) -> AsyncIterator[Dispatcher]:
    """A dispatcher with its HTTP client for the life of the block; its attempts and
    pauses counted in the metrics unless LOYALTY_METRICS=0."""
    from schema.build import build_schema
    from schema.webhooks import renderer

    hooks = WebhookHooks()
    if settings.metrics:
        from api.metrics import webhook_hooks

        hooks = webhook_hooks()
    schema = schema or build_schema()
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}) as client:
        yield Dispatcher(
            renderer(schema, settings, rules), http_sender(client), owner=owner or default_owner(),
            clock=settings.now, policy=policy_of(settings), hooks=hooks,
        )


def with_webhooks(app, settings: Settings, rules: Rules):
    """The ASGI ``app`` with a webhook dispatcher beside it (LOYALTY_WEBHOOKS=1)."""
    log = logging.getLogger("loyalty.webhooks")

    async def run(stop) -> None:
        async with dispatcher(settings, rules) as running:
            await running.run_forever(settings.webhook_poll_seconds, stop=stop, report=log.info)

    # At shutdown a turn ends after the requests in flight (each within the timeout) and
    # their log writes: never cut off inside a transaction (api.scheduler.with_background).
    return with_background(app, run, grace=settings.webhook_timeout_seconds + SHUTDOWN_WRITES_SECONDS)
