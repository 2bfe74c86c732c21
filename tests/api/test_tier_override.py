"""tierOverride: admin only; any tier, validUntil by default as for an upgrade today, a
reason; audited as a MANUAL tier change."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loyalty.models import TierEvent
from tests.api.conftest import as_member, data, enroll, error_codes, problems
from tests.api.loyalty_factories import (
    loyalty_footprint, loyalty_history, loyalty_override, loyalty_register_partner, loyalty_today, loyalty_valid_until,
)


async def _overridden(api, member: dict, tier: str, valid_until=None, reason: str = "goodwill") -> dict:
    payload = data(await loyalty_override(api, member, tier, valid_until, reason))["tierOverride"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


async def _refused(api, member: dict, tier: str, valid_until=None, reason: str = "goodwill") -> dict:
    payload = data(await loyalty_override(api, member, tier, valid_until, reason))["tierOverride"]
    assert (payload["member"], payload["tierChange"]) == (None, None)
    return payload


async def test_an_admin_sets_a_tier_valid_as_for_an_upgrade_today(api):
    member = await enroll(api)
    today = loyalty_today(api)
    payload = await _overridden(api, member, "GOLD", reason="CEO's guest")
    until = loyalty_valid_until(today).isoformat()
    assert payload["member"] == {
        "id": member["id"], "tier": "GOLD", "tierStatus": {"tier": "GOLD", "since": today.isoformat(), "validUntil": until},
    }
    change = payload["tierChange"]
    assert {k: change[k] for k in ("cardNumber", "fromTier", "toTier", "reason", "validUntil")} == {
        "cardNumber": member["cardNumber"], "fromTier": "STANDARD", "toTier": "GOLD", "reason": "MANUAL", "validUntil": until,
    }
    assert await loyalty_history(api, member) == [
        {"fromTier": "STANDARD", "toTier": "GOLD", "reason": "MANUAL", "validUntil": until},
    ]


async def test_the_reason_and_the_admin_are_kept_on_the_event(api):
    member = await enroll(api)
    await _overridden(api, member, "SILVER", reason="  service   recovery ")
    event = await TierEvent.get(member_id=int(member["id"]))
    assert (event.note, event.actor) == ("service recovery", "admin:admin-test")


async def test_an_explicit_valid_until(api):
    member = await enroll(api)
    until = loyalty_today(api) + timedelta(days=100)
    payload = await _overridden(api, member, "PLATINUM", until)
    assert payload["member"]["tierStatus"]["validUntil"] == until.isoformat()
    assert payload["tierChange"]["validUntil"] == until.isoformat()


async def test_down_to_standard_has_no_valid_until(api):
    member = await enroll(api)
    await _overridden(api, member, "GOLD")
    payload = await _overridden(api, member, "STANDARD", reason="fraud")
    assert payload["member"]["tierStatus"]["validUntil"] is None
    assert (payload["tierChange"]["fromTier"], payload["tierChange"]["toTier"]) == ("GOLD", "STANDARD")


async def test_the_same_tier_again_changes_its_validity_and_is_logged(api):
    member = await enroll(api)
    await _overridden(api, member, "SILVER")
    later = loyalty_today(api) + timedelta(days=900)
    payload = await _overridden(api, member, "SILVER", later, reason="extension")
    assert payload["member"]["tierStatus"]["validUntil"] == later.isoformat()
    assert [(c["fromTier"], c["toTier"]) for c in await loyalty_history(api, member)] == [
        ("SILVER", "SILVER"), ("STANDARD", "SILVER"),
    ]


@pytest.mark.parametrize(
    ("tier", "days", "reason", "field"),
    [
        ("STANDARD", 30, "r", "validUntil"),  # STANDARD has no validity
        ("GOLD", -1, "r", "validUntil"),  # in the past
        ("GOLD", None, "", "reason"),
        ("GOLD", None, "   ", "reason"),
        ("GOLD", None, "x" * 281, "reason"),
    ],
)
async def test_invalid_input_names_the_field_and_writes_nothing(api, tier, days, reason, field):
    member = await enroll(api)
    before = await loyalty_footprint(member)
    until = None if days is None else loyalty_today(api) + timedelta(days=days)
    payload = await _refused(api, member, tier, until, reason)
    assert problems(payload) == [("INVALID", ["input", field])]
    assert await loyalty_footprint(member) == before


async def test_today_is_a_valid_until(api):
    member = await enroll(api)
    payload = await _overridden(api, member, "SILVER", loyalty_today(api))
    assert payload["member"]["tierStatus"]["validUntil"] == loyalty_today(api).isoformat()


@pytest.mark.parametrize("member_id", ["999999", "x"])
async def test_an_unknown_member_is_not_found(api, member_id):
    payload = await _refused(api, {"id": member_id}, "GOLD")
    assert problems(payload) == [("NOT_FOUND", ["input", "memberId"])]


async def test_an_unknown_tier_is_refused_before_it_runs(api):
    member = await enroll(api)
    result = await loyalty_override(api, member, "DIAMOND")
    assert result.get("data") is None and "DIAMOND" in result["errors"][0]["message"]
    assert (await loyalty_footprint(member))["events"] == 0


@pytest.mark.parametrize("role", ["member", "partner", "office", "branch", "airline"])
async def test_only_an_admin_overrides(api, role):
    await loyalty_register_partner("HOTELCO")
    member = await enroll(api, "PEK01")
    as_ = {"member": as_member(member), "partner": ("partner", "HOTELCO"), "office": ("office", "PEK01"),
           "branch": ("branch", "NCB"), "airline": ("airline",)}[role]
    result = await loyalty_override(api, member, "PLATINUM", as_=as_)
    assert error_codes(result) == ["FORBIDDEN"]
    footprint = await loyalty_footprint(member)
    assert (footprint["tier"], footprint["events"]) == ("STANDARD", 0)
