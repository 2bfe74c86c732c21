"""Shared set-up for the miles and tiers API tests: the posting mutations as small
helpers, dates relative to the programme's today (the API has no clock to set), and
what the database holds for a member (to prove that a refusal wrote nothing)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from tortoise.functions import Coalesce, Sum

from loyalty.models import CreditLot, LedgerEntry, TierEvent
from members.models import IdempotencyRecord, Member
from tests.api.conftest import USER_ERRORS, data

ENTRY_FIELDS = """id kind activityDate qualifyingMiles qualifyingSegments redeemableMiles source externalRef
  description flight { carrier flightNumber date origin destination distanceKm fareClass }
  bonus { id kind redeemableMiles qualifyingMiles activityDate bonusFor { id } }
  bonusFor { id } reverses { id kind } reversedBy { id kind }"""

# Without `reason`: the airline, like a partner, sees a change's card, tiers and dates only.
CHANGE_FIELDS = "cardNumber fromTier toTier validUntil"

FLIGHT_ACCRUE = """mutation($input: FlightAccrueInput!) { flightAccrue(input: $input) {
  entry { %s } member { id cardNumber tier } tierChange { %s } %s } }""" % (ENTRY_FIELDS, CHANGE_FIELDS, USER_ERRORS)

PARTNER_ACCRUE = """mutation($input: PartnerAccrueInput!) { partnerAccrue(input: $input) {
  entry { %s } %s } }""" % (ENTRY_FIELDS, USER_ERRORS)

MILES_REDEEM = """mutation($input: MilesRedeemInput!) { milesRedeem(input: $input) {
  entry { %s } member { id redeemableMiles } %s } }""" % (ENTRY_FIELDS, USER_ERRORS)

ENTRY_REVERSE = """mutation($input: LedgerEntryReverseInput!) { ledgerEntryReverse(input: $input) {
  entry { %s } member { id tier } tierChange { %s } %s } }""" % (ENTRY_FIELDS, CHANGE_FIELDS, USER_ERRORS)

TIER_OVERRIDE = """mutation($input: TierOverrideInput!) { tierOverride(input: $input) {
  member { id tier tierStatus { tier since validUntil } } tierChange { %s reason effectiveAt } %s } }""" % (
    CHANGE_FIELDS, USER_ERRORS)

AIRLINE = ("airline",)
ADMIN = ("admin",)


# ---- dates ------------------------------------------------------------------------


def loyalty_today(api) -> date:
    """Today in the programme's time zone, as the server sees it."""
    return datetime.now(api.settings.tz).date()


def loyalty_month_end(year: int, month: int) -> date:
    """The last day of a month given by year and month (month may run past 12 or below 1)."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def loyalty_months_back(day: date, months: int) -> date:
    """The same day `months` calendar months earlier, clamped to that month's end."""
    last = loyalty_month_end(day.year, day.month - months)
    return last.replace(day=min(day.day, last.day))


def loyalty_valid_until(upgrade_day: date, months: int = 24) -> date:
    """Last day of the `months`-th month, the upgrade month counting as the first."""
    return loyalty_month_end(upgrade_day.year, upgrade_day.month + months - 1)


# ---- inputs and mutations -----------------------------------------------------------


def loyalty_flight(day: date, distance_km: int = 1000, fare_class: str = "J", **changes) -> dict:
    """A FlightInput (CA1501 PEK-SHA)."""
    flight = {
        "carrier": "CA", "flightNumber": "1501", "date": day.isoformat(), "origin": "PEK", "destination": "SHA",
        "distanceKm": distance_km, "fareClass": fare_class,
    }
    flight.update(changes)
    return flight


async def loyalty_flight_accrue(api, card: str, ref: str, flight: dict, as_: tuple = AIRLINE) -> dict:
    """The raw flightAccrue result (data and errors)."""
    return await api.gql(FLIGHT_ACCRUE, {"input": {"cardNumber": card, "externalRef": ref, "flight": flight}}, as_=as_)


async def loyalty_fly(api, member: dict, ref: str, distance_km: int = 1000, fare_class: str = "J",
                      day: date | None = None, as_: tuple = AIRLINE) -> dict:
    """A flight that must be accepted; its payload. The default day is yesterday."""
    day = day or loyalty_today(api) - timedelta(days=1)
    result = await loyalty_flight_accrue(api, member["cardNumber"], ref, loyalty_flight(day, distance_km, fare_class), as_)
    payload = data(result)["flightAccrue"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


def loyalty_partner_input(member: dict, ref: str, miles: int, day: date, **changes) -> dict:
    value = {
        "cardNumber": member["cardNumber"], "familyName": member["familyName"], "miles": miles,
        "activityDate": day.isoformat(), "externalRef": ref, "description": "2 nights, Hotel Co Beijing",
    }
    value.update(changes)
    return value


async def loyalty_partner_accrue(api, input: dict, as_: tuple) -> dict:
    return await api.gql(PARTNER_ACCRUE, {"input": input}, as_=as_)


async def loyalty_redeem(api, member_id: str, miles: int, key: str, as_: tuple = ADMIN, description: str = "upgrade voucher") -> dict:
    return await api.gql(
        MILES_REDEEM, {"input": {"memberId": member_id, "miles": miles, "description": description, "idempotencyKey": key}},
        as_=as_,
    )


async def loyalty_reverse(api, entry_id: str, key: str, as_: tuple = ADMIN, reason: str = "no-show") -> dict:
    return await api.gql(ENTRY_REVERSE, {"input": {"entryId": entry_id, "reason": reason, "idempotencyKey": key}}, as_=as_)


async def loyalty_override(api, member: dict, tier: str, valid_until: date | None = None, reason: str = "goodwill",
                           as_: tuple = ADMIN) -> dict:
    input = {"memberId": member["id"], "tier": tier, "reason": reason}
    if valid_until is not None:
        input["validUntil"] = valid_until.isoformat()
    return await api.gql(TIER_OVERRIDE, {"input": input}, as_=as_)


async def loyalty_register_partner(code: str, name: str | None = None):
    from members.partners import add_partner

    partner, _ = await add_partner(code, name or f"Partner {code}")
    return partner


async def loyalty_old_credit(member: dict, miles: int, activity: date, ref: str) -> int:
    """A partner credit dated `activity` (outside today's claims window, so posted by the
    domain service as on that day, by an admin: source ADMIN). Returns the entry id."""
    from loyalty.ledger import partner_accrue
    from loyalty.rules import load_rules
    from members.access import Caller, Role

    result = await partner_accrue(
        Caller(Role.ADMIN, "setup"), member["cardNumber"], member["familyName"], miles, activity, "old credit", ref,
        rules=load_rules(), today=activity,
    )
    return result.entry.id


# ---- what the database holds ---------------------------------------------------------


async def loyalty_footprint(member: dict) -> dict:
    """Everything a posting could write for this member."""
    row = await Member.get(id=int(member["id"]))
    return {
        "entries": await LedgerEntry.filter(member_id=row.id).count(),
        "lots": await CreditLot.filter(member_id=row.id).count(),
        "events": await TierEvent.filter(member_id=row.id).count(),
        "keys": await IdempotencyRecord.all().count(),
        "balance": row.redeemable_miles,
        "tier": row.tier.name,
    }


async def loyalty_lots(member: dict) -> dict[int, int]:
    """Remaining miles of each credit lot, by the id of the entry that made it."""
    rows = await CreditLot.filter(member_id=int(member["id"])).values_list("entry_id", "remaining")
    return dict(rows)


async def loyalty_assert_balanced(member: dict) -> None:
    """The running balance equals the ledger's sum, and the lots hold what is redeemable."""
    member_id = int(member["id"])
    balance = (await Member.get(id=member_id)).redeemable_miles
    ledger = await LedgerEntry.filter(member_id=member_id).annotate(s=Coalesce(Sum("redeemable_miles"), 0)).first().values("s")
    lots = await CreditLot.filter(member_id=member_id).annotate(s=Coalesce(Sum("remaining"), 0)).first().values("s")
    assert balance == int(ledger["s"] or 0)
    assert int(lots["s"] or 0) == max(balance, 0)


HISTORY = """query($id: ID) { member(id: $id) {
  tierHistory { edges { node { fromTier toTier reason validUntil } } } } }"""


async def loyalty_history(api, member: dict) -> list[dict]:
    """The member's tier changes, newest first, as an admin reads them."""
    result = data(await api.gql(HISTORY, {"id": member["id"]}, as_=ADMIN))["member"]["tierHistory"]["edges"]
    return [edge["node"] for edge in result]


MEMBER_MILES = "query($id: ID) { member(id: $id) { tier redeemableMiles milesExpiringSoon } }"


async def loyalty_miles(api, member: dict) -> dict:
    """tier, redeemableMiles and milesExpiringSoon as an admin reads them."""
    return data(await api.gql(MEMBER_MILES, {"id": member["id"]}, as_=ADMIN))["member"]


# ---- the `loyalty` command in a child process -------------------------------------------


def loyalty_cli(args: list[str], cwd, database_url: str | None = None, **env: str):
    """Run `loyalty ARGS` as an operator would (`python -m api.cli`, in `cwd` so no .env
    file of the project is read); the CompletedProcess with text stdout and stderr."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], cwd=cwd, env=cli_environment(database_url, **env), capture_output=True,
        text=True, timeout=120,
    )


def cli_environment(database_url: str | None = None, **env: str) -> dict[str, str]:
    """The environment `loyalty` runs in for a test: this one without the LOYALTY_,
    DATABASE_URL and REDIS_URL settings, then ``database_url`` and ``env``."""
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALTY_", "DATABASE_URL", "REDIS_URL"))}
    if database_url is not None:
        environment["DATABASE_URL"] = database_url
    environment.update(env)
    return environment
