"""Production switches: LOYALTY_PRODUCTION=1 (or each LOYALTY_DISABLE_* alone) turns
introspection and GraphiQL off; a laptop has both on."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from api.app import create_app
from api.auth import mint_token
from api.settings import SettingsError, load_settings
from members.access import Role
from members.contacts import new_key

INTROSPECTION = "{ __schema { queryType { name } } }"
# Production needs the phone/email keys (members.contacts): two made by `loyalty keys new`.
KEYS = {"LOYALTY_DATA_KEYS": new_key(), "LOYALTY_LOOKUP_KEY": new_key()}


@pytest.mark.parametrize(
    ("environ", "introspection", "graphiql"),
    [
        ({}, True, True),
        ({"LOYALTY_PRODUCTION": "1", **KEYS}, False, False),
        ({"LOYALTY_DISABLE_INTROSPECTION": "1"}, False, True),
        ({"LOYALTY_DISABLE_GRAPHIQL": "true"}, True, False),
    ],
)
def test_settings(environ, introspection, graphiql):
    settings = load_settings(environ=environ, dotenv=None)
    assert (settings.introspection, settings.graphiql) == (introspection, graphiql)


@pytest.mark.parametrize("production", [False, True])
async def test_the_served_app_follows_the_switches(db, production):
    settings = replace(db, introspection=not production, graphiql=not production)
    app = create_app(settings, manage_orm=False)
    token = mint_token(settings, Role.ADMIN, "admin-test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        result = (await client.post("/graphql", json={"query": INTROSPECTION}, headers={"Authorization": f"Bearer {token}"})).json()
        ordinary = (await client.post("/graphql", json={"query": "{ tierRules { windowMonths } }"},
                                      headers={"Authorization": f"Bearer {token}"})).json()
    if production:
        assert page.status_code != 200 or "graphiql" not in page.text.lower()
        assert result.get("errors") and not result.get("data")
    else:
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        assert result["data"]["__schema"]["queryType"]["name"] == "Query"
    assert not ordinary.get("errors") and ordinary["data"]["tierRules"]["windowMonths"] == 12


@pytest.mark.parametrize("missing", ["LOYALTY_DATA_KEYS", "LOYALTY_LOOKUP_KEY"])
def test_production_refuses_to_start_without_the_contact_keys(missing):
    environ = {"LOYALTY_PRODUCTION": "1", **KEYS}
    del environ[missing]
    with pytest.raises(SettingsError, match="LOYALTY_PRODUCTION=1 needs LOYALTY_DATA_KEYS and LOYALTY_LOOKUP_KEY"):
        load_settings(environ=environ, dotenv=None)


def test_without_keys_outside_production_the_demo_keys_come_with_a_warning():
    settings = load_settings(environ={}, dotenv=None)
    assert settings.demo_contact_keys
    assert "PUBLIC demo keys" in settings.contact_keys_warning()
    assert settings.with_demo().contact_keys_warning() is None  # `--demo` says it is a demo already
    configured = load_settings(environ=KEYS, dotenv=None)
    assert configured.contact_keys_warning() is None
    assert configured.contact_keys().current_id != settings.contact_keys().current_id


@pytest.mark.parametrize(("value", "message"), [
    ("not base64!", "LOYALTY_DATA_KEYS: key 1 is not base64"),
    ("c2hvcnQ=", "LOYALTY_DATA_KEYS: key 1 decodes to 5 bytes; 32 are needed"),
    (f"{KEYS['LOYALTY_DATA_KEYS']},{KEYS['LOYALTY_DATA_KEYS']}", "LOYALTY_DATA_KEYS lists a key twice"),
])
def test_a_bad_key_is_one_line_naming_the_setting(value, message):
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"LOYALTY_DATA_KEYS": value}, dotenv=None)
    assert str(refused.value).startswith(message)


def test_the_demo_key_may_follow_a_real_one_to_move_data_off_it():
    moving = load_settings(environ={**KEYS, "LOYALTY_DATA_KEYS": f"{KEYS['LOYALTY_DATA_KEYS']},demo"}, dotenv=None)
    demo = load_settings(environ={}, dotenv=None).contact_keys()
    assert moving.contact_keys().key_ids == (moving.contact_keys().current_id, demo.current_id)
    assert moving.contact_keys_warning() is None
    first = load_settings(environ={**KEYS, "LOYALTY_DATA_KEYS": "demo"}, dotenv=None)
    assert "LOYALTY_DATA_KEYS not set to a key of yours" in first.contact_keys_warning()
    with pytest.raises(SettingsError, match="the public demo key may only follow a real one"):
        load_settings(environ={"LOYALTY_PRODUCTION": "1", **KEYS, "LOYALTY_DATA_KEYS": "demo"}, dotenv=None)
