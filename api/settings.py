"""Settings from the environment (and an optional .env file), per OPERATIONS.md."""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from members import group_commit
from members.contacts import ContactKeys, decode_key
from schema.limits import Limits

DEFAULT_DATABASE_URL = "sqlite://./loyalty.db"
# Used only by `serve --demo` / `demo`, never in production: tokens signed with it
# are worthless outside a demo database.
DEMO_JWT_SECRET = "demo-secret-not-for-production-use-0123456789"
MIN_SECRET_BYTES = 32
# The phone/email keys (members.contacts) of a database started without
# LOYALTY_DATA_KEYS / LOYALTY_LOOKUP_KEY outside production: public, like the demo JWT
# secret, so data sealed with them is protected from nobody (a warning says so).
DEMO_DATA_KEY = hashlib.sha256(b"loyalty demo data key, not for production").digest()
DEMO_LOOKUP_KEY = hashlib.sha256(b"loyalty demo lookup key, not for production").digest()


class SettingsError(ValueError):
    """A setting an operator got wrong; the message is one line that names it."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    jwt_secret: str | None = None
    jwt_issuer: str = "loyalty"
    jwt_audience: str = "loyalty-api"
    # An outside identity provider's public keys (a JWKS file path or https URL): its
    # RS256/EdDSA tokens are accepted beside the service's own HS256 ones (api.jwks).
    jwks: str | None = None
    # Phone/email encryption keys (members.contacts): LOYALTY_DATA_KEYS (the first seals,
    # every one opens) and LOYALTY_LOOKUP_KEY (the keyed hash of lookups). Empty: the
    # public demo keys, refused in production.
    data_keys: tuple[bytes, ...] = ()
    lookup_key: bytes | None = None
    old_lookup_keys: tuple[bytes, ...] = ()  # after the first of LOYALTY_LOOKUP_KEY: matched, not written
    # The access audit (members.access_log): reads are written in batches of at most
    # this many rows, at least every this many seconds.
    access_log_batch: int = 1000
    access_log_seconds: float = 1.0
    # Days the access audit keeps a read (`loyalty access prune` deletes older ones).
    access_log_days: int = 365
    timezone: str = "Asia/Shanghai"
    rules_path: str | None = None
    demo: bool = False
    # Production switches: both on by default for a laptop, off behind LOYALTY_PRODUCTION=1.
    introspection: bool = True
    graphiql: bool = True
    # The largest HTTP body and WebSocket message; seconds a WebSocket may stay open
    # without sending connection_init.
    max_body_bytes: int = 1024 * 1024
    ws_init_timeout: float = 10.0
    body_timeout: float = 10.0  # seconds between the parts of an HTTP request body
    # Query limits (schema.limits): depth, cost with and without a token, lexical tokens.
    limits: Limits = Limits()
    # The tierChanged feed: how often each process reads the log when no hint came,
    # and how many live events may wait for one subscriber before it is dropped.
    feed_poll_seconds: float = 0.25
    feed_queue_size: int = 1000
    # Run the daily jobs' scheduler inside every server process (api.scheduler.with_scheduler).
    scheduler: bool = False
    # Partner webhooks (loyalty.webhooks): failed attempts in a row that pause a webhook,
    # the backoff after the first failure (doubling up to the cap), the HTTP timeout,
    # how often the dispatcher looks for work, http:// urls allowed (demo and tests; else
    # https only), and a dispatcher inside every server process (LOYALTY_WEBHOOKS=1).
    webhook_max_failures: int = 10
    webhook_backoff_seconds: float = 10.0
    webhook_backoff_cap_seconds: float = 3600.0
    webhook_timeout_seconds: float = 5.0
    webhook_poll_seconds: float = 1.0
    webhook_allow_http: bool = False
    webhooks: bool = False
    # Observability: request log lines as "text" or "json" on stderr, at this level
    # (api.request_log); /metrics on or off (api.metrics).
    log_format: str = "text"
    log_level: str = "info"
    metrics: bool = True
    # Origins a browser page may call the API from (CORS); none by default.
    cors_origins: tuple[str, ...] = ()
    # OpenTelemetry tracing (api.tracing): on when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    tracing: bool = False
    # Group commit of concurrent postings (members.group_commit): "auto" (SQLite only),
    # "on" or "off".
    group_commit: str = "auto"
    # Compiled plans for the hottest documents (schema.plans); LOYALTY_COMPILED_PLANS=0
    # sends every request through strawberry's ordinary path. Off while tracing.
    compiled_plans: bool = True
    # The current instant (timezone-aware), for tests that need a fixed clock; never
    # set from the environment. None: the system clock.
    clock: Callable[[], datetime] | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def now(self) -> datetime:
        """The current instant (timezone-aware): ``clock`` when a test sets one."""
        return self.clock() if self.clock is not None else datetime.now(dt_timezone.utc)

    def today(self) -> date:
        """The programme's today: the current day in its time zone."""
        return self.now().astimezone(self.tz).date()

    def with_demo(self) -> Settings:
        """Demo mode: a known secret when none is set, so tokens can be printed."""
        return replace(self, demo=True, jwt_secret=self.jwt_secret or DEMO_JWT_SECRET, webhook_allow_http=True)

    @property
    def demo_contact_keys(self) -> bool:
        """Whether phones and emails are sealed or hashed with a public demo key (no
        LOYALTY_DATA_KEYS or LOYALTY_LOOKUP_KEY set, or `demo` named first)."""
        return (not self.data_keys or self.lookup_key is None or self.data_keys[0] == DEMO_DATA_KEY
                or self.lookup_key == DEMO_LOOKUP_KEY)

    def contact_keys(self) -> ContactKeys:
        """The phone/email keys: the configured ones, or the demo keys for what is not set."""
        return ContactKeys(self.data_keys or (DEMO_DATA_KEY,), self.lookup_key or DEMO_LOOKUP_KEY, self.old_lookup_keys)

    def contact_keys_warning(self) -> str | None:
        """One line for the operator when the demo keys are in use outside a demo."""
        if self.demo or not self.demo_contact_keys:
            return None
        missing = " and ".join(name for name, unset in (
            ("LOYALTY_DATA_KEYS", not self.data_keys or self.data_keys[0] == DEMO_DATA_KEY),
            ("LOYALTY_LOOKUP_KEY", self.lookup_key in (None, DEMO_LOOKUP_KEY))) if unset)
        return (f"WARNING: {missing} not set to a key of yours: phones and emails are sealed or hashed with the "
                "PUBLIC demo keys (`loyalty keys new` makes a key; docs/OPERATIONS.md)")

    def require_secret(self) -> str:
        """The JWT secret, or a SettingsError saying how to set one."""
        if not self.jwt_secret:
            raise SettingsError("LOYALTY_JWT_SECRET is not set (32+ bytes needed; or use --demo)")
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(
                f"LOYALTY_JWT_SECRET is {len(self.jwt_secret.encode())} bytes; at least {MIN_SECRET_BYTES} are needed"
            )
        return self.jwt_secret


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _flag_off(value: str | None) -> bool:
    return (value or "").strip().lower() in {"0", "false", "no", "off"}


def _positive(env: dict[str, str], name: str, default: float, kind: type = float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not 0 < value < math.inf:
        raise SettingsError(f"{name}={raw!r} must be a positive {'whole ' if kind is int else ''}number")
    return value


LOG_LEVELS = ("debug", "info", "warning", "error")


def _choice(env: dict[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise SettingsError(f"{name}={env.get(name)!r} must be one of {', '.join(choices)}")
    return value


def _origins(env: dict[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated origins, each scheme://host[:port] with no path ("*" alone: any)."""
    origins = tuple(part.strip().rstrip("/") for part in (env.get(name) or "").split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
            raise SettingsError(f"{name}: {origin!r} is not an origin like https://app.example.com (scheme://host[:port])")
    return origins


def _keys(env: dict[str, str], name: str, demo: bytes) -> tuple[bytes, ...]:
    """Comma-separated base64 keys of 32 bytes each; the word `demo` stands for the public
    demo key (to move data sealed with it to a real key: `LOYALTY_DATA_KEYS=<new>,demo`)."""
    keys = []
    for number, part in enumerate((env.get(name) or "").split(","), start=1):
        if not part.strip():
            continue
        if part.strip() == "demo":
            keys.append(demo)
            continue
        try:
            keys.append(decode_key(part))
        except ValueError as error:
            raise SettingsError(f"{name}: key {number} {error} (`loyalty keys new` makes one)") from None
    if len(set(keys)) != len(keys):
        raise SettingsError(f"{name} lists a key twice")
    return tuple(keys)


def load_settings(environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Read settings; the real environment wins over `.env`."""
    env = dict(_read_dotenv(dotenv)) if dotenv else {}
    env.update(os.environ if environ is None else environ)
    timezone = env.get("LOYALTY_TIMEZONE") or "Asia/Shanghai"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"LOYALTY_TIMEZONE={timezone!r} is not a known time zone") from None
    production = _flag(env.get("LOYALTY_PRODUCTION"))
    database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not database_url.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
        raise SettingsError(f"DATABASE_URL must start with sqlite:// or postgres:// (got {database_url.split(':')[0]}://...)")
    data_keys = _keys(env, "LOYALTY_DATA_KEYS", DEMO_DATA_KEY)
    lookup_keys = _keys(env, "LOYALTY_LOOKUP_KEY", DEMO_LOOKUP_KEY)
    if production and not (data_keys and lookup_keys):
        raise SettingsError("LOYALTY_PRODUCTION=1 needs LOYALTY_DATA_KEYS and LOYALTY_LOOKUP_KEY "
                            "(phone and email encryption; `loyalty keys new` makes a key)")
    if production and (data_keys[0] == DEMO_DATA_KEY or lookup_keys[0] == DEMO_LOOKUP_KEY):
        raise SettingsError("LOYALTY_PRODUCTION=1: the public demo key may only follow a real one in LOYALTY_DATA_KEYS")
    return Settings(
        database_url=database_url,
        data_keys=data_keys,
        lookup_key=lookup_keys[0] if lookup_keys else None,
        old_lookup_keys=lookup_keys[1:],
        redis_url=env.get("REDIS_URL") or None,
        jwt_secret=env.get("LOYALTY_JWT_SECRET") or None,
        jwt_issuer=env.get("LOYALTY_JWT_ISSUER") or "loyalty",
        jwt_audience=env.get("LOYALTY_JWT_AUDIENCE") or "loyalty-api",
        jwks=env.get("LOYALTY_JWKS") or None,
        timezone=timezone,
        rules_path=env.get("LOYALTY_RULES") or None,
        introspection=not production and not _flag(env.get("LOYALTY_DISABLE_INTROSPECTION")),
        graphiql=not production and not _flag(env.get("LOYALTY_DISABLE_GRAPHIQL")),
        scheduler=_flag(env.get("LOYALTY_SCHEDULER")),
        feed_poll_seconds=_positive(env, "LOYALTY_FEED_POLL_SECONDS", Settings.feed_poll_seconds),
        feed_queue_size=_positive(env, "LOYALTY_FEED_QUEUE_SIZE", Settings.feed_queue_size, int),
        access_log_batch=_positive(env, "LOYALTY_ACCESS_LOG_BATCH", Settings.access_log_batch, int),
        access_log_seconds=_positive(env, "LOYALTY_ACCESS_LOG_SECONDS", Settings.access_log_seconds),
        access_log_days=_positive(env, "LOYALTY_ACCESS_LOG_DAYS", Settings.access_log_days, int),
        ws_init_timeout=_positive(env, "LOYALTY_WS_INIT_TIMEOUT_SECONDS", Settings.ws_init_timeout),
        body_timeout=_positive(env, "LOYALTY_BODY_TIMEOUT_SECONDS", Settings.body_timeout),
        webhook_max_failures=_positive(env, "LOYALTY_WEBHOOK_MAX_FAILURES", Settings.webhook_max_failures, int),
        webhook_backoff_seconds=_positive(env, "LOYALTY_WEBHOOK_BACKOFF_SECONDS", Settings.webhook_backoff_seconds),
        webhook_backoff_cap_seconds=_positive(env, "LOYALTY_WEBHOOK_BACKOFF_CAP_SECONDS", Settings.webhook_backoff_cap_seconds),
        webhook_timeout_seconds=_positive(env, "LOYALTY_WEBHOOK_TIMEOUT_SECONDS", Settings.webhook_timeout_seconds),
        webhook_poll_seconds=_positive(env, "LOYALTY_WEBHOOK_POLL_SECONDS", Settings.webhook_poll_seconds),
        webhook_allow_http=_flag(env.get("LOYALTY_WEBHOOK_ALLOW_HTTP")),
        webhooks=_flag(env.get("LOYALTY_WEBHOOKS")),
        log_format=_choice(env, "LOYALTY_LOG_FORMAT", "text", ("text", "json")),
        log_level=_choice(env, "LOYALTY_LOG_LEVEL", "info", LOG_LEVELS),
        metrics=not _flag_off(env.get("LOYALTY_METRICS")),
        cors_origins=_origins(env, "LOYALTY_CORS_ORIGINS"),
        tracing=bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")),
        group_commit=_choice(env, "LOYALTY_GROUP_COMMIT", "auto", group_commit.MODES),
        compiled_plans=not _flag_off(env.get("LOYALTY_COMPILED_PLANS")),
        limits=Limits(
            max_depth=_positive(env, "LOYALTY_MAX_DEPTH", Limits.max_depth, int),
            max_cost=_positive(env, "LOYALTY_MAX_COST", Limits.max_cost, int),
            anonymous_max_cost=_positive(env, "LOYALTY_ANONYMOUS_MAX_COST", Limits.anonymous_max_cost, int),
            max_tokens=_positive(env, "LOYALTY_MAX_TOKENS", Limits.max_tokens, int),
        ),
    )
