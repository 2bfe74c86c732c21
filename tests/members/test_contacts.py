"""members.contacts without a database: sealing opens only with a configured key and
for the same field, the first key seals, any key opens (rotation), and the lookup hash
depends on the lookup key and the field, never on how the value was sealed."""

from __future__ import annotations

import base64

import pytest

from members.contacts import ContactKeyError, ContactKeys, decode_key, key_id, new_key

OLD, NEW, LOOKUP = (decode_key(new_key()) for _ in range(3))


def test_a_sealed_phone_holds_no_plain_digits_and_opens_again():
    keys = ContactKeys([OLD], LOOKUP)
    sealed = keys.seal("+86 138 0013 8000", "phone")
    assert sealed.startswith(key_id(OLD) + ":") and len(key_id(OLD)) == 8
    raw = base64.b64decode(sealed.split(":", 1)[1])
    assert len(raw) == 12 + len("+86 138 0013 8000") + 16  # nonce, ciphertext, tag
    assert b"138 0013 8000" not in raw and b"8613800138000" not in raw
    assert keys.open(sealed, "phone") == "+86 138 0013 8000"
    # A fresh nonce each time: the same phone seals differently (no equality leak).
    assert keys.seal("+86 138 0013 8000", "phone") != sealed
    assert (keys.seal(None, "phone"), keys.open(None, "phone")) == (None, None)


def test_rotation_the_first_key_seals_and_every_key_opens():
    before = ContactKeys([OLD], LOOKUP)
    sealed_before = before.seal("a@example.com", "email")
    after = ContactKeys([NEW, OLD], LOOKUP)
    assert after.open(sealed_before, "email") == "a@example.com"
    assert not after.is_current(sealed_before)
    sealed_after = after.seal("a@example.com", "email")
    assert sealed_after.startswith(key_id(NEW) + ":") and after.is_current(sealed_after)
    with pytest.raises(ContactKeyError, match=f"sealed with key '{key_id(NEW)}', which LOYALTY_DATA_KEYS does not hold"):
        before.open(sealed_after, "email")


def test_a_value_moved_to_the_other_column_or_damaged_does_not_open():
    keys = ContactKeys([OLD], LOOKUP)
    sealed = keys.seal("a@example.com", "email")
    with pytest.raises(ContactKeyError, match="does not open: damaged"):
        keys.open(sealed, "phone")
    kid, body = sealed.split(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(ContactKeyError, match="does not open: damaged"):
        keys.open(f"{kid}:{base64.b64encode(bytes(raw)).decode()}", "email")


def test_the_lookup_hash_is_keyed_per_field_and_the_same_under_any_data_key():
    keys = ContactKeys([OLD], LOOKUP)
    digest = keys.lookup_hash("8613800138000", "phone")
    assert len(digest) == 32 and int(digest, 16) >= 0
    assert ContactKeys([NEW, OLD], LOOKUP).lookup_hash("8613800138000", "phone") == digest
    assert keys.lookup_hash("8613800138000", "email") != digest
    assert ContactKeys([OLD], NEW).lookup_hash("8613800138000", "phone") != digest


def test_keys_are_32_bytes_of_base64_in_either_alphabet():
    key = new_key()
    assert decode_key(key) == decode_key(key.replace("-", "+").replace("_", "/").rstrip("="))
    with pytest.raises(ValueError, match="decodes to 16 bytes"):
        decode_key(base64.b64encode(b"x" * 16).decode())
    with pytest.raises(ValueError, match="listed twice"):
        ContactKeys([OLD, OLD], LOOKUP)
