"""Tokens of an outside identity provider (LOYALTY_JWKS, api/jwks.py): RS256 and EdDSA
tokens whose kid is in the provider's key set are accepted like the service's own;
a rotated set is reloaded for a new kid and refuses a removed one; algorithms and keys
are never confused (an HS256 token signed with the public key, `none`, a key of another
algorithm, a provider token without LOYALTY_JWKS are UNAUTHENTICATED)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import api.jwks
from api.app import create_app
from tests.api.conftest import Api, data, enroll, error_codes

ME = "{ me { id } }"


def jwk(public_key, kid: str, algorithm: str) -> dict:
    if algorithm == "RS256":
        key = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public_key))
    else:
        key = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public_key))
    return {**key, "kid": kid, "alg": algorithm, "use": "sig"}


def hs256_with(secret: bytes, claims: dict) -> str:
    """A token forged the way key confusion works (PyJWT itself refuses to make one)."""
    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    signed = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode()) + "." + part(json.dumps(claims).encode())
    return signed + "." + part(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def write_set(path, *keys: dict) -> None:
    path.write_text(json.dumps({"keys": list(keys)}))


def provider_token(settings, private_key, kid: str, algorithm: str, sub: str, **claims) -> str:
    now = int(time.time())
    payload = {"sub": sub, "role": "member", "iat": now, "exp": now + 600, "iss": settings.jwt_issuer,
               "aud": settings.jwt_audience, **claims}
    return jwt.encode(payload, private_key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
async def provider(db, tmp_path, monkeypatch):
    monkeypatch.setattr(api.jwks, "RELOAD_SECONDS", 0.0)  # the test rotates keys at once
    path = tmp_path / "jwks.json"
    settings = replace(db, jwks=str(path))
    app = create_app(settings, manage_orm=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Api(client=client, settings=settings), path
    api.jwks._sets.pop(str(path), None)


async def test_rs256_and_eddsa_tokens_of_the_key_set_are_accepted(provider):
    client, path = provider
    member = await enroll(client, "PEK01")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    write_set(path, jwk(rsa_key.public_key(), "rsa-1", "RS256"), jwk(ed_key.public_key(), "ed-1", "EdDSA"))
    for key, kid, algorithm in ((rsa_key, "rsa-1", "RS256"), (ed_key, "ed-1", "EdDSA")):
        token = provider_token(client.settings, key, kid, algorithm, member["id"])
        assert data(await client.gql(ME, token=token))["me"] == {"id": member["id"]}
    # The service's own HS256 tokens still work beside them.
    assert data(await client.gql(ME, as_=("member", None, member["id"])))["me"] == {"id": member["id"]}


async def test_a_rotated_key_set_accepts_the_new_kid_and_refuses_the_removed_one(provider):
    client, path = provider
    member = await enroll(client, "PEK01")
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    write_set(path, jwk(old.public_key(), "2026-11", "RS256"))
    old_token = provider_token(client.settings, old, "2026-11", "RS256", member["id"])
    assert data(await client.gql(ME, token=old_token))["me"]["id"] == member["id"]
    write_set(path, jwk(new.public_key(), "2026-12", "RS256"))  # the provider rotated
    new_token = provider_token(client.settings, new, "2026-12", "RS256", member["id"])
    assert data(await client.gql(ME, token=new_token))["me"]["id"] == member["id"]  # unknown kid: reloaded
    fresh_old = provider_token(client.settings, old, "2026-11", "RS256", member["id"], jti="another")
    assert error_codes(await client.gql(ME, token=fresh_old)) == ["UNAUTHENTICATED"]


async def test_keys_and_algorithms_are_never_confused(provider, db):
    client, path = provider
    member = await enroll(client, "PEK01")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_set(path, jwk(rsa_key.public_key(), "rsa-1", "RS256"))
    public_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"sub": member["id"], "role": "member", "iat": now, "exp": now + 600, "iss": db.jwt_issuer, "aud": db.jwt_audience}
    forged = [
        hs256_with(public_pem, claims),  # HS256 "signed" with the public key as the secret
        jwt.encode(claims, None, algorithm="none"),
        provider_token(db, rsa_key, "no-such-kid", "RS256", member["id"]),
        provider_token(db, rsa_key, "rsa-1", "RS512", member["id"]),
    ]
    for token in forged:
        assert error_codes(await client.gql(ME, token=token)) == ["UNAUTHENTICATED"], token[:40]
    # Without LOYALTY_JWKS a provider token is refused whatever its key.
    plain = create_app(db, manage_orm=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plain), base_url="http://test") as other:
        token = provider_token(db, rsa_key, "rsa-1", "RS256", member["id"])
        assert error_codes(await Api(client=other, settings=db).gql(ME, token=token)) == ["UNAUTHENTICATED"]
