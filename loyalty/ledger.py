"""Posting services of the ledger: flight and partner accrual, redemption, reversal.

Each service validates everything it can before writing (nothing is written on any
error), then posts in ONE transaction: the ledger entries, the running balance, the
credit lots (loyalty.lots) and any tier change (loyalty.events.record_tier_change).
Authorisation by role is the schema's; the services check it again (ForbiddenError)
so that no other caller (CLI, jobs, tests) can post under a source it does not own.

Concurrency, without SELECT ... FOR UPDATE (a no-op on SQLite):

- The FIRST statement of every posting transaction is an UPDATE of the member's row
  (the balance change; for a posting that changes nothing it adds 0). On PostgreSQL that
  row lock serialises every posting of one member until commit, so the tier read, the
  window totals, the "already reversed?" check and the lots that follow see every
  earlier posting. On SQLite a deferred transaction whose first statement is a write
  takes the write lock at once, waiting under busy_timeout; a transaction that READ
  first and then wrote could fail with "database is locked" (SQLITE_BUSY_SNAPSHOT,
  no waiting) when another process (e.g. a CLI job) committed in between. Within one
  process Tortoise's SQLite client serialises transactions on its single connection
  anyway, so no retry loop is needed.
- externalRef: the unique (source, external_ref) index is the arbiter. A concurrent
  duplicate fails on insert with IntegrityError; its transaction rolls back and the
  request is answered as a replay (or IDEMPOTENCY_CONFLICT) of the winner.
- idempotencyKey: members.idempotency.run_once (unique (caller, key) index).
- Redemption: a conditional UPDATE (balance >= miles AND status ACTIVE); 0 rows is
  INSUFFICIENT_MILES (or MEMBER_NOT_ACTIVE), so concurrent redemptions never take a
  balance below zero.
- Reversal: the OneToOne `reverses` column is unique; a concurrent second reversal
  fails on insert and is reported as ALREADY_REVERSED.
- Group commit (members.group_commit, on SQLite by default): flight and partner credits
  and redemptions run their transaction's work in a savepoint of a batch shared with
  other requests' postings, one after another, committed once before any is answered.
  Each runs the same statements in the same order as alone, so every point above holds
  inside a batch too: a later posting's conditional update sees the earlier ones, a
  duplicate externalRef meets its twin's row, and a refusal rolls back only its own
  savepoint. Reversals keep a transaction of their own.
"""

from __future__ import annotations

import re
from copy import copy
from functools import cache
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.functions import Coalesce, Sum
from tortoise.transactions import in_transaction

from loyalty import book
from loyalty import calendar as cal
from loyalty import engine
from loyalty import lots
from loyalty.book import AIRLINE_SOURCE, MAX_ENTRY_DESCRIPTION, Entry, FlightDetails, family_name_key
from loyalty.changes import activity_added, members_changed, retention_windows_containing
from loyalty.events import default_connection, record_tier_change
from loyalty.models import LedgerEntry, LedgerEntryKind, TierChangeReason, TierEvent
from loyalty.rules import TIERS, Rules
from loyalty.totals import window_totals
from members.access import Caller, Role, require_role
from members.bulk_insert import BulkInsert, model_from_row, numbered, select_in
from members.cards import is_valid_card_number
from members.enums import MemberStatus, Tier
from members import driver, group_commit
from members.errors import DomainError, ForbiddenError, invalid, not_found
from members.ids import BIGINT_IDS, database_id
from members.idempotency import run_once
from members.models import Member
from members.services import visible_member

__all__ = [
    "ActivityImport", "FlightDetails", "FlightRow", "PartnerRow", "PostingResult", "flight_accrue", "partner_accrue",
    "redeem", "reverse",
]

ADMIN_SOURCE = "ADMIN"
MEMBER_SOURCE = "MEMBER"
MAX_DISTANCE_KM = 20_000  # longer than any non-stop flight flown today
MAX_PARTNER_MILES = 1_000_000
MAX_REDEEM_MILES = 1_000_000_000  # within the 32-bit integer columns
MAX_EXTERNAL_REF = 100
MAX_DESCRIPTION = MAX_ENTRY_DESCRIPTION  # a partner credit's or redemption's description is stored whole
MAX_REASON = 200  # kept whole on the reversal's description (MAX_ENTRY_DESCRIPTION) after a short prefix

_CARRIER = re.compile(r"^[A-Z0-9]{2}$")
_FLIGHT_NUMBER = re.compile(r"^[0-9]{1,4}[A-Z]?$")
_AIRPORT = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class PostingResult:
    entry: LedgerEntry  # the flight / partner / redemption entry, or for reverse the reversal of the original
    member: Member  # as the posting left it
    tier_event: TierEvent | None  # the tier change this posting caused (or, on a replay, the one it caused originally)
    replayed: bool = False


# ---- validation --------------------------------------------------------------------


def _card_number(value: str) -> str:
    card = (value or "").strip().upper()
    if not is_valid_card_number(card):
        raise invalid("cardNumber must be CA followed by 9 digits with a valid check digit", "input", "cardNumber")
    return card


def _external_ref(value: str) -> str:
    ref = (value or "").strip()
    if not 1 <= len(ref) <= MAX_EXTERNAL_REF:
        raise invalid(f"externalRef must be 1 to {MAX_EXTERNAL_REF} characters", "input", "externalRef")
    return ref


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: str | None, limit: int, *field: str, required: bool) -> str | None:
    text = " ".join((value or "").split())
    if not text:
        if required:
            raise invalid(f"{field[-1]} is required", *field)
        return None
    if len(text) > limit:
        raise invalid(f"{field[-1]} is longer than {limit} characters", *field)
    return text


def _rule_field(error: DomainError, *prefix: str) -> DomainError:
    """An engine RuleViolation with its field placed under the GraphQL input path."""
    return DomainError(error.code, error.message, (*prefix, *(error.field or ())))


def _flight_format(flight: FlightDetails, rules: Rules) -> tuple[FlightDetails, engine.FlightEarning]:
    """A normalised copy of the flight and what it earns, or INVALID on ("input","flight",...).
    The claims window (which depends on today) is checked separately."""
    path = ("input", "flight")
    carrier = (flight.carrier or "").strip().upper()
    if not _CARRIER.match(carrier):
        raise invalid("carrier must be a 2-character IATA airline code, e.g. CA", *path, "carrier")
    number = (flight.flight_number or "").strip().upper()
    if not _FLIGHT_NUMBER.match(number):
        raise invalid("flightNumber must be 1 to 4 digits with an optional letter, e.g. 1501", *path, "flightNumber")
    if not isinstance(flight.date, date):
        raise invalid("date must be a calendar date", *path, "date")
    origin = (flight.origin or "").strip().upper()
    if not _AIRPORT.match(origin):
        raise invalid("origin must be a 3-letter IATA airport code", *path, "origin")
    destination = (flight.destination or "").strip().upper()
    if not _AIRPORT.match(destination):
        raise invalid("destination must be a 3-letter IATA airport code", *path, "destination")
    if destination == origin:
        raise invalid("destination must differ from origin", *path, "destination")
    if not _whole(flight.distance_km) or not 1 <= flight.distance_km <= MAX_DISTANCE_KM:
        raise invalid(f"distanceKm must be a whole number from 1 to {MAX_DISTANCE_KM}", *path, "distanceKm")
    fare_class = (flight.fare_class or "").strip()
    try:
        earning = engine.flight_accrual(rules, flight.distance_km, fare_class)
    except engine.RuleViolation as error:
        raise _rule_field(error, "input") from None
    clean = FlightDetails(carrier, number, flight.date, origin, destination, flight.distance_km, fare_class)
    return clean, earning


def _not_active(member: Member, *field: str) -> DomainError:
    return DomainError("MEMBER_NOT_ACTIVE", f"the member is {member.status.value.lower()}: nothing is posted", field)


def _check_role(caller: Caller, *roles: Role) -> None:
    require_role(caller, roles, f"role {caller.role.value} may not do this")


# ---- shared posting helpers ---------------------------------------------------------


async def _result(entry: LedgerEntry, *, replayed: bool, connection: BaseDBAsyncClient | None = None) -> PostingResult:
    """The result of a posting: its member re-read and the tier event it caused (the
    event whose cause is this entry: UPGRADE for a flight, REVERSAL for a reversal)."""
    members = Member.filter(id=entry.member_id)
    events = TierEvent.filter(cause_id=entry.id).order_by("id")
    if connection is not None:
        members, events = members.using_db(connection), events.using_db(connection)
    return PostingResult(entry=entry, member=await members.get(), tier_event=await events.first(), replayed=replayed)


async def _replay_external(source: str, ref: str, print_: str) -> PostingResult | None:
    """The original result of (source, externalRef), IDEMPOTENCY_CONFLICT if it asked for
    something else, None if the ref is unused."""
    entry = await LedgerEntry.get_or_none(source=source, external_ref=ref)
    if entry is None:
        return None
    if entry.fingerprint != print_:
        raise _conflict()
    return await _result(entry, replayed=True)


def _conflict() -> DomainError:
    return DomainError(
        "IDEMPOTENCY_CONFLICT", "this externalRef was already used for a different posting", ("input", "externalRef")
    )


async def _member_by_card(card: str) -> Member:
    member = await Member.get_or_none(card_number=card)
    if member is None:
        raise not_found("no member with this card number", "input", "cardNumber")
    return member


async def _post_once(source: str, ref: str, print_: str, post) -> PostingResult:
    """Run `post()` (one transaction) unless (source, ref) was posted already. The unique
    (source, external_ref) index decides, so a new posting looks nothing up first: a
    duplicate (sequential or concurrent) loses on the index, its transaction rolls back
    and the winner is replayed; a refusal (the claims window, the card, the member's
    status, a cap) of a retry of an accepted posting replays that posting, even on a
    later day or after a suspension."""
    try:
        return await post()
    except (IntegrityError, DomainError):
        if (replay := await _replay_external(source, ref, print_)) is not None:
            return replay
        raise


# ---- flightAccrue -------------------------------------------------------------------


async def flight_accrue(
    caller: Caller, card_number: str, flight: FlightDetails, external_ref: str, *, rules: Rules, today: date,
    claimed_on: date | None = None,
) -> PostingResult:
    """Credit a flown segment (source AIRLINE): a FLIGHT entry, a TIER_BONUS entry at the
    tier held before the posting when it is above 0, and an upgrade when the window's
    totals (including this flight) reach a higher tier. ``claimed_on``: the day a member
    claimed the flight (loyalty.claims), on which its claims window is judged instead of
    today."""
    _check_role(caller, Role.AIRLINE, Role.ADMIN)
    # Format checks first (no database); the claims window, the card and the member's
    # status apply to new postings only, after the externalRef lookup: a retry of an
    # accepted flight replays even on a later day or after a suspension.
    card, ref, clean, earning, print_ = _flight_posting(card_number, flight, external_ref, rules)

    async def post() -> PostingResult:
        engine.check_claim_date(rules, clean.date, claimed_on or today, ("input", "flight", "date"))
        return await _post_flight(caller, card, clean, earning, ref, print_, rules, today)

    return await _post_once(AIRLINE_SOURCE, ref, print_, post)


def _flight_posting(
    card_number: str, flight: FlightDetails, external_ref: str, rules: Rules
) -> tuple[str, str, FlightDetails, engine.FlightEarning, str]:
    """(card, externalRef, clean flight, earning, fingerprint) of a flight posting, or
    INVALID: the checks that need no database."""
    card = _card_number(card_number)
    ref = _external_ref(external_ref)
    clean, earning = _flight_format(flight, rules)
    return card, ref, clean, earning, book.flight_fingerprint(card, clean)


# The member's UPDATE of a flight, by dialect: the flight's miles plus the bonus of the
# tier held (one parameter per tier), the qualifying activity added to the retention
# totals when validUntil's retention window holds the flight, for an ACTIVE member only.
# On SQLite it also returns the last ledger entry id handed out (the entries are then
# written with the ids that follow: the UPDATE took the database's write lock, so no
# other writer can take them first) and, below a tier (a parameter), the window's
# qualifying totals before this flight: the two statements that would read them.
_FLIGHT_UPDATE: dict[str, str] = {}
_WINDOW_SUM = (
    'CASE WHEN "tier" < ? THEN (SELECT COALESCE(SUM("{column}"), 0) FROM "ledger_entry" '
    'WHERE "member_id" = "member"."id" AND "activity_date" >= ? AND "activity_date" <= ?) END'
)


def _flight_update_sql(connection: BaseDBAsyncClient) -> str:
    dialect = connection.capabilities.dialect
    sql = _FLIGHT_UPDATE.get(dialect)
    if sql is None:
        bonus = " ".join(f"WHEN {int(tier)} THEN ?" for tier in Tier)
        retained = 'CASE WHEN "tier_valid_until" BETWEEN ? AND ? THEN ? ELSE 0 END'
        sql = (
            f'UPDATE "member" SET "redeemable_miles" = "redeemable_miles" + ? + CASE "tier" {bonus} ELSE 0 END, '
            f'"retention_miles" = "retention_miles" + {retained}, '
            f'"retention_segments" = "retention_segments" + {retained} '
            'WHERE "card_number" = ? AND "status" = ? RETURNING *'
        )
        if dialect == "sqlite":
            sql += (
                # What AUTOINCREMENT would hand out next, less one: the larger of the two.
                ', MAX(COALESCE((SELECT "seq" FROM "sqlite_sequence" WHERE "name" = \'ledger_entry\'), 0), '
                'COALESCE((SELECT MAX("id") FROM "ledger_entry"), 0)) AS "_last_entry", '
                + _WINDOW_SUM.format(column="qualifying_miles") + ' AS "_window_miles", '
                + _WINDOW_SUM.format(column="qualifying_segments") + ' AS "_window_segments"'
            )
        sql = _FLIGHT_UPDATE[dialect] = numbered(connection, sql)
    return sql


# The columns a FLIGHT or TIER_BONUS entry is written with (the others take their defaults).
_ENTRY_COLUMNS = (
    "member_id", "kind", "activity_date", "posted_at", "qualifying_miles", "qualifying_segments", "redeemable_miles",
    "source", "external_ref", "fingerprint", "description", "carrier", "flight_number", "origin", "destination",
    "distance_km", "fare_class", "bonus_for_id",
)


@cache
def _entry_insert(with_id: bool = False) -> BulkInsert:
    """Built on first use: the models' field maps exist once Tortoise is initialised."""
    return BulkInsert(LedgerEntry, ("id", *_ENTRY_COLUMNS) if with_id else _ENTRY_COLUMNS)


def entry_row(entry_id: int | None, member_id: int, entry: Entry, posted_at: datetime, bonus_for_id: int | None) -> tuple:
    """The ("id", *_ENTRY_COLUMNS) values of a book's entry (loyalty.book): what every
    writer of FLIGHT, TIER_BONUS, PARTNER, REDEMPTION, EXPIRY, REVERSAL and ADJUSTMENT
    entries writes (a reversal adds reverses_id: entry_values)."""
    flight = entry.flight
    return (
        entry_id, member_id, entry.kind, entry.activity_date, posted_at, entry.qualifying_miles,
        entry.qualifying_segments, entry.redeemable_miles, entry.source, entry.external_ref, entry.fingerprint,
        entry.description,
        *((flight.carrier, flight.flight_number, flight.origin, flight.destination, flight.distance_km,
           flight.fare_class) if flight is not None else (None,) * 6),
        bonus_for_id,
    )


def entry_values(
    member_id: int, entry: Entry, bonus_for_id: int | None = None, reverses_id: int | None = None
) -> dict[str, Any]:
    """The _ENTRY_COLUMNS of a book's entry, posted now; with `reverses_id` (a REVERSAL:
    the entry it reverses) that column too."""
    values = dict(zip(_ENTRY_COLUMNS, entry_row(None, member_id, entry, datetime.now(timezone.utc), bonus_for_id)[1:]))
    if reverses_id is not None:
        values["reverses_id"] = reverses_id
    return values


async def _write_flight_postgres(
    connection: BaseDBAsyncClient, flight: dict[str, Any], bonus: dict[str, Any] | None,
    credits: list[tuple[int, int]], expires_on: date, window: tuple[date, date],
) -> tuple[LedgerEntry, LedgerEntry | None, tuple[int, int]]:
    """PostgreSQL: the FLIGHT entry, the TIER_BONUS entry pointing at it, their lots
    (credits: (amount, balance after) of each) and the window's totals WITHOUT them, in
    one round trip (data-modifying CTEs; the final SELECT sees the snapshot from before
    them, taken after the member's row lock, so every earlier posting is in it)."""
    insert = _entry_insert()
    columns = ", ".join(f'"{column}"' for column in insert._columns)
    pointer = insert._columns.index("bonus_for_id")
    params: list[Any] = []

    def row(values: dict[str, Any], bonus_for: str | None = None) -> str:
        (converted,) = insert.values([tuple(values.values())])
        marks = []
        for index, value in enumerate(converted):
            if index == pointer and bonus_for is not None:
                marks.append(bonus_for)
            else:
                params.append(value)
                marks.append("?")
        return "(" + ", ".join(marks) + ")"

    sql = f'WITH f AS (INSERT INTO "ledger_entry" ({columns}) VALUES {row(flight)} RETURNING "id")'
    if bonus is not None:
        sql += f', b AS (INSERT INTO "ledger_entry" ({columns}) VALUES {row(bonus, "(SELECT id FROM f)")} RETURNING "id")'
    # lots.lot_rows' rows, their entry ids taken from the CTEs above.
    lot_rows = lots.lot_rows(
        flight["member_id"], [(name, amount, after) for name, (amount, after) in zip(("f", "b"), credits)], expires_on)
    if lot_rows:
        lot_columns = ", ".join(f'"{column}"' for column in lots.LOT_COLUMNS)
        marks = ", ".join("?" for _ in lots.LOT_COLUMNS[1:])
        sql += (f', l AS (INSERT INTO "credit_lot" ({lot_columns}) VALUES '
                + ", ".join(f"((SELECT id FROM {name}), {marks})" for name, *_ in lot_rows) + ")")
        params += [value for _, *values in lot_rows for value in values]
    sql += (
        ' SELECT (SELECT id FROM f) AS flight, ' + ("(SELECT id FROM b)" if bonus is not None else "NULL") + ' AS bonus, '
        'COALESCE(SUM("qualifying_miles"), 0) AS miles, COALESCE(SUM("qualifying_segments"), 0) AS segments '
        'FROM "ledger_entry" WHERE "member_id" = ? AND "activity_date" >= ? AND "activity_date" <= ?'
    )
    params += [flight["member_id"], *window]
    (result,) = await connection.execute_query_dict(numbered(connection, sql), params)
    entry = LedgerEntry(id=result["flight"], **flight)
    bonus_entry = None
    if bonus is not None:
        bonus_entry = LedgerEntry(id=result["bonus"], **{**bonus, "bonus_for_id": entry.id})
    return entry, bonus_entry, (int(result["miles"]), int(result["segments"]))


def _write_flight_sqlite(
    sqlite: Any, log: Callable[[str, Any], None], connection: BaseDBAsyncClient, parameters: list[Any],
    entries: Callable[[int, int, int], tuple[dict[str, Any], dict[str, Any] | None, int]],
    redeemable: int, expires_on: date,
) -> tuple[tuple[str, ...], tuple, int, dict[str, Any], dict[str, Any] | None, tuple[int, int]] | None:
    """SQLite, on the driver's thread (members.driver: one hand-off for the three
    statements): the member's UPDATE ... RETURNING, then the FLIGHT and TIER_BONUS
    entries with the ids after the last one handed out (the UPDATE holds the database's
    write lock), then their lots. Returns the member's columns and row, the FLIGHT
    entry's id, the two entries' values and the window's totals before the flight; None
    (nothing written) when no ACTIVE member has the card."""
    sql = _flight_update_sql(connection)
    log(sql, parameters)
    cursor = sqlite.execute(sql, parameters)
    rows = cursor.fetchall()
    if not rows:
        return None
    names = tuple(column[0] for column in cursor.description)
    values = tuple(rows[0])
    member = dict(zip(names, values))
    member_id, balance = member["id"], member["redeemable_miles"]
    flight_values, bonus_values, bonus = entries(member_id, member["tier"], balance)
    entry_id = int(member["_last_entry"] or 0) + 1
    entry_rows = [(entry_id, *flight_values.values())]
    credits = [(entry_id, redeemable, balance - bonus)]
    if bonus_values is not None:
        bonus_values = {**bonus_values, "bonus_for_id": entry_id}
        entry_rows.append((entry_id + 1, *bonus_values.values()))
        credits.append((entry_id + 1, bonus, balance))
    lot_rows = lots.lot_rows(member_id, credits, expires_on)
    for insert, inserted in ((_entry_insert(with_id=True), entry_rows), (lots.lot_insert(), lot_rows)):
        if inserted:
            sql, insert_parameters = insert.statement(connection, inserted)
            log(sql, insert_parameters)
            sqlite.execute(sql, insert_parameters)
    extra = len(names) - 3  # _last_entry, _window_miles, _window_segments: not the member's
    window = (int(member["_window_miles"] or 0), int(member["_window_segments"] or 0))
    return names[:extra], values[:extra], entry_id, flight_values, bonus_values, window


async def _not_posted(connection: BaseDBAsyncClient, card: str) -> DomainError:
    """Why a flight's UPDATE of an ACTIVE member with this card found none."""
    member = await Member.get_or_none(card_number=card).using_db(connection)
    if member is None:
        return not_found("no member with this card number", "input", "cardNumber")
    return _not_active(member, "input", "cardNumber")


async def _post_flight(
    caller: Caller, card: str, flight: FlightDetails, earning: engine.FlightEarning,
    ref: str, print_: str, rules: Rules, today: date,
) -> PostingResult:
    """A new flight in a transaction (_write_flight): its own, or with group commit its
    savepoint of a batch's (members.group_commit)."""
    entry, member, event = await group_commit.write(
        lambda connection: _write_flight(connection, caller.actor, card, flight, earning, ref, print_, rules, today),
        driver_first=True)  # on SQLite _write_flight's first statement is its run_sqlite
    return PostingResult(entry=entry, member=member, tier_event=event)


async def _write_flight(
    connection: BaseDBAsyncClient, actor: str, card: str, flight: FlightDetails, earning: engine.FlightEarning,
    ref: str, print_: str, rules: Rules, today: date,
) -> tuple[LedgerEntry, Member, TierEvent | None]:
    """The posting of a new flight on ``connection`` (the caller's transaction: the API's
    own, a savepoint of a group commit's batch, or an import batch's savepoint), in three
    statements without an upgrade: the member's UPDATE ... RETURNING (balance with the
    bonus, retention totals; the first statement: it takes the row lock, see the module
    docstring; on SQLite it also returns the window's totals and the next entry ids), the
    FLIGHT and TIER_BONUS entries, and both lots (on PostgreSQL the last two and the
    window's totals in one statement: _write_flight_postgres). An upgrade writes its event
    and recomputes the member's derived state (members_changed) in the same transaction."""
    expires_on = cal.credit_expiry(flight.date, rules.credit_validity_months)
    redeemable, qualifying, segments = earning.redeemable_miles, earning.qualifying_miles, earning.segments_hundredths
    first, last = retention_windows_containing(flight.date, rules)
    bonuses = {tier: engine.tier_bonus(rules, tier.name, redeemable) for tier in Tier}
    window = cal.window(flight.date, rules.window_months)
    postgres = connection.capabilities.dialect == "postgres"
    parameters = [redeemable, *bonuses.values(), first, last, qualifying, first, last, segments,
                  card, MemberStatus.ACTIVE.value]

    def entries(member_id: int, tier: int, balance: int) -> tuple[dict[str, Any], dict[str, Any] | None, int]:
        """The FLIGHT entry's values, the TIER_BONUS entry's (None without a bonus) and the
        bonus, for the member's row after its UPDATE (id, tier held before, balance):
        loyalty.book's entries, as every other writer of a flight writes them."""
        tier_before = Tier(tier)
        flight_values = entry_values(member_id, book.flight_entry(flight, earning, ref, print_))
        # The bonus is earned at the tier held BEFORE this posting.
        bonus_row = book.bonus_entry(rules, tier_before.name, flight, redeemable)
        bonus_values = entry_values(member_id, bonus_row) if bonus_row is not None else None
        return flight_values, bonus_values, bonuses[tier_before]

    if postgres:
        rows = await connection.execute_query_dict(_flight_update_sql(connection), parameters)
        if not rows:
            raise await _not_posted(connection, card)
        member = Member._init_from_db(**rows[0])
        flight_values, bonus_values, bonus = entries(member.id, member.tier, member.redeemable_miles)
        credits = [(redeemable, member.redeemable_miles - bonus), (bonus, member.redeemable_miles)]
        entry, _, before = await _write_flight_postgres(
            connection, flight_values, bonus_values, credits, expires_on, window)
    else:
        # SQLite: the window's totals below the top tier (an upgrade is possible), when
        # the flight qualifies at all.
        below = len(TIERS) - 1 if qualifying or segments else 0
        parameters += (below, *(day.isoformat() for day in window)) * 2
        posted = await driver.run_sqlite(connection, lambda sqlite, log: _write_flight_sqlite(
            sqlite, log, connection, parameters, entries, redeemable, expires_on))
        if posted is None:
            raise await _not_posted(connection, card)
        columns, values, entry_id, flight_values, bonus_values, before = posted
        member = model_from_row(Member, columns, values)
        entry = LedgerEntry(id=entry_id, **flight_values)
    tier_before = Tier(member.tier)  # the UPDATE changed the balance and retention totals only
    totals = (before[0] + qualifying, before[1] + segments)

    event = None
    if not (qualifying or segments):
        return entry, member, None
    if rules.rank(tier_before.name) < len(TIERS) - 1:  # an upgrade is possible
        miles, window_segments = totals
        change = book.upgrade(rules, tier_before.name, member.tier_valid_until, miles, window_segments, flight.date)
        if change is not None:
            event = await record_tier_change(
                connection, member, to_tier=Tier[change.to_tier], reason=change.reason,
                since=change.since, valid_until=change.valid_until, actor=actor, cause=entry,
                recorded_on=today, effective_at=change.effective_at,
            )
            await members_changed(connection, [member.id], rules, today)
            member = await Member.get(id=member.id).using_db(connection)
    if event is None:
        before = copy(member)
        if member.tier_valid_until is not None and first <= member.tier_valid_until <= last:
            before.retention_miles -= qualifying
            before.retention_segments -= segments
        await activity_added(connection, before, member, rules, today)
    return entry, member, event




# ---- partnerAccrue ------------------------------------------------------------------


async def _partner_credited(source: str) -> int:
    """The partner's PARTNER credits of the last 24 hours (the (source, posted_at) index)."""
    since = datetime.now(timezone.utc) - timedelta(hours=24)
    credited = await (
        LedgerEntry.filter(source=source, posted_at__gte=since, kind=LedgerEntryKind.PARTNER)
        .annotate(total=Coalesce(Sum("redeemable_miles"), 0)).first().values_list("total", flat=True)
    )
    return int(credited or 0)


def _check_partner_total(source: str, credited: int, miles: int, rules: Rules) -> None:
    if credited + miles > rules.partner_daily_miles_cap:
        raise DomainError(
            "LIMIT_EXCEEDED",
            f"partner {source} may credit at most {rules.partner_daily_miles_cap:,} miles in 24 hours",
            ("input", "miles"),
        )


async def _check_partner_cap(source: str, miles: int, rules: Rules) -> None:
    """LIMIT_EXCEEDED when the partner's credits of the last 24 hours and these miles
    together pass rules.partner_daily_miles_cap. A velocity limit (concurrent postings
    may pass it by one posting each)."""
    if source == ADMIN_SOURCE:
        return
    _check_partner_total(source, await _partner_credited(source), miles, rules)


def _partner_source(caller: Caller) -> str:
    """The source a partner credit is posted under: the partner's own code; "ADMIN" for an admin."""
    _check_role(caller, Role.PARTNER, Role.ADMIN)
    if caller.role is Role.PARTNER:
        if not caller.scope:
            raise ForbiddenError("a partner token must name its partner code")
        return caller.scope
    return ADMIN_SOURCE


@dataclass(frozen=True)
class _PartnerCredit:
    """A partner credit that passed the checks needing no database."""

    card: str
    name_key: str
    miles: int
    activity_date: date
    text: str | None
    ref: str
    print_: str


def _partner_credit(
    card_number: str, family_name: str, miles: int, activity_date: date, description: str | None, external_ref: str
) -> _PartnerCredit:
    card = _card_number(card_number)
    name_key = family_name_key(family_name)
    if not name_key:
        raise invalid("familyName is required", "input", "familyName")
    if not _whole(miles) or not 1 <= miles <= MAX_PARTNER_MILES:
        raise invalid(f"miles must be a whole number from 1 to {MAX_PARTNER_MILES:,}", "input", "miles")
    if not isinstance(activity_date, date):
        raise invalid("activityDate must be a calendar date", "input", "activityDate")
    text = _text(description, MAX_DESCRIPTION, "input", "description", required=False)
    ref = _external_ref(external_ref)
    print_ = book.partner_fingerprint(card, name_key, miles, activity_date, text)
    return _PartnerCredit(card, name_key, miles, activity_date, text, ref, print_)


def _check_partner_member(member: Member, credit: _PartnerCredit) -> None:
    """NAME_MISMATCH or MEMBER_NOT_ACTIVE for the card's member."""
    if family_name_key(member.family_name) != credit.name_key:
        raise DomainError("NAME_MISMATCH", "the family name does not match the card", ("input", "familyName"))
    if member.status is not MemberStatus.ACTIVE:
        raise _not_active(member, "input", "cardNumber")


async def _write_partner(
    connection: BaseDBAsyncClient, member_id: int, source: str, credit: _PartnerCredit, rules: Rules
) -> LedgerEntry:
    """A partner credit's entry and lot on `connection` (the caller's transaction)."""
    expires_on = cal.credit_expiry(credit.activity_date, rules.credit_validity_months)
    balance = await lots.change_balance(connection, member_id, credit.miles, require_active=True)
    if balance is None:
        raise _not_active(await Member.get(id=member_id).using_db(connection), "input", "cardNumber")
    entry = await LedgerEntry.create(**entry_values(member_id, book.partner_entry(
        source, credit.miles, credit.activity_date, credit.text, credit.ref, credit.print_)), using_db=connection)
    await lots.add_lot(connection, entry, credit.miles, balance, expires_on)
    return entry


async def partner_accrue(
    caller: Caller,
    card_number: str,
    family_name: str,
    miles: int,
    activity_date: date,
    description: str | None,
    external_ref: str,
    *,
    rules: Rules,
    today: date,
) -> PostingResult:
    """Credit partner miles: a PARTNER entry, redeemable only (no qualifying miles, no
    bonus, no tier change). Source: the partner's own code; "ADMIN" for an admin."""
    source = _partner_source(caller)
    credit = _partner_credit(card_number, family_name, miles, activity_date, description, external_ref)

    async def post() -> PostingResult:
        engine.check_claim_date(rules, credit.activity_date, today, ("input", "activityDate"))
        member = await _member_by_card(credit.card)
        _check_partner_member(member, credit)
        await _check_partner_cap(source, credit.miles, rules)

        async def work(connection: BaseDBAsyncClient) -> PostingResult:
            entry = await _write_partner(connection, member.id, source, credit, rules)
            after = await Member.get(id=member.id).using_db(connection)
            return PostingResult(entry=entry, member=after, tier_event=None)

        return await group_commit.write(work)

    return await _post_once(source, credit.ref, credit.print_, post)


# ---- milesRedeem --------------------------------------------------------------------


async def redeem(
    caller: Caller, member_id: str, miles: int, description: str, idempotency_key: str, *, rules: Rules, today: date
) -> PostingResult:
    """Spend redeemable miles, earliest-expiring credits first. A member redeems only
    their own miles (another member is NOT_FOUND); an admin any member's."""
    _check_role(caller, Role.MEMBER, Role.ADMIN)
    if not _whole(miles) or not 1 <= miles <= MAX_REDEEM_MILES:
        raise invalid("miles must be a positive whole number", "input", "miles")
    text = _text(description, MAX_DESCRIPTION, "input", "description", required=True)
    member = await visible_member(caller, member_id, "input", "memberId")
    source = MEMBER_SOURCE if caller.role is Role.MEMBER else ADMIN_SOURCE

    async def work(connection: BaseDBAsyncClient) -> tuple[PostingResult, int]:
        # First statement: the conditional debit (locks the row; never below zero).
        balance = await lots.debit_if_covered(connection, member.id, miles)
        if balance is None:
            current = await Member.get(id=member.id).using_db(connection)
            if current.status is not MemberStatus.ACTIVE:
                raise _not_active(current, "input", "memberId")
            raise DomainError(
                "INSUFFICIENT_MILES", f"{miles:,} miles requested, {max(current.redeemable_miles, 0):,} redeemable",
                ("input", "miles"),
            )
        entry = await LedgerEntry.create(
            **entry_values(member.id, book.redemption_entry(source, miles, today, text)), using_db=connection)
        await lots.take_from_lots(connection, member.id, miles)
        return await _result(entry, replayed=False, connection=connection), entry.id

    async def load(entry_id: int) -> PostingResult:
        return await _result(await LedgerEntry.get(id=entry_id), replayed=True)

    return await run_once(
        caller=caller.key, key=idempotency_key, operation="milesRedeem",
        content={"memberId": member.id, "miles": miles, "description": text}, work=work, load=load, grouped=True,
    )


# ---- ledgerEntryReverse -------------------------------------------------------------


def _already_reversed() -> DomainError:
    return DomainError("ALREADY_REVERSED", "this entry has been reversed already", ("input", "entryId"))


async def reverse(
    caller: Caller, entry_id: str, reason: str, idempotency_key: str, *, rules: Rules, today: date
) -> PostingResult:
    """Reverse an entry at most once: a REVERSAL entry negating it (and, for a flight with
    a bonus, a second one negating the bonus), on the original's activity date. The
    result's entry is the reversal of the original (the flight's)."""
    _check_role(caller, Role.AIRLINE, Role.ADMIN)
    text = _text(reason, MAX_REASON, "input", "reason", required=True)
    pk = database_id(entry_id, BIGINT_IDS)
    if pk is None:
        raise not_found("no such ledger entry", "input", "entryId")
    original = await LedgerEntry.get_or_none(id=pk)
    if original is None:
        raise not_found("no such ledger entry", "input", "entryId")
    if caller.role is Role.AIRLINE and not (
        original.kind is LedgerEntryKind.FLIGHT and original.source == AIRLINE_SOURCE
    ):
        raise ForbiddenError("the airline may reverse only its own flight entries")
    if original.kind is LedgerEntryKind.TIER_BONUS:
        if await LedgerEntry.filter(reverses_id=original.id).exists():
            raise _already_reversed()
        raise invalid("a tier bonus is reversed only with its flight: reverse the flight", "input", "entryId")
    if original.kind is LedgerEntryKind.REVERSAL:
        raise invalid("a reversal cannot be reversed", "input", "entryId")
    # Entries are immutable and a bonus is posted in its flight's transaction, so it is
    # safe to read it before ours.
    bonus = await LedgerEntry.get_or_none(bonus_for_id=original.id)
    parts = [original] + ([bonus] if bonus is not None else [])
    source = AIRLINE_SOURCE if caller.role is Role.AIRLINE else ADMIN_SOURCE
    member_id = original.member_id

    async def work(connection: BaseDBAsyncClient) -> tuple[PostingResult, int]:
        # First statement: the balance change, which locks the member's row. Reversal is
        # allowed whatever the member's status (it corrects the ledger) and may take the
        # balance below zero, so the update is unconditional.
        delta = -sum(part.redeemable_miles for part in parts)
        balance = await lots.change_balance(connection, member_id, delta)
        if await LedgerEntry.filter(reverses_id__in=[p.id for p in parts]).using_db(connection).exists():
            raise _already_reversed()
        reversals = [
            await LedgerEntry.create(
                **entry_values(member_id, book.reversal_entry(part, source, text), reverses_id=part.id),
                using_db=connection,
            )
            for part in parts
        ]
        if delta < 0:
            # Reversing credits: each takes from its own lot first, then FIFO from the
            # others; what no lot covers is the (negative) balance.
            for part in parts:
                await lots.take_from_lots(connection, member_id, part.redeemable_miles, own_entry_ids=(part.id,))
        elif delta > 0:
            # Reversing a debit (redemption, expiry) gives the miles back as a new credit,
            # expiring as a credit of the original's activity date would.
            expires_on = cal.credit_expiry(original.activity_date, rules.credit_validity_months)
            await lots.add_lot(connection, reversals[0], delta, balance, expires_on)

        event = None
        if original.qualifying_miles > 0 or original.qualifying_segments > 0:
            member = await Member.get(id=member_id).using_db(connection)
            decision = await _tier_without(connection, member, original, rules)
            if decision is not None and Tier[decision.tier] != member.tier:
                event = await record_tier_change(
                    connection, member, to_tier=Tier[decision.tier], reason=TierChangeReason.REVERSAL,
                    since=decision.since, valid_until=decision.valid_until, actor=caller.actor,
                    cause=reversals[0], note=book.reversal_note(original.id, text), recorded_on=today,
                )
            await members_changed(connection, [member_id], rules, today)
        member = await Member.get(id=member_id).using_db(connection)
        return PostingResult(entry=reversals[0], member=member, tier_event=event), reversals[0].id

    async def load(reversal_id: int) -> PostingResult:
        return await _result(await LedgerEntry.get(id=reversal_id), replayed=True)

    try:
        return await run_once(
            caller=caller.key, key=idempotency_key, operation="ledgerEntryReverse",
            content={"entryId": pk, "reason": text}, work=work, load=load,
        )
    except IntegrityError:
        # A concurrent reversal of the same entry won the unique `reverses` index.
        if await LedgerEntry.filter(reverses_id__in=[p.id for p in parts]).exists():
            raise _already_reversed() from None
        raise


@dataclass(frozen=True)
class _TierStep:
    """One step of a member's effective tier history (see _effective_history)."""

    upgrade: bool
    from_tier: Tier
    to_tier: Tier
    since: date
    valid_until: date | None


def _effective_history(events: list[TierEvent]) -> list[_TierStep]:
    """The member's tier history, oldest first, with earlier reversals folded in.

    A REVERSAL event removes the upgrades it undid. If it restored the state before them,
    that state is the top of the history again; if it replayed an upgrade to a tier in
    between (since = that upgrade's day), it stands in for an UPGRADE to that tier. So a
    second reversal still finds the upgrade the member's current tier came from.
    """
    steps: list[_TierStep] = []
    for event in events:
        if event.reason is TierChangeReason.REVERSAL:
            while steps and steps[-1].upgrade and steps[-1].to_tier > event.to_tier:
                steps.pop()
            below = steps[-1].to_tier if steps else Tier.STANDARD
            if below != event.to_tier:
                steps.append(_TierStep(below < event.to_tier, below, event.to_tier, event.since, event.valid_until))
        else:
            # A move up by a rules change (judged as an upgrade on that day's window) is
            # reconsidered by a reversal as an upgrade is.
            upgrade = event.reason in (TierChangeReason.UPGRADE, TierChangeReason.RULE_CHANGE)
            steps.append(_TierStep(upgrade, event.from_tier, event.to_tier, event.since, event.valid_until))
    return steps


async def _tier_without(
    connection: BaseDBAsyncClient, member: Member, reversed_entry: LedgerEntry, rules: Rules
) -> engine.TierDecision | None:
    """The tier the rules give once `reversed_entry` (already cancelled by its REVERSAL in
    this transaction) no longer counts, or None when the current tier stands.

    Only a tier that came from an UPGRADE whose window contains the reversed entry is
    reconsidered (RULES.md "Reversal"); engine.tier_after_reversal decides with the tier
    state held before that upgrade. When it restores that prior tier and the prior tier
    itself came from an UPGRADE fed by the same entry (STANDARD -> SILVER -> GOLD, the
    entry in both windows), the walk continues down the history, so the member lands
    where the rules put them without the entry. One decision is returned: the caller
    writes a single REVERSAL event from the current tier to the final one.
    """
    events = await TierEvent.filter(member_id=member.id).using_db(connection).order_by("id")
    steps = _effective_history(list(events))
    current = member.tier
    decision: engine.TierDecision | None = None
    for index in range(len(steps) - 1, -1, -1):
        step = steps[index]
        if not step.upgrade or step.to_tier != current:
            break
        start, end = cal.window(step.since, rules.window_months)
        if not start <= reversed_entry.activity_date <= end:
            break
        miles, segments = await window_totals(member.id, start, end, connection=connection)
        before = steps[index - 1] if index > 0 else None
        if before is not None and before.to_tier == step.from_tier:
            prior_since, prior_valid_until = before.since, before.valid_until
        else:
            # Nothing before this upgrade: the enrolment tier, held since enrolment. The
            # enrolment timestamp is UTC; its date is close enough for a STANDARD "since".
            prior_since, prior_valid_until = member.enrolled_at.date(), None
        outcome = engine.tier_after_reversal(
            rules, current_tier=current.name, upgraded_on=step.since, prior_tier=step.from_tier.name,
            prior_since=prior_since, prior_valid_until=prior_valid_until,
            window_miles=miles, window_segments=segments,
        )
        if outcome is None:
            break
        decision = outcome
        if Tier[outcome.tier] != step.from_tier:
            break  # replayed to a tier the totals still earn: that one holds
        current = step.from_tier
    return decision


# ---- bulk posting (`loyalty import activities`) ---------------------------------------


@dataclass(frozen=True)
class FlightRow:
    """An import row: a flight posted as the airline (flightAccrue)."""

    card_number: str
    flight: FlightDetails
    external_ref: str


@dataclass(frozen=True)
class PartnerRow:
    """An import row: partner miles credited under the partner's registered code
    (partnerAccrue). `miles` may be the error that rejects a value read as no number: it
    is reported after the partner is checked, as the service checks its caller first."""

    partner_code: str
    card_number: str
    family_name: str
    miles: int | DomainError
    activity_date: date
    description: str | None
    external_ref: str


@dataclass(frozen=True)
class _ReadyFlight:
    card: str
    ref: str
    flight: FlightDetails
    earning: engine.FlightEarning
    print_: str


@dataclass(frozen=True)
class _ReadyPartner:
    row: PartnerRow
    credit: _PartnerCredit | DomainError


ImportRow = FlightRow | PartnerRow | DomainError
# A row's outcome: True posted, False already posted (same externalRef, same content), or why rejected.
ActivityOutcome = bool | DomainError | ForbiddenError


class ActivityImport:
    """Posting of `loyalty import activities` rows, a batch per transaction and a
    savepoint per row.

    Each row is checked and posted as flight_accrue / partner_accrue would (the same
    checks, the same writes: _write_flight and _write_partner, each keeping the member's
    derived state as the API posting does), with the same outcome as posting the rows
    one by one in file order. `prepare(rows)` makes the checks that need
    no database; `write(prepared)` looks up the batch's externalRefs and cards in one query
    each (before its transaction, so that on SQLite the transaction's first statement is
    a write), then posts each row in a savepoint of the batch's transaction, so that a
    row failing midway (a member suspended meanwhile, a concurrent posting of its
    externalRef) rolls back only itself."""

    def __init__(
        self, airline: Caller, partner_caller: Callable[[str], Awaitable[Caller]], *, rules: Rules, today: date
    ) -> None:
        self.airline = airline
        self.partner_caller = partner_caller
        self.rules = rules
        self.today = today

    def prepare(self, rows: Sequence[ImportRow]) -> list[_ReadyFlight | _ReadyPartner | DomainError | ForbiddenError]:
        prepared: list[_ReadyFlight | _ReadyPartner | DomainError | ForbiddenError] = []
        for row in rows:
            try:
                if isinstance(row, FlightRow):
                    _check_role(self.airline, Role.AIRLINE, Role.ADMIN)
                    prepared.append(_ReadyFlight(*_flight_posting(row.card_number, row.flight, row.external_ref, self.rules)))
                elif isinstance(row, PartnerRow):
                    try:
                        if isinstance(row.miles, DomainError):
                            raise row.miles
                        credit: _PartnerCredit | DomainError = _partner_credit(
                            row.card_number, row.family_name, row.miles, row.activity_date, row.description,
                            row.external_ref)
                    except DomainError as error:
                        credit = error
                    prepared.append(_ReadyPartner(row, credit))
                else:
                    prepared.append(row)
            except (DomainError, ForbiddenError) as error:
                prepared.append(error)
        return prepared

    async def write(self, prepared: Sequence[_ReadyFlight | _ReadyPartner | DomainError | ForbiddenError]) -> list[ActivityOutcome]:
        # Partner rows: the partner first (FORBIDDEN), then the row's own checks.
        postings: list[tuple[str, _ReadyFlight | _PartnerCredit] | DomainError | ForbiddenError] = []
        for row in prepared:
            if isinstance(row, _ReadyFlight):
                postings.append((AIRLINE_SOURCE, row))
            elif isinstance(row, _ReadyPartner):
                try:
                    source = _partner_source(await self.partner_caller(row.row.partner_code))
                    if isinstance(row.credit, DomainError):
                        raise row.credit
                    postings.append((source, row.credit))
                except (DomainError, ForbiddenError) as error:
                    postings.append(error)
            else:
                postings.append(row)
        ready = [posting for posting in postings if isinstance(posting, tuple)]
        if not ready:
            return list(postings)  # type: ignore[arg-type]
        posted = {
            (source, ref): print_ for source, ref, print_ in await select_in(
                default_connection(), LedgerEntry, ["source", "external_ref", "fingerprint"], "external_ref",
                {posting.ref for _, posting in ready})
        }
        members = {m.card_number: m for m in await Member.filter(card_number__in=list({p.card for _, p in ready}))}
        credited = {source: await _partner_credited(source)
                    for source in {source for source, _ in ready} - {AIRLINE_SOURCE, ADMIN_SOURCE}}
        outcomes: list[ActivityOutcome] = []
        async with in_transaction() as connection:
            for posting in postings:
                if not isinstance(posting, tuple):
                    outcomes.append(posting)
                    continue
                source, item = posting
                try:
                    outcomes.append(await self._post(connection, source, item, posted, members, credited))
                except (DomainError, ForbiddenError) as error:
                    outcomes.append(error)
        return outcomes

    async def _post(
        self, connection: BaseDBAsyncClient, source: str, item: _ReadyFlight | _PartnerCredit,
        posted: dict[tuple[str, str], str], members: dict[str, Member], credited: dict[str, int],
    ) -> bool:
        """Post one row in a savepoint: True, or False when its externalRef was posted with
        the same content (IDEMPOTENCY_CONFLICT with other content)."""
        if (source, item.ref) in posted:
            if posted[(source, item.ref)] != item.print_:
                raise _conflict()
            return False
        flight = isinstance(item, _ReadyFlight)
        if flight:
            engine.check_claim_date(self.rules, item.flight.date, self.today, ("input", "flight", "date"))
        else:
            engine.check_claim_date(self.rules, item.activity_date, self.today, ("input", "activityDate"))
        member = members.get(item.card)
        if member is None:
            raise not_found("no member with this card number", "input", "cardNumber")
        if flight:
            if member.status is not MemberStatus.ACTIVE:
                raise _not_active(member, "input", "cardNumber")
        else:
            _check_partner_member(member, item)
            if source in credited:
                _check_partner_total(source, credited[source], item.miles, self.rules)
        try:
            async with in_transaction() as savepoint:
                if flight:
                    await _write_flight(savepoint, self.airline.actor, item.card, item.flight, item.earning,
                                        item.ref, item.print_, self.rules, self.today)
                else:
                    await _write_partner(savepoint, member.id, source, item, self.rules)
        except IntegrityError:
            # A concurrent posting of the same externalRef won the unique index.
            entry = await LedgerEntry.filter(source=source, external_ref=item.ref).using_db(connection).first()
            if entry is None:
                raise
            posted[(source, item.ref)] = entry.fingerprint
            if entry.fingerprint != item.print_:
                raise _conflict() from None
            return False
        posted[(source, item.ref)] = item.print_
        if source in credited:
            credited[source] += item.miles
        return True


def checked_flight(flight: FlightDetails, rules: Rules) -> FlightDetails:
    """The flight normalised, or INVALID on ("input", "flight", ...) as flightAccrue
    checks it (the claims window apart): for claims made before a posting."""
    return _flight_format(flight, rules)[0]


# ---- bulk writing of members' books (`loyalty demo`) -----------------------------------

_EVENT_COLUMNS = (
    "member_id", "card_number", "from_tier", "to_tier", "reason", "effective_at", "since", "valid_until",
    "office_id", "branch_id", "office_code", "branch_code", "cause_id", "actor", "note",
)


@cache
def _event_insert() -> BulkInsert:
    return BulkInsert(TierEvent, _EVENT_COLUMNS)


@dataclass(frozen=True)
class BookOffice:
    """The office a member's tier events are recorded under (as record_tier_change does)."""

    id: int
    code: str
    branch_id: int
    branch_code: str


def book_rows(
    member_id: int, card_number: str, office: BookOffice, member_book: book.MemberBook, first_entry_id: int,
    posted_at: Callable[[date], datetime], entries: list[tuple], lot_rows: list[tuple], events: list[tuple],
) -> int:
    """Append the rows of a member's book (loyalty.book.MemberBook) to entries, lot_rows
    and events, the entries numbered from first_entry_id and posted at posted_at(their
    activity day); the next free entry id. The same row builders as the services'
    (entry_row, lots' LOT_COLUMNS, record_tier_change's columns)."""
    for index, entry in enumerate(member_book.entries):
        bonus_for = None if entry.bonus_for is None else first_entry_id + entry.bonus_for
        entries.append(entry_row(first_entry_id + index, member_id, entry, posted_at(entry.activity_date), bonus_for))
    lot_rows.extend(
        (first_entry_id + index, member_id, expires_on, remaining, expired)
        for index, expires_on, remaining, expired in member_book.lots
    )
    for event in member_book.events:
        change = event.change
        events.append((
            member_id, card_number, Tier[event.from_tier], Tier[change.to_tier], change.reason,
            change.effective_at or datetime.now(timezone.utc), change.since, change.valid_until,
            office.id, office.branch_id, office.code, office.branch_code,
            None if event.cause is None else first_entry_id + event.cause, event.actor, change.note,
        ))
    return first_entry_id + len(member_book.entries)


async def write_book_rows(
    connection: BaseDBAsyncClient, entries: Sequence[tuple] = (), lot_rows: Sequence[tuple] = (),
    events: Sequence[tuple] = (),
) -> None:
    """Write rows of book_rows in the caller's transaction, with the services' bulk
    inserts (multi-row INSERT statements). The caller keeps what the posting services
    keep beside them: the member's row (tier, balance) and PostgreSQL's id sequence."""
    if entries:
        await _entry_insert(with_id=True).run(connection, entries)
    if lot_rows:
        await lots.lot_insert().run(connection, lot_rows)
    if events:
        await _event_insert().run(connection, events)
