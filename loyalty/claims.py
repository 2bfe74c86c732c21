"""Missing-miles claims: a member claims a flight that was not credited; the airline or
an admin approves it (the flight is posted as flightAccrue posts it, with the
externalRef CLAIM-<id>, so approving twice posts once) or rejects it with a reason.

- A claim is the member's own, for a flight within the claims window on the day it is
  made (the window is judged on that day, so a claim made in time is approved in time
  however long the decision takes), checked as flightAccrue checks a flight. A second
  claim for the same flight (carrier, number, date) while one is PENDING or APPROVED is
  DUPLICATE (a partial unique index stands behind the check), as is a claim for a flight
  already credited.
- Known limit: a flight the airline posts under its own externalRef AFTER a claim for it
  was approved is credited a second time (flightAccrue dedupes by externalRef only);
  the airline's late feed should carry the claim's reference, or staff reverse one.
- A decision applies to a PENDING claim; approving an APPROVED claim again returns it
  (a retry), any other change of a decided claim is INVALID_TRANSITION.
- Members list their own claims, the airline and admins every claim (by status),
  newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from tortoise.expressions import Q
from tortoise.exceptions import IntegrityError

from loyalty import engine
from loyalty.ledger import FlightDetails, checked_flight, flight_accrue
from loyalty.models import ClaimStatus, LedgerEntry, LedgerEntryKind, MilesClaim, TierEvent
from loyalty.rules import Rules
from members.access import Caller, Role, require_role
from members.errors import DomainError, ForbiddenError, invalid, not_found
from members.idempotency import run_once
from members.ids import BIGINT_IDS, database_id
from members.enums import MemberStatus
from members.models import Member
from members.paging import Page, newest_first

__all__ = ["Decision", "MAX_REASON", "claims", "decide_claim", "submit_claim"]

MAX_REASON = 300
ORDER = "milesClaims"
DEFAULT_PAGE = 50


async def _credited(member_id: int, flight: FlightDetails, except_ref: str | None = None) -> bool:
    """The member has a FLIGHT entry for this carrier, number and date (other than the
    one posted under ``except_ref``)."""
    entries = LedgerEntry.filter(
        member_id=member_id, kind=LedgerEntryKind.FLIGHT, activity_date=flight.date, carrier=flight.carrier,
        flight_number=flight.flight_number,
    )
    if except_ref is not None:
        entries = entries.exclude(external_ref=except_ref)
    return await entries.exists()


def claim_ref(claim_id: int) -> str:
    """The externalRef an approved claim's flight is posted under."""
    return f"CLAIM-{claim_id}"


async def submit_claim(
    caller: Caller, flight: FlightDetails, *, idempotency_key: str | None = None, rules: Rules, today: date,
    now: datetime,
) -> MilesClaim:
    """A member's claim for one of their flights (see the module docstring)."""
    require_role(caller, (Role.MEMBER,), "a member claims their own flights")
    clean = checked_flight(flight, rules)
    engine.check_claim_date(rules, clean.date, today, ("input", "flight", "date"))
    member_id = database_id(caller.subject)
    member = await Member.get_or_none(id=member_id) if member_id is not None else None
    if member is None:
        raise not_found("no such member", "input")
    if member.status is not MemberStatus.ACTIVE:
        raise DomainError("MEMBER_NOT_ACTIVE", f"the member is {member.status.value}", ("input",))
    same_flight = Q(member_id=member.id, carrier=clean.carrier, flight_number=clean.flight_number, flight_date=clean.date)
    content = {"carrier": clean.carrier, "flightNumber": clean.flight_number, "date": clean.date.isoformat(),
               "origin": clean.origin, "destination": clean.destination, "distanceKm": clean.distance_km,
               "fareClass": clean.fare_class}

    async def work(connection) -> tuple[MilesClaim, int]:
        if await _credited(member.id, clean):
            raise DomainError("DUPLICATE", "this flight is credited already", ("input", "flight"))
        if await MilesClaim.filter(same_flight, status__in=[ClaimStatus.PENDING, ClaimStatus.APPROVED]).using_db(
            connection
        ).exists():
            raise DomainError("DUPLICATE", "this flight is claimed already", ("input", "flight"))
        try:
            claim = await MilesClaim.create(
                member_id=member.id, carrier=clean.carrier, flight_number=clean.flight_number, flight_date=clean.date,
                origin=clean.origin, destination=clean.destination, distance_km=clean.distance_km,
                fare_class=clean.fare_class, submitted_at=now.astimezone(timezone.utc), submitted_on=today,
                using_db=connection,
            )
        except IntegrityError:  # the same flight claimed at the same moment (miles_claim_open_flight)
            raise DomainError("DUPLICATE", "this flight is claimed already", ("input", "flight")) from None
        return claim, claim.id

    async def load(claim_id: int) -> MilesClaim:
        return await MilesClaim.get(id=claim_id)

    return await run_once(
        caller=caller.key, key=idempotency_key, operation="milesClaimSubmit", content=content, work=work, load=load
    )


@dataclass(frozen=True)
class Decision:
    claim: MilesClaim
    tier_event: TierEvent | None = None  # an upgrade the approved flight brought


async def decide_claim(
    caller: Caller, claim_id: str, approve: bool, reason: str | None = None, *, rules: Rules, today: date, now: datetime,
) -> Decision:
    """Approve (post the flight) or reject (with a reason) a PENDING claim: the airline
    or an admin (see the module docstring)."""
    require_role(caller, (Role.AIRLINE, Role.ADMIN), "claims are decided by the airline or an admin")
    text = " ".join((reason or "").split()) or None
    if not approve and (text is None or len(text) > MAX_REASON):
        raise invalid(f"a rejection needs a reason of 1 to {MAX_REASON} characters", "input", "reason")
    if text is not None and len(text) > MAX_REASON:
        raise invalid(f"reason must be at most {MAX_REASON} characters", "input", "reason")
    pk = database_id(claim_id, BIGINT_IDS)
    claim = await MilesClaim.get_or_none(id=pk).prefetch_related("member") if pk is not None else None
    if claim is None:
        raise not_found("no such claim", "input", "claimId")
    decided = {"decided_at": now.astimezone(timezone.utc), "decided_by": caller.actor, "reason": text}
    if not approve:
        changed = await MilesClaim.filter(id=claim.id, status=ClaimStatus.PENDING).update(
            status=ClaimStatus.REJECTED, **decided
        )
        if not changed:
            raise _decided(await MilesClaim.get(id=claim.id))
        return Decision(await MilesClaim.get(id=claim.id))
    # The decision is taken first (PENDING -> APPROVED, conditional: of an approval and a
    # rejection at once only one wins), then the flight is posted under the claim's
    # externalRef and linked. A posting refused meanwhile (the member suspended) puts the
    # claim back to PENDING; an APPROVED claim without its entry (a crash between the two)
    # is completed by approving it again: the externalRef makes the posting happen once.
    if claim.status is ClaimStatus.PENDING:
        if not await MilesClaim.filter(id=claim.id, status=ClaimStatus.PENDING).update(
            status=ClaimStatus.APPROVED, **decided
        ):
            claim = await MilesClaim.get(id=claim.id).prefetch_related("member")
    if claim.status is ClaimStatus.REJECTED:
        raise _decided(claim)
    if claim.entry_id is not None:
        return Decision(claim)  # a retry of a completed approval
    flight = FlightDetails(claim.carrier, claim.flight_number, claim.flight_date, claim.origin, claim.destination,
                           claim.distance_km, claim.fare_class)
    try:
        if await _credited(claim.member_id, flight, except_ref=claim_ref(claim.id)):
            raise DomainError("DUPLICATE", "this flight is credited already: reject the claim", ("input", "claimId"))
        # The claims window is judged on the day of the claim; the posting is today's.
        posted = await flight_accrue(
            caller, claim.member.card_number, flight, claim_ref(claim.id), rules=rules, today=today,
            claimed_on=claim.submitted_on,
        )
    except (DomainError, ForbiddenError):
        await MilesClaim.filter(id=claim.id, status=ClaimStatus.APPROVED, entry_id=None).update(
            status=ClaimStatus.PENDING, decided_at=None, decided_by=None, reason=None
        )
        raise
    await MilesClaim.filter(id=claim.id, entry_id=None).update(entry_id=posted.entry.id)
    return Decision(await MilesClaim.get(id=claim.id), posted.tier_event)


def _decided(claim: MilesClaim) -> DomainError:
    return DomainError("INVALID_TRANSITION", f"the claim is {claim.status.value} already", ("input", "claimId"))


async def claims(
    caller: Caller, status: ClaimStatus | None, first: int | None, after: str | None
) -> Page[MilesClaim]:
    """A member's own claims, or every claim for the airline and admins; newest first."""
    require_role(caller, (Role.MEMBER, Role.AIRLINE, Role.ADMIN), "claims are read by members (their own), the airline and admins")
    query = MilesClaim.all()
    if caller.role is Role.MEMBER:
        query = query.filter(member_id=database_id(caller.subject) or 0)
    if status is not None:
        query = query.filter(status=ClaimStatus(status))
    return await newest_first(query.prefetch_related("member", "entry"), "submitted_at", ORDER, first, after, DEFAULT_PAGE)
