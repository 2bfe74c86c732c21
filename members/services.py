"""Member services: enrol, update, assign a region, set a status.

Each service owns its transaction and returns the member or raises a DomainError
(code, message, field). Authorisation by role is the schema's; scope is checked
here with members.access so that an object outside the caller's scope is
NOT_FOUND, never a leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from members.access import Caller, Role, can_see_member
from members.addresses import Address, office_for_address, validate_address
from members.cards import is_valid_card_number, random_card_number
from members.enums import MemberStatus
from members.codes import by_code
from members.errors import DomainError, ForbiddenError, invalid, not_found
from members.ids import database_id
from members.idempotency import run_once
from members.models import Member, MemberStatusChange, Office, RegionAssignment
from members.regions import move_tier_counts, reassign_office

_PHONE_NOISE = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UNSET: Any = object()  # "not given" in an update, as opposed to None ("clear it")


@dataclass(frozen=True)
class Enrolment:
    family_name: str
    given_name: str
    address: Address
    birth_date: date | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class MemberChanges:
    phone: Any = UNSET
    email: Any = UNSET
    address: Any = UNSET


def phone_key(phone: str, *field: str) -> str:
    key = _PHONE_NOISE.sub("", phone)
    if not _PHONE.match(key):
        raise invalid("phone must have 6 to 15 digits, optionally after +", *field)
    return key


def email_key(email: str, *field: str) -> str:
    if len(email) > 254 or not _EMAIL.match(email):
        raise invalid("email is not a valid address", *field)
    return email.casefold()


def _name(value: str, *field: str) -> str:
    value = " ".join((value or "").split())
    if not value:
        raise invalid(f"{field[-1]} is required", *field)
    if len(value) > 64:
        raise invalid(f"{field[-1]} is longer than 64 characters", *field)
    return value


def _contact(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


async def _check_unique_contacts(
    phone: str | None, email: str | None, exclude_id: int | None = None, field: tuple[str, ...] | None = None
) -> None:
    """DUPLICATE if another member not CLOSED holds the phone or email. `field` names the
    input at fault when that input is not the phone or email itself (re-activation)."""
    for column, value, label in (("phone_key", phone, "phone"), ("email_key", email, "email")):
        if value is None:
            continue
        query = Member.filter(**{column: value})
        if exclude_id is not None:
            query = query.exclude(id=exclude_id)
        if await query.exists():
            raise DomainError("DUPLICATE", f"a member with this {label} is already enrolled", field or ("input", label))


def _address_columns(address: Address) -> dict[str, Any]:
    return {
        "address_country": address.country,
        "address_province": address.province,
        "address_city": address.city,
        "address_line": address.line,
        "address_postal_code": address.postal_code,
    }


async def enroll(
    caller: Caller,
    enrolment: Enrolment,
    *,
    today: date,
    idempotency_key: str | None = None,
    new_card_number: Callable[[], str] = random_card_number,
) -> Member:
    """Enrol a member; the address decides the office, whoever enrols."""
    family = _name(enrolment.family_name, "input", "familyName")
    given = _name(enrolment.given_name, "input", "givenName")
    address = validate_address(enrolment.address, "input", "address")
    phone = _contact(enrolment.phone)
    email = _contact(enrolment.email)
    phone_k = phone_key(phone, "input", "phone") if phone else None
    email_k = email_key(email, "input", "email") if email else None
    if enrolment.birth_date is not None and not date(1900, 1, 1) <= enrolment.birth_date <= today:
        raise invalid("birthDate must be between 1900-01-01 and today", "input", "birthDate")

    async def work(connection) -> tuple[Member, int]:
        await _check_unique_contacts(phone_k, email_k)
        office = await office_for_address(address)
        card = new_card_number()
        for _ in range(5):  # a collision in 90 million numbers is rare; never reuse one
            if not await Member.filter(card_number=card).exists():
                break
            card = new_card_number()
        member = await Member.create(
            card_number=card,
            family_name=family,
            given_name=given,
            birth_date=enrolment.birth_date,
            phone=phone,
            email=email,
            phone_key=phone_k,
            email_key=email_k,
            office_id=office.id,
            branch_id=office.branch_id,
            tier_since=today,
            using_db=connection,
            **_address_columns(address),
        )
        await RegionAssignment.create(
            member_id=member.id, office_id=office.id, reason="enrolment", actor=caller.actor, using_db=connection
        )
        await move_tier_counts(connection, [(office.id, member.tier, 1)])
        return member, member.id

    content = asdict(enrolment)
    try:
        return await run_once(
            caller=caller.key, key=idempotency_key, operation="memberEnroll", content=content,
            work=work, load=lambda member_id: Member.get(id=member_id),
        )
    except IntegrityError:
        # Lost a race with a concurrent enrolment of the same phone or email.
        await _check_unique_contacts(phone_k, email_k)
        raise


async def enroll_imported(
    caller: Caller, enrolment: Enrolment, card_number: str | None, *, today: date
) -> tuple[Member, bool]:
    """Enrol one member of a bulk import (`loyalty import members`); (member, created).

    The same validation and office assignment as `enroll`. A given card number is kept: it
    must pass the check digit (INVALID); when a member already holds it with the same
    family and given names the row is already present (created False), with other names
    it is DUPLICATE. Without a card number one is assigned as at enrolment, and a member
    holding the row's phone or email under the same names counts as already present."""
    card = (card_number or "").strip().upper() or None
    if card is not None and not is_valid_card_number(card):
        raise invalid("cardNumber must be CA followed by 9 digits with a valid check digit", "input", "cardNumber")
    names = (_name(enrolment.family_name, "input", "familyName"), _name(enrolment.given_name, "input", "givenName"))
    if card is not None:
        existing = await Member.get_or_none(card_number=card)
        if existing is not None:
            if (existing.family_name, existing.given_name) == names:
                return existing, False
            raise DomainError("DUPLICATE", "this card number belongs to another member", ("input", "cardNumber"))
    else:
        phone, email = _contact(enrolment.phone), _contact(enrolment.email)
        keys = {"phone_key": phone_key(phone, "input", "phone") if phone else None,
                "email_key": email_key(email, "input", "email") if email else None}
        for column, value in keys.items():
            holder = await Member.get_or_none(**{column: value}) if value else None
            if holder is not None and (holder.family_name, holder.given_name) == names:
                return holder, False
    member = await enroll(caller, enrolment, today=today, new_card_number=(lambda: card) if card else random_card_number)
    return member, True


async def visible_member(caller: Caller, member_id: str | int, *field: str) -> Member:
    """The member with this id if the caller may see it, else NOT_FOUND."""
    pk = database_id(member_id)
    if pk is None:
        raise not_found("no such member", *field)
    member = await Member.get_or_none(id=pk)
    if member is None or not can_see_member(caller, member):
        raise not_found("no such member", *field)
    return member


async def update(caller: Caller, member_id: str, changes: MemberChanges) -> Member:
    """Change contact details; a new address re-assigns the office (with history)."""
    member = await visible_member(caller, member_id, "input", "id")
    if member.status is MemberStatus.CLOSED:
        raise DomainError("MEMBER_NOT_ACTIVE", "a closed member cannot be updated", ("input", "id"))
    values: dict[str, Any] = {}
    if changes.phone is not UNSET:
        phone = _contact(changes.phone)
        values["phone"] = phone
        values["phone_key"] = phone_key(phone, "input", "phone") if phone else None
    if changes.email is not UNSET:
        email = _contact(changes.email)
        values["email"] = email
        values["email_key"] = email_key(email, "input", "email") if email else None
    address = None
    if changes.address is not UNSET:
        if changes.address is None:
            raise invalid("address cannot be removed", "input", "address")
        address = validate_address(changes.address, "input", "address")
        values.update(_address_columns(address))
    if not values:
        return member
    await _check_unique_contacts(values.get("phone_key"), values.get("email_key"), exclude_id=member.id)
    try:
        async with in_transaction() as connection:
            if address is not None:
                office = await office_for_address(address)
                if await reassign_office(connection, member.id, office):
                    await RegionAssignment.create(
                        member_id=member.id, office_id=office.id, reason="address",
                        actor=caller.actor, using_db=connection,
                    )
            await Member.filter(id=member.id).using_db(connection).update(**values)
    except IntegrityError:
        await _check_unique_contacts(values.get("phone_key"), values.get("email_key"), exclude_id=member.id)
        raise
    return await Member.get(id=member.id)


async def assign_region(caller: Caller, member_id: str, office_code: str, reason: str) -> Member:
    """Assign a member to an office by hand (branch staff within their branch, or admin)."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise invalid("a reason is required", "input", "reason")
    if len(reason) > 280:
        raise invalid("reason is longer than 280 characters", "input", "reason")
    member = await visible_member(caller, member_id, "input", "memberId")
    office = await by_code(Office, (office_code or "").strip().upper())
    if caller.role is Role.BRANCH and (office is None or office.branch_id != caller.branch_id):
        raise ForbiddenError(f"office {office_code} is outside your branch")
    if office is None:
        raise not_found(f"no office {office_code}", "input", "officeCode")
    async with in_transaction() as connection:
        await reassign_office(connection, member.id, office)
        await RegionAssignment.create(
            member_id=member.id, office_id=office.id, reason=f"manual: {reason}", actor=caller.actor, using_db=connection
        )
    return await Member.get(id=member.id)


async def set_status(caller: Caller, member_id: str, status: MemberStatus, reason: str) -> Member:
    """Suspend, close or re-activate. Closing frees the phone and email for a new
    enrolment; re-activating claims them again (DUPLICATE if taken meanwhile)."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise invalid("a reason is required", "input", "reason")
    if len(reason) > 280:
        raise invalid("reason is longer than 280 characters", "input", "reason")
    member = await visible_member(caller, member_id, "input", "memberId")
    if member.status is status:
        return member
    values: dict[str, Any] = {"status": status}
    if status is MemberStatus.CLOSED:
        values.update(phone_key=None, email_key=None)
    elif member.status is MemberStatus.CLOSED:
        keys = {
            "phone_key": phone_key(member.phone) if member.phone else None,
            "email_key": email_key(member.email) if member.email else None,
        }
        await _check_unique_contacts(keys["phone_key"], keys["email_key"], exclude_id=member.id, field=("input", "status"))
        values.update(keys)
    try:
        async with in_transaction() as connection:
            await Member.filter(id=member.id).using_db(connection).update(**values)
            await MemberStatusChange.create(
                member_id=member.id, from_status=member.status, to_status=status,
                reason=reason, actor=caller.actor, using_db=connection,
            )
    except IntegrityError:
        await _check_unique_contacts(values.get("phone_key"), values.get("email_key"), exclude_id=member.id, field=("input", "status"))
        raise
    return await Member.get(id=member.id)
