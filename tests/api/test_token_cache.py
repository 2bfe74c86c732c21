"""api.auth.TokenCache: a token is decoded once and, for roles whose caller cannot
change (member, admin, airline), resolved once, until it expires; office, branch and
partner scopes are resolved on every request; a refused (blocked) caller is never kept;
the cache holds at most `size` tokens."""

from __future__ import annotations

import time

from api import auth
from api.auth import LEEWAY_SECONDS, TokenCache, mint_token
from members.access import Role


def _counting(monkeypatch, name: str) -> list:
    calls: list = []
    real = getattr(auth, name)

    def counted(*args):
        calls.append(args)
        return real(*args)

    async def counted_async(*args):
        calls.append(args)
        return await real(*args)

    monkeypatch.setattr(auth, name, counted_async if name == "resolve_caller" else counted)
    return calls


async def test_an_admin_token_is_decoded_and_resolved_once(db, monkeypatch):
    decoded, resolved = _counting(monkeypatch, "decode_token"), _counting(monkeypatch, "resolve_caller")
    cache = TokenCache(db)
    token = mint_token(db, Role.ADMIN, "admin-1")
    first = await cache.caller(token)
    assert await cache.caller(token) == first
    assert (len(decoded), len(resolved)) == (1, 1)


async def test_a_cached_token_is_decoded_again_once_it_has_expired(db, monkeypatch):
    decoded = _counting(monkeypatch, "decode_token")
    cache = TokenCache(db)
    token = mint_token(db, Role.AIRLINE, "airline-1", ttl_seconds=60)
    await cache.caller(token)
    later = time.time() + 60 + LEEWAY_SECONDS + 1
    monkeypatch.setattr(auth.time, "time", lambda: later)
    try:
        await cache.caller(token)
    except auth.AuthError:
        pass  # the decoder's own clock may already call it expired: either way it was asked again
    assert len(decoded) == 2


async def test_office_tokens_and_blocked_member_tokens_are_resolved_every_time(db, monkeypatch):
    resolved = _counting(monkeypatch, "resolve_caller")
    cache = TokenCache(db)
    office = mint_token(db, Role.OFFICE, "office-1", "PEK01")
    nobody = mint_token(db, Role.MEMBER, "999999")  # no such member: blocked
    for token in (office, office, nobody, nobody):
        await cache.caller(token)
    assert len(resolved) == 4
    caller, _ = await cache.caller(nobody)
    assert caller.blocked


async def test_the_cache_keeps_at_most_its_size(db):
    cache = TokenCache(db, size=2)
    for n in range(3):
        await cache.caller(mint_token(db, Role.ADMIN, f"admin-{n}"))
    assert len(cache._entries) == 2
