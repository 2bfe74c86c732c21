"""Phone and email at rest: encrypted, with a keyed hash for exact lookups.

- A member's phone and email are stored sealed with AES-256-GCM (the `cryptography`
  package; no cipher code of ours) as ``<key id>:<base64 of nonce + ciphertext + tag>``.
  The key id (8 hex digits, derived from the key) names the data key that sealed it, so
  any configured key opens a value and the first one seals new values: rotating keys is
  listing a new key first and re-sealing the rows (`loyalty members reencrypt`). The
  field's name ("phone", "email") is the associated data: a value copied into the other
  column does not open.
- Exact lookups (sign-in by phone) and the DUPLICATE check compare a keyed hash of the
  normalised value, HMAC-SHA256 under a separate lookup key, truncated to 128 bits (32
  hex digits) and kept in the unique columns phone_hash and email_hash. Without the
  lookup key the hashes cannot be computed from a guessed phone number. Old lookup
  keys listed after it are matched too, until `loyalty members reencrypt` has hashed
  every row again with the new one.

The keys come from the settings (api.settings: LOYALTY_DATA_KEYS, LOYALTY_LOOKUP_KEY);
the process that reads them calls `configure` once at start, and the services reach them
through `current()`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256; the lookup key is an HMAC-SHA256 key of the same length
_NONCE_BYTES = 12
_HASH_HEX = 32  # 128 bits of the HMAC: collisions are out of reach for any programme


class ContactKeyError(RuntimeError):
    """A sealed value that no configured key opens (a key left out of LOYALTY_DATA_KEYS
    too early, or a damaged value), or keys that were never configured."""


def key_id(key: bytes) -> str:
    """The 8 hex digits naming a data key in the values it seals (not a secret: an HMAC
    of a fixed text under the key reveals nothing of the key)."""
    return hmac.new(key, b"loyalty data key id", hashlib.sha256).hexdigest()[:8]


def decode_key(text: str) -> bytes:
    """A key written as base64 (standard or URL-safe alphabet) of 32 random bytes, or
    ValueError saying what is wrong."""
    text = text.strip()
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"decodes to {len(raw)} bytes; {KEY_BYTES} are needed")
    return raw


def new_key() -> str:
    """A fresh random key, as LOYALTY_DATA_KEYS and LOYALTY_LOOKUP_KEY take it."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=KEY_BYTES * 8)).decode()


class ContactKeys:
    """The data keys (the first seals, any opens) and the lookup key."""

    def __init__(self, data_keys: Sequence[bytes], lookup_key: bytes, old_lookup_keys: Sequence[bytes] = ()) -> None:
        if not data_keys:
            raise ValueError("at least one data key is needed")
        self._sealers = {key_id(key): AESGCM(key) for key in data_keys}
        if len(self._sealers) != len(data_keys):
            raise ValueError("a data key is listed twice")
        self.current_id = key_id(data_keys[0])
        self._current = self._sealers[self.current_id]
        self._lookup_key = lookup_key
        # While the lookup key changes, lookups match a hash under any of these too.
        self._old_lookup_keys = tuple(old_lookup_keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._sealers)

    def seal(self, value: str | None, field: str) -> str | None:
        """The value sealed under the first data key (None stays None)."""
        if value is None:
            return None
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._current.encrypt(nonce, value.encode(), field.encode())
        return f"{self.current_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, token: str | None, field: str) -> str | None:
        """The value a sealed text holds (None stays None), or ContactKeyError."""
        if token is None:
            return None
        kid, _, body = token.partition(":")
        sealer = self._sealers.get(kid)
        if sealer is None:
            raise ContactKeyError(f"a {field} is sealed with key {kid!r}, which LOYALTY_DATA_KEYS does not hold")
        try:
            raw = base64.b64decode(body)
            return sealer.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], field.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise ContactKeyError(f"a {field} sealed with key {kid!r} does not open: damaged") from None

    def is_current(self, token: str | None) -> bool:
        """Whether the value is sealed with the first data key (or is None)."""
        return token is None or token.startswith(self.current_id + ":")

    def lookup_hash(self, normalised: str, field: str) -> str:
        """The keyed hash of a normalised phone or email (services.phone_key/email_key)
        under the lookup key: what is stored."""
        return self._hash(self._lookup_key, normalised, field)

    def lookup_hashes(self, normalised: str, field: str) -> list[str]:
        """The hashes a lookup matches: under the lookup key, then under each old lookup
        key still configured (rows not yet hashed again by `loyalty members reencrypt`)."""
        return [self._hash(key, normalised, field) for key in (self._lookup_key, *self._old_lookup_keys)]

    @property
    def rotating_lookup_key(self) -> bool:
        return bool(self._old_lookup_keys)

    @staticmethod
    def _hash(key: bytes, normalised: str, field: str) -> str:
        return hmac.digest(key, f"{field}:{normalised}".encode(), "sha256").hex()[:_HASH_HEX]


_current: ContactKeys | None = None


def configure(keys: ContactKeys) -> None:
    """Set the process's keys (api.settings builds them from the environment)."""
    global _current
    _current = keys


def current() -> ContactKeys:
    """The process's keys, or ContactKeyError when nothing configured them."""
    if _current is None:
        raise ContactKeyError("phone and email keys are not configured (LOYALTY_DATA_KEYS, LOYALTY_LOOKUP_KEY)")
    return _current
