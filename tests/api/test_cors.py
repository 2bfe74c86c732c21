"""CORS (LOYALTY_CORS_ORIGINS): a browser page on a listed origin may call /graphql;
any other origin gets no CORS headers; none configured, no CORS at all."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from api.app import create_app
from api.settings import SettingsError, load_settings

FRONTEND = "https://app.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}


async def client_for(settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, manage_orm=False)), base_url="http://test")


async def test_a_listed_origin_passes_the_preflight_and_reads_the_answer(db):
    async with await client_for(replace(db, cors_origins=(FRONTEND, "http://localhost:5173"))) as client:
        preflight = await client.options("/graphql", headers={"Origin": FRONTEND, **PREFLIGHT})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == FRONTEND
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "access-control-allow-credentials" not in preflight.headers  # tokens, not cookies

        answer = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": FRONTEND})
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == FRONTEND
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


async def test_another_origin_gets_no_cors_headers(db):
    async with await client_for(replace(db, cors_origins=(FRONTEND,))) as client:
        preflight = await client.options("/graphql", headers={"Origin": "https://evil.example", **PREFLIGHT})
        assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
        answer = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in answer.headers


async def test_no_origins_configured_means_no_cors(db):
    assert load_settings({}, dotenv=None).cors_origins == ()
    async with await client_for(db) as client:
        preflight = await client.options("/graphql", headers={"Origin": FRONTEND, **PREFLIGHT})
        assert preflight.status_code == 405 and "access-control-allow-origin" not in preflight.headers
        answer = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": FRONTEND})
        assert "access-control-allow-origin" not in answer.headers


def test_origins_are_read_and_checked():
    settings = load_settings({"LOYALTY_CORS_ORIGINS": " https://a.example , http://localhost:3000/ "}, dotenv=None)
    assert settings.cors_origins == ("https://a.example", "http://localhost:3000")
    for bad in ("a.example", "https://a.example/app", "ftp://a.example"):
        with pytest.raises(SettingsError, match="LOYALTY_CORS_ORIGINS"):
            load_settings({"LOYALTY_CORS_ORIGINS": bad}, dotenv=None)
