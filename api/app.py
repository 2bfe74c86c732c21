"""The Starlette application: /graphql (HTTP and WebSocket; GraphiQL for a browser),
/healthz, /readyz, /metrics, /board. Middleware, outermost first: the request log and
id (api.request_log), CORS when origins are configured, the body and WebSocket limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from cross_web import HTTPException  # what strawberry's views raise for a malformed request
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from starlette.websockets import WebSocketDisconnect
from tortoise.contrib.starlette import RegisterTortoise

from api import graphql_http
from api.auth import MEMBER_ACCESS_SECONDS, AuthError, TokenCache, bearer_token, mint_token
from api.board import board_routes
from api.db import configure_contact_keys, configure_writes, tortoise_config
from api.graphiql import graphiql_page, graphiql_routes
from api.request_log import ObserveRequests
from api.settings import Settings
from care.counts import ensure_care_counts
from care.region_counts import ensure_stats_counts
from loyalty.feed import EventFeed, FeedHooks
from loyalty.rules import Rules, load_rules
from members.access import Role
from members.access_log import AccessLog
from schema.build import build_schema
from schema.context import Context
from schema.observe import current_request
from schema.fanout import OperationChannel, SharedSelections, current_channel, frame_prefix
from schema.inputs import has_unstorable_text
from schema.plans import Fallback

# Close code for a WebSocket whose token expired while it was open (graphql-transport-ws
# uses 4401 for "unauthorized").
TOKEN_EXPIRED_CLOSE_CODE = 4401
_closing: set[asyncio.Task] = set()


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, whether announced by
    Content-Length or streamed, before the GraphQL layer reads them; and a body whose
    next part does not come within `read_timeout` seconds with 408 (a client that
    promises a body and never sends it would otherwise hold the request open)."""

    def __init__(self, app: ASGIApp, limit: int, read_timeout: float = 10.0) -> None:
        self.app = app
        self.limit = limit
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            try:
                # asyncio.timeout, not wait_for: wait_for runs receive() in a task of its own.
                async with asyncio.timeout(self.read_timeout):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)
        except _TooSlow:
            response = JSONResponse(
                {"errors": [{"message": f"request body not received within {self.read_timeout:g} s", "extensions": {"code": "REQUEST_TIMEOUT"}}]},
                status_code=408, headers={"connection": "close"},
            )
            await response(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"errors": [{"message": f"request body is over {self.limit} bytes", "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]},
            status_code=413,
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


# Close codes: 1009 is the WebSocket standard's "message too big"; 4408 is what
# graphql-transport-ws sends when connection_init does not come in time.
MESSAGE_TOO_BIG_CLOSE_CODE = 1009
INIT_TIMEOUT_CLOSE_CODE = 4408


class WebSocketLimits:
    """The HTTP limits for WebSocket connections, on both protocols (graphql-transport-ws
    and the older graphql-ws, whose handler has no init timeout of its own): a message
    over `max_message_bytes` closes the connection (1009) before it is parsed, and a
    connection that has sent no message `init_timeout` seconds after it opened (the
    first message of both protocols is connection_init) is closed (4408). uvicorn's
    ws_max_size (api.cli.UVICORN_OPTIONS) refuses large frames earlier still."""

    def __init__(self, app: ASGIApp, max_message_bytes: int, init_timeout: float) -> None:
        self.app = app
        self.max_message_bytes = max_message_bytes
        self.init_timeout = init_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        accepted = False
        first_message_seen = False
        closed = False

        async def guarded_send(message: Message) -> None:
            nonlocal accepted, closed
            if closed:
                return  # we closed it: the app's late messages go nowhere
            if message["type"] == "websocket.accept":
                accepted = True
            elif message["type"] == "websocket.close":
                closed = True
            await send(message)

        async def close(code: int, reason: str) -> Message:
            nonlocal closed
            if not closed:
                closed = True
                await send({"type": "websocket.close", "code": code, "reason": reason})
            return {"type": "websocket.disconnect", "code": code}

        async def guarded_receive() -> Message:
            nonlocal first_message_seen
            if accepted and not first_message_seen:
                try:
                    message = await asyncio.wait_for(receive(), self.init_timeout)
                except asyncio.TimeoutError:
                    return await close(INIT_TIMEOUT_CLOSE_CODE, "connection_init not received in time")
            else:
                message = await receive()
            if message["type"] == "websocket.receive":
                first_message_seen = True
                size = len(message.get("text") or "") if message.get("text") is not None else len(message.get("bytes") or b"")
                if size > self.max_message_bytes:
                    return await close(MESSAGE_TOO_BIG_CLOSE_CODE, f"message is over {self.max_message_bytes} bytes")
            return message

        await self.app(scope, guarded_receive, guarded_send)


def _set_channel(handler: Any, operation_id: str, message_type: str, query: str, variables: Any, operation_name: str | None,
                 still_open: Any = None) -> None:
    """Give the operation's task its channel (schema.fanout): results, already encoded
    once for every subscriber of a selection, go out in a frame of this protocol with
    this operation id; nothing once `still_open()` says the operation is over. Without
    a channel (a strawberry whose adapter differs) subscriptions execute per subscriber."""
    starlette_ws = getattr(handler.websocket, "ws", None)
    if starlette_ws is None:
        return
    prefix = frame_prefix(operation_id, message_type)

    async def send(payload: str) -> None:
        if still_open is not None and not still_open():
            return
        try:
            await starlette_ws.send_text(prefix + payload + "}")
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    current_channel.set(OperationChannel(handler.schema, query, variables, operation_name, send))


class TransportWSHandler(BaseGraphQLTransportWSHandler):
    """graphql-transport-ws, with each operation's channel for shared results (schema.fanout)."""

    async def run_operation(self, operation: Any) -> None:
        _set_channel(self, operation.id, "next", operation.query, operation.variables, operation.operation_name,
                     lambda: not operation.completed)
        await super().run_operation(operation)


class LegacyWSHandler(BaseGraphQLWSHandler):
    """graphql-ws (subscriptions-transport-ws), the same way."""

    async def handle_async_results(self, operation_id: str, query: str, operation_name: str | None, variables: Any) -> None:
        _set_channel(self, operation_id, "data", query, variables, operation_name)
        await super().handle_async_results(operation_id, query, operation_name, variables)


def _tracing(settings: Settings) -> type | None:
    """The OpenTelemetry extension when tracing is configured (api.tracing)."""
    if not settings.tracing:
        return None
    from api.tracing import configure_tracing, tracing_extension

    configure_tracing()
    return tracing_extension()


async def read_body(request: Request) -> bytes:
    """`await request.body()` without Starlette's async generator and its aclosing
    context (a tenth of a compiled member read's own Python under load, issue 12):
    the same messages read the same way, the body kept where Request.body keeps it, so
    that the ordinary path, when a plan gives up, reads the same bytes."""
    if hasattr(request, "_body"):
        return request._body
    chunks = []
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
    request._stream_consumed = True
    body = request._body = b"".join(chunks)
    return body


class LoyaltyGraphQL(GraphQL):
    """The GraphQL endpoint: builds the typed context and checks tokens."""

    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, settings: Settings, rules: Rules, feed: EventFeed, access_log: AccessLog | None = None) -> None:
        super().__init__(
            build_schema(introspection=settings.introspection, limits=settings.limits, tracing=_tracing(settings)),
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=False,
        )
        self.settings = settings
        self.rules = rules
        self.feed = feed
        self.access_log = access_log
        self.shared_selections = SharedSelections()
        self.tokens = TokenCache(settings)
        # Compiled plans answer the hottest documents (schema.plans); not while tracing,
        # whose spans follow strawberry's ordinary path.
        self.plans = settings.compiled_plans and not settings.tracing

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """HTTP: the response's media type from the Accept header, and the status codes
        of the GraphQL-over-HTTP specification (api.graphql_http)."""
        if request.scope["type"] != "http":
            return await super().run(request, context, root_value)
        media_type = graphql_http.negotiate(request.headers.get("accept"))
        if self.plans:
            answered = await self._planned(request, media_type)
            if answered is not None:
                return answered
        request.state.media_type = media_type
        try:
            response = await super().run(request, context, root_value)
        except HTTPException as error:
            return graphql_http.error_response(error.reason, error.status_code, media_type)
        if response.media_type == "application/json":
            response.headers["content-type"] = graphql_http.content_type(media_type)
            if media_type == graphql_http.GRAPHQL_RESPONSE_JSON and getattr(request.state, "request_error", False):
                response.status_code = 400
        return response

    async def _planned(self, request: Any, media_type: str) -> Response | None:
        """The answer of the document's compiled plan (schema.plans), or None when it has
        none or gives up: then the ordinary path answers the request from the start."""
        if request.method != "POST" or "application/json" not in request.headers.get("content-type", ""):
            return None
        try:
            body = json.loads(await read_body(request))
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep: the ordinary path refuses it
            return None
        if not isinstance(body, dict):
            return None
        query, variables, name = body.get("query"), body.get("variables"), body.get("operationName")
        if not isinstance(query, str) or not isinstance(variables, (dict, type(None))) or not isinstance(name, (str, type(None))):
            return None
        plan = self.schema.documents.plan(query)
        if plan is None or (name is not None and name != plan.operation_name) or has_unstorable_text(variables):
            return None
        context = await self._context(request.headers.get("authorization"))
        if context.caller is None:
            return None
        # If the plan gives up, the ordinary path answers the same request under the same
        # key: the access audit's reads of both paths are one row per request and member.
        request.state.request_key = context.request_key
        try:
            data = await plan.answer(context, variables)
        except Fallback:
            return None
        record = current_request.get()
        if record is not None:
            record.execution = plan  # the log line's and the metrics' operation name
        return Response(json.dumps({"data": data}, separators=(",", ":")), media_type=graphql_http.content_type(media_type))

    async def process_result(self, request: Any, result: Any) -> Any:
        response = await super().process_result(request, result)
        if graphql_http.is_request_error(result):
            request.state.request_error = True
            if request.state.media_type == graphql_http.GRAPHQL_RESPONSE_JSON:
                response.pop("data", None)  # the request failed before execution: no data entry
        return response

    async def render_graphql_ide(self, request: Any) -> Any:
        return graphiql_page()

    def decode_json(self, data: str | bytes) -> object:
        """JSON of an HTTP body or a WebSocket message. Nesting too deep for the parser
        and bytes that are not UTF-8 are malformed JSON (400, or the WebSocket's own
        refusal), not internal errors."""
        try:
            return super().decode_json(data)
        except RecursionError:
            raise json.JSONDecodeError("JSON is nested too deeply", "", 0) from None
        except UnicodeDecodeError:
            raise json.JSONDecodeError("JSON must be UTF-8", "", 0) from None

    def mint_member_token(self, member_id: int) -> tuple[str, int]:
        """An access token for a signed-in member (memberSignIn, tokenRefresh) and its
        lifetime in seconds."""
        ttl = MEMBER_ACCESS_SECONDS
        return mint_token(self.settings, Role.MEMBER, str(member_id), ttl_seconds=ttl), ttl

    async def _context(self, authorization: str | None) -> Context:
        caller, auth_error, refused_after = None, None, None
        try:
            token = bearer_token(authorization)
            if token is not None:
                caller, refused_after = await self.tokens.caller(token)
                record = current_request.get()
                if record is not None:
                    record.role = caller.role.value
        except AuthError as error:
            auth_error = str(error)
        return Context(
            caller=caller, auth_error=auth_error, timezone=self.settings.tz, settings=self.settings,
            rules=self.rules, access_log=self.access_log,
            extra={"event_feed": self.feed, "shared_selections": self.shared_selections,
                   "token_refused_after": refused_after, "mint_member_token": self.mint_member_token},
        )

    async def get_context(self, request: Any, response: Any) -> Context:
        if request.scope["type"] == "websocket":
            # The token comes with connection_init, checked in on_ws_connect.
            context = await self._context(None)
            context.extra["close_connection"] = request.close  # e.g. to drop a slow subscriber
            return context
        context = await self._context(request.headers.get("authorization"))
        key = getattr(request.state, "request_key", None)  # a compiled plan's that gave up (_planned)
        if key is not None:
            context.request_key = key
        return context

    async def on_ws_connect(self, context: Context) -> None:
        params = getattr(context, "connection_params", None) or {}
        header = params.get("Authorization") or params.get("authorization") if isinstance(params, dict) else None
        if not header or not isinstance(header, str):
            raise ConnectionRejectionError({"message": "connection_init must carry Authorization: Bearer <token> (a string)"})
        authenticated = await self._context(header)
        if authenticated.caller is None or authenticated.caller.blocked:
            raise ConnectionRejectionError({"message": authenticated.auth_error or "token refused"})
        context.caller = authenticated.caller
        context.reads = authenticated.reads
        self._close_when_token_expires(context, authenticated.extra["token_refused_after"])

    @staticmethod
    def _close_when_token_expires(context: Context, refused_after: float | None) -> None:
        """A connection lives as long as its token: when the token would be refused, the
        connection is closed (4401); the client reconnects with a fresh token and resumes
        its subscriptions with after:, losing nothing. The timer holds the context weakly,
        so a connection that ended long before its token expired is not kept alive."""
        if context.extra.get("close_connection") is None or refused_after in (None, float("inf")):
            return
        connection = weakref.ref(context)

        async def close_expired() -> None:
            live = connection()
            if live is None:
                return
            with contextlib.suppress(Exception):  # already closed: nothing to do
                await live.extra["close_connection"](TOKEN_EXPIRED_CLOSE_CODE, "token expired: reconnect with a fresh token and resume with after:")

        def start_closing() -> None:
            task = asyncio.get_running_loop().create_task(close_expired())
            _closing.add(task)  # the loop keeps tasks only weakly
            task.add_done_callback(_closing.discard)

        asyncio.get_running_loop().call_later(max(0.0, refused_after - time.time()), start_closing)


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and every migration is applied."""
    from api.db import pending_migrations

    try:
        pending = await pending_migrations(request.app.state.settings)
    except Exception as error:  # noqa: BLE001 - any failure means not ready; say which
        return JSONResponse({"ready": False, "reason": f"database unreachable: {type(error).__name__}"}, status_code=503)
    if pending:
        return JSONResponse({"ready": False, "reason": f"migrations pending: {', '.join(pending)}"}, status_code=503)
    return JSONResponse({"ready": True})


def cors_middleware(settings: Settings) -> list[Middleware]:
    """CORS for the origins of LOYALTY_CORS_ORIGINS; none configured, no CORS headers
    at all (a browser page on another origin cannot call the API). Tokens travel in
    the Authorization header, never in cookies: no credentials."""
    if not settings.cors_origins:
        return []
    return [Middleware(
        CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"], expose_headers=["X-Request-ID"],
        allow_credentials=False, max_age=600,
    )]


def create_app(settings: Settings, *, rules: Rules | None = None, manage_orm: bool = True) -> Starlette:
    """The ASGI app. `manage_orm=False` when the caller (tests) has initialised Tortoise."""
    rules = rules or load_rules(settings.rules_path)
    configure_contact_keys(settings)
    configure_writes(settings)
    request_metrics, feed_hooks, extra_routes = None, FeedHooks(), []
    if settings.metrics:
        from api import metrics

        metrics.instrument_database()
        request_metrics, feed_hooks = metrics.RequestMetrics(), metrics.FEED_HOOKS
        extra_routes.append(Route("/metrics", metrics.metrics_endpoint))
    feed = EventFeed(redis_url=settings.redis_url, poll_interval=settings.feed_poll_seconds, queue_size=settings.feed_queue_size,
                     hooks=feed_hooks)
    access_log = AccessLog(max_rows=settings.access_log_batch, interval=settings.access_log_seconds)
    graphql = LoyaltyGraphQL(settings, rules, feed, access_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        try:
            if manage_orm:
                async with RegisterTortoise(app, config=tortoise_config(settings.database_url)):
                    # The VIP care rollup follows the rules' retain thresholds, the region
                    # statistics rollup the time zone: rebuilt here, not by a first
                    # statistics request, when they changed.
                    await ensure_care_counts(rules)
                    await ensure_stats_counts(settings.tz)
                    async with feed.running(), access_log.running():
                        yield
            else:
                async with feed.running(), access_log.running():
                    yield
        finally:
            if settings.metrics:
                from api import metrics

                metrics.worker_exited()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *extra_routes,
            *board_routes(),
            *(graphiql_routes() if settings.graphiql else []),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(ObserveRequests, metrics=request_metrics),
            *cors_middleware(settings),
            Middleware(BodyLimit, limit=settings.max_body_bytes, read_timeout=settings.body_timeout),
            Middleware(WebSocketLimits, max_message_bytes=settings.max_body_bytes, init_timeout=settings.ws_init_timeout),
        ],
    )
    app.state.settings = settings
    app.state.rules = rules
    app.state.feed = feed
    app.state.access_log = access_log
    return app


