"""Public keys of an outside identity provider (LOYALTY_JWKS: a JWKS file or an https
URL), for member app frontends that sign their users in themselves: tokens signed with
RS256 or EdDSA and a `kid` their key set holds are accepted like the service's own.

Rotation: a token naming a kid the loaded set lacks makes the set reload (at most once
every RELOAD_SECONDS, so a flood of unknown kids cannot hammer the provider); a key
removed from the set is refused after the next reload. PyJWT parses the keys and
checks the signatures (its `crypto` extra); nothing here is cryptography of our own.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import jwt

RELOAD_SECONDS = 60.0
ASYMMETRIC_ALGORITHMS = ("RS256", "EdDSA")


class KeySetError(Exception):
    """The key set cannot be read, or holds no key for the token."""


class KeySet:
    def __init__(self, source: str) -> None:
        self.source = source
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def _read(self) -> dict:
        if self.source.startswith(("https://", "http://")):
            return jwt.PyJWKClient(self.source, cache_keys=False).fetch_data()
        return json.loads(Path(self.source).read_text(encoding="utf-8"))

    def _load(self) -> None:
        try:
            keys = jwt.PyJWKSet.from_dict(self._read()).keys
        except (OSError, ValueError, jwt.PyJWKClientError, jwt.PyJWKSetError) as error:
            raise KeySetError(f"cannot read the key set {self.source}: {error}") from None
        self._keys = {key.key_id: key for key in keys if key.key_id}
        self._loaded_at = time.monotonic()

    def key(self, kid: str | None) -> jwt.PyJWK:
        """The key of ``kid``, reloading the set once when it is unknown."""
        if not kid:
            raise KeySetError("the token names no key (kid)")
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._loaded_at >= RELOAD_SECONDS:
                self._load()
            key = self._keys.get(kid)
        if key is None:
            raise KeySetError(f"no key {kid[:40]!r} in the identity provider's key set")
        return key


_sets: dict[str, KeySet] = {}


def key_set(source: str) -> KeySet:
    """One key set per source, shared by the process's requests."""
    if source not in _sets:
        _sets[source] = KeySet(source)
    return _sets[source]
