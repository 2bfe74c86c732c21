"""Bearer tokens (docs/AUTH.md): HS256 with the service's secret, or RS256/EdDSA with an
outside identity provider's keys (LOYALTY_JWKS, api.jwks); required claims, audience,
issuer, expiry with 30 s leeway."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from api.jwks import ASYMMETRIC_ALGORITHMS, KeySetError, key_set
from api.settings import Settings
from members.access import SCOPED_ROLES, Caller, Role, resolve_caller

ALGORITHMS = ["HS256"]  # fixed by the server; the token's header never chooses
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ["sub", "role", "exp", "iat", "iss", "aud"]
# The longest a token may live (exp - iat): a token that never expires is refused.
MAX_LIFETIME_SECONDS = 30 * 86400
MAX_SUBJECT_LENGTH = 100  # kept in audit trails (actor columns of 100)
MAX_SCOPE_LENGTH = 12  # the longest code: partner codes (offices and branches have 8)


class AuthError(Exception):
    """The token is missing, malformed, unsigned, expired or for someone else."""


@dataclass(frozen=True)
class Claims:
    role: Role
    subject: str
    scope: str | None
    # Unix time after which the token is refused (its exp plus the clock leeway).
    refused_after: float = float("inf")


def bearer_token(header: str | None) -> str | None:
    """The token in an Authorization header value, None when there is none."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization must be 'Bearer <token>'")
    return token.strip()


def _verification_key(token: str, settings: Settings) -> tuple[Any, list[str]]:
    """The key and the one algorithm a token is checked with: the service's secret for
    HS256; with LOYALTY_JWKS, the identity provider's public key of the token's kid for
    RS256 or EdDSA (api.jwks). The header names the algorithm, but only to pick between
    these fixed pairs: a public key is never used as an HS256 secret (key confusion)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    algorithm = header.get("alg")
    if algorithm in ALGORITHMS:
        return settings.require_secret(), [algorithm]
    if algorithm in ASYMMETRIC_ALGORITHMS and settings.jwks:
        try:
            key = key_set(settings.jwks).key(header.get("kid") if isinstance(header.get("kid"), str) else None)
        except KeySetError as exc:
            raise AuthError(str(exc)) from None
        if key.algorithm_name != algorithm:
            raise AuthError(f"key {key.key_id!r} is for {key.algorithm_name}, not {algorithm}")
        return key.key, [algorithm]
    raise AuthError(f"the token's algorithm {str(algorithm)[:20]!r} is not accepted")


def decode_token(token: str, settings: Settings) -> Claims:
    try:
        key, algorithms = _verification_key(token, settings)
        payload = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token has expired") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    _check_times(payload)
    try:
        role = Role(payload["role"])
    except (ValueError, TypeError):
        raise AuthError(f"unknown role {str(payload['role'])[:20]!r}") from None
    scope = payload.get("scope")
    if role in SCOPED_ROLES and not (isinstance(scope, str) and 0 < len(scope) <= MAX_SCOPE_LENGTH and scope.isascii() and scope.isalnum()):
        raise AuthError(f"a {role.value} token needs a scope claim: a code of 1 to {MAX_SCOPE_LENGTH} letters or digits")
    subject = payload["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH or not subject.isprintable():
        raise AuthError(f"sub must be a string of 1 to {MAX_SUBJECT_LENGTH} printable characters")
    return Claims(
        role=role, subject=subject, scope=scope if role in SCOPED_ROLES else None,
        refused_after=float(payload["exp"]) + LEEWAY_SECONDS,
    )


# Roles whose resolved caller cannot change while the token lives: a member is never
# deleted, admin and airline scopes name nothing in the database. Office, branch and
# partner scopes can be renamed or disabled, so theirs are resolved on every request.
STABLE_CALLER_ROLES = frozenset({Role.MEMBER, Role.ADMIN, Role.AIRLINE})


class TokenCache:
    """Callers by token, kept until the token is refused (exp plus the leeway): decoding
    a token costs about 7 % of a member read, and a member token's check of its member a
    statement. Only successful decodes are kept (whatever decoded once stays valid until
    it expires); of the callers, those of STABLE_CALLER_ROLES that are not blocked.
    Bounded: past `size` tokens the oldest goes."""

    def __init__(self, settings: Settings, size: int = 10_000) -> None:
        self.settings = settings
        self.size = size
        self._entries: dict[str, tuple[Claims, Caller | None]] = {}

    async def caller(self, token: str) -> tuple[Caller, float]:
        """The token's caller and the time after which it is refused; AuthError for a bad token."""
        entry = self._entries.get(token)
        if entry is not None and time.time() > entry[0].refused_after:
            del self._entries[token]
            entry = None
        if entry is None:
            claims = decode_token(token, self.settings)
        else:
            claims, caller = entry
            if caller is not None:
                return caller, claims.refused_after
        caller = await resolve_caller(claims.role, claims.subject, claims.scope)
        stable = claims.role in STABLE_CALLER_ROLES and not caller.blocked
        if len(self._entries) >= self.size and token not in self._entries:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = (claims, caller if stable else None)
        return caller, claims.refused_after


def _check_times(payload: dict) -> None:
    """exp and iat are whole numbers (PyJWT also takes numeric strings), and the token
    lives at most MAX_LIFETIME_SECONDS."""
    for claim in ("exp", "iat"):
        value = payload[claim]
        if isinstance(value, bool) or not isinstance(value, int):
            raise AuthError(f"{claim} must be a whole number of seconds")
    if payload["exp"] - payload["iat"] > MAX_LIFETIME_SECONDS:
        raise AuthError(f"token lives longer than {MAX_LIFETIME_SECONDS // 86400} days (exp - iat)")
    if payload["iat"] > time.time() + LEEWAY_SECONDS:
        raise AuthError("token is issued in the future (iat)")


# A signed-in member's access token lives 15 minutes; the refresh token renews it
# (members.credentials).
MEMBER_ACCESS_SECONDS = 900


def mint_token(settings: Settings, role: Role, subject: str, scope: str | None = None, ttl_seconds: int = 3600) -> str:
    if role in SCOPED_ROLES and not scope:
        raise ValueError(f"a {role.value} token needs --scope")
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": role.value,
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, settings.require_secret(), algorithm=ALGORITHMS[0])
