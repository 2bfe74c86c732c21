"""Member services: enrol, update, assign a region, set a status.

Each service owns its transaction and returns the member or raises a DomainError
(code, message, field). Authorisation by role is the schema's; scope is checked
here with members.access so that an object outside the caller's scope is
NOT_FOUND, never a leak.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, NamedTuple

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from members import contacts
from members.access import Caller, Role, can_see_member
from members.addresses import Address, AddressBook, office_for_address, squeeze, validate_address
from members.bulk_insert import BulkInsert, prefer_index_lookups, select_in
from members.cards import is_valid_card_number, random_card_number
from members.enums import MemberStatus, Tier
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


def phone_hash(phone: str, *field: str) -> str:
    """The keyed hash (members.contacts) of the normalised phone: what sign-in by phone
    and the DUPLICATE check compare."""
    return contacts.current().lookup_hash(phone_key(phone, *field), "phone")


def email_hash(email: str, *field: str) -> str:
    """The keyed hash of the normalised (case-folded) email."""
    return contacts.current().lookup_hash(email_key(email, *field), "email")


def member_phone(member: Member) -> str | None:
    """The member's phone as given (opened from its sealed column)."""
    return contacts.current().open(member.phone_cipher, "phone")


def member_email(member: Member) -> str | None:
    """The member's email as given (opened from its sealed column)."""
    return contacts.current().open(member.email_cipher, "email")


def _name(value: str, *field: str) -> str:
    value = squeeze(value)
    if not value:
        raise invalid(f"{field[-1]} is required", *field)
    if len(value) > 64:
        raise invalid(f"{field[-1]} is longer than 64 characters", *field)
    return value


def _contact(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _duplicate_contact(label: str, field: tuple[str, ...] | None = None) -> DomainError:
    return DomainError("DUPLICATE", f"a member with this {label} is already enrolled", field or ("input", label))


async def _check_unique_contacts(
    phone: str | None, email: str | None, exclude_id: int | None = None, field: tuple[str, ...] | None = None
) -> None:
    """DUPLICATE if another member not CLOSED holds the phone or email (valid ones),
    compared by their keyed hashes (under an old lookup key too while it changes).
    `field` names the input at fault when that input is not the phone or email itself
    (re-activation)."""
    keys = contacts.current()
    for column, value, label in (("phone_hash", phone, "phone"), ("email_hash", email, "email")):
        if value is None:
            continue
        normalised = phone_key(value) if label == "phone" else email_key(value)
        query = Member.filter(**{f"{column}__in": keys.lookup_hashes(normalised, label)})
        if exclude_id is not None:
            query = query.exclude(id=exclude_id)
        if await query.exists():
            raise _duplicate_contact(label, field)


def _address_columns(address: Address) -> dict[str, Any]:
    return {
        "address_country": address.country,
        "address_province": address.province,
        "address_city": address.city,
        "address_line": address.line,
        "address_postal_code": address.postal_code,
    }


class ValidEnrolment(NamedTuple):
    """An enrolment that passed validation: clean names, address and contacts, and the
    keyed hashes of the phone and email that decide DUPLICATE. (A named tuple: a bulk
    import makes one per row, and a frozen dataclass costs several times as much to build.)"""

    family_name: str
    given_name: str
    address: Address
    birth_date: date | None
    phone: str | None
    email: str | None
    phone_hash: str | None
    email_hash: str | None

    @property
    def names(self) -> tuple[str, str]:
        return (self.family_name, self.given_name)

    def member_row(self, card_number: str, office: Office, today: date) -> tuple:
        """The member row's values in MEMBER_ROW_COLUMNS order (the rest take the model's
        defaults), the phone and email sealed (members.contacts)."""
        address = self.address
        keys = contacts.current()
        return (
            card_number, self.family_name, self.given_name, self.birth_date,
            keys.seal(self.phone, "phone"), keys.seal(self.email, "email"), self.phone_hash, self.email_hash,
            address.country, address.province, address.city, address.line, address.postal_code,
            office.id, office.branch_id, today,
        )

    def member_columns(self, card_number: str, office: Office, today: date) -> dict[str, Any]:
        """The member row's columns, by name."""
        return dict(zip(MEMBER_ROW_COLUMNS, self.member_row(card_number, office, today), strict=True))


MEMBER_ROW_COLUMNS = (
    "card_number", "family_name", "given_name", "birth_date",
    "phone_cipher", "email_cipher", "phone_hash", "email_hash",
    *_address_columns(Address("", "")), "office_id", "branch_id", "tier_since",
)


def validate_enrolment(enrolment: Enrolment, today: date) -> ValidEnrolment:
    """The enrolment's rules (names, address, phone, email, birth date), or INVALID."""
    phone = _contact(enrolment.phone)
    email = _contact(enrolment.email)
    valid = ValidEnrolment(
        family_name=_name(enrolment.family_name, "input", "familyName"),
        given_name=_name(enrolment.given_name, "input", "givenName"),
        address=validate_address(enrolment.address, "input", "address"),
        birth_date=enrolment.birth_date,
        phone=phone,
        email=email,
        phone_hash=phone_hash(phone, "input", "phone") if phone else None,
        email_hash=email_hash(email, "input", "email") if email else None,
    )
    if enrolment.birth_date is not None and not date(1900, 1, 1) <= enrolment.birth_date <= today:
        raise invalid("birthDate must be between 1900-01-01 and today", "input", "birthDate")
    return valid


async def enroll(
    caller: Caller,
    enrolment: Enrolment,
    *,
    today: date,
    idempotency_key: str | None = None,
    new_card_number: Callable[[], str] = random_card_number,
) -> Member:
    """Enrol a member; the address decides the office, whoever enrols."""
    valid = validate_enrolment(enrolment, today)

    async def work(connection) -> tuple[Member, int]:
        await _check_unique_contacts(valid.phone, valid.email)
        office = await office_for_address(valid.address)
        card = new_card_number()
        for _ in range(5):  # a collision in 90 million numbers is rare; never reuse one
            if not await Member.filter(card_number=card).exists():
                break
            card = new_card_number()
        member = await Member.create(using_db=connection, **valid.member_columns(card, office, today))
        await RegionAssignment.create(
            member_id=member.id, office_id=office.id, reason=ENROLMENT_REASON, actor=caller.actor, using_db=connection
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
        await _check_unique_contacts(valid.phone, valid.email)
        raise


# ---- bulk import ------------------------------------------------------------------------

# One row's outcome in a bulk import: True taken, False already present, or why rejected.
ImportOutcome = bool | DomainError
ENROLMENT_REASON = "enrolment"


@dataclass(frozen=True)
class ImportedMember:
    """A row of `loyalty import members`: an enrolment and, optionally, its card number."""

    enrolment: Enrolment
    card_number: str | None = None


class PreparedMember(NamedTuple):
    """An import row after the checks that need no database: valid, its office chosen, and
    a card number (the given one, or one drawn for it)."""

    valid: ValidEnrolment
    given_card: str | None
    card: str
    office: Office


@dataclass
class _Holders:
    """Who holds which card, phone hash and email hash (their names): the batch's existing
    members, looked up in one query each, plus the rows of the batch taken so far."""

    cards: dict[str, tuple[str, str]]
    phones: dict[str, tuple[str, str]]
    emails: dict[str, tuple[str, str]]

    @classmethod
    async def load(cls, connection, rows: Sequence[PreparedMember]) -> _Holders:
        async def names_by(column: str, values: dict[str, str]) -> dict[str, tuple[str, str]]:
            """Names by value of `column`, for the values asked (value -> the key to file the holder under)."""
            if not values:
                return {}
            found = await select_in(connection, Member, [column, "family_name", "given_name"], column, values)
            return {values[value]: (family, given) for value, family, given in found}

        def hashes(label: str, normalise: Callable[[str], str]) -> dict[str, str]:
            """The rows' hashes (under an old lookup key too while it changes) -> the stored one."""
            wanted = {}
            for row in rows:
                stored, plain = getattr(row.valid, f"{label}_hash"), getattr(row.valid, label)
                if stored:
                    wanted[stored] = stored
                    if keys.rotating_lookup_key:
                        wanted.update((old, stored) for old in keys.lookup_hashes(normalise(plain), label)[1:])
            return wanted

        keys = contacts.current()
        return cls(
            await names_by("card_number", {row.card: row.card for row in rows}),
            await names_by("phone_hash", hashes("phone", phone_key)),
            await names_by("email_hash", hashes("email", email_key)),
        )

    def add(self, card: str, valid: ValidEnrolment) -> None:
        self.cards[card] = valid.names
        if valid.phone_hash:
            self.phones[valid.phone_hash] = valid.names
        if valid.email_hash:
            self.emails[valid.email_hash] = valid.names


def _already_present(valid: ValidEnrolment, card: str | None, holders: _Holders) -> bool:
    """True when the row is already present, False when it is to be enrolled, DUPLICATE
    when it may not be. A given card held under the same names is present (other names:
    DUPLICATE); without a card, a holder of the phone or email with the same names is."""
    if card is not None:
        holder = holders.cards.get(card)
        if holder is not None:
            if holder == valid.names:
                return True
            raise DomainError("DUPLICATE", "this card number belongs to another member", ("input", "cardNumber"))
    elif valid.names in (holders.phones.get(valid.phone_hash or ""), holders.emails.get(valid.email_hash or "")):
        return True
    if valid.phone_hash and valid.phone_hash in holders.phones:
        raise _duplicate_contact("phone")
    if valid.email_hash and valid.email_hash in holders.emails:
        raise _duplicate_contact("email")
    return False


class MemberImport:
    """Enrolment of `loyalty import members` rows, a batch per transaction.

    The same validation and office assignment as `enroll`. A given card number is kept: it
    must pass the check digit (INVALID); when a member already holds it with the same
    family and given names the row is already present (False), with other names it is
    DUPLICATE. Without a card number one is assigned as at enrolment, and a member
    holding the row's phone or email under the same names counts as already present.
    Each row's outcome is what enrolling the rows one by one in file order would give.

    `enroll(rows)` is two steps: `prepare` (no database: validation, office from the
    in-memory address rules, card draw) and `write` (one transaction: existing cards,
    phones and emails of the batch in one query each, one executemany of members and one
    of their region assignments)."""

    def __init__(
        self, caller: Caller, *, today: date, address_book: AddressBook,
        new_card_number: Callable[[], str] = random_card_number,
    ) -> None:
        self.caller = caller
        self.today = today
        self.address_book = address_book
        self.new_card_number = new_card_number

    def prepare(self, rows: Sequence[ImportedMember | DomainError]) -> list[PreparedMember | DomainError]:
        """Each row prepared, or why it is rejected (a DomainError given stays as it is)."""
        prepared: list[PreparedMember | DomainError] = []
        for row in rows:
            if isinstance(row, DomainError):
                prepared.append(row)
                continue
            card = (row.card_number or "").strip().upper() or None
            try:
                if card is not None and not is_valid_card_number(card):
                    raise invalid(
                        "cardNumber must be CA followed by 9 digits with a valid check digit", "input", "cardNumber")
                valid = validate_enrolment(row.enrolment, self.today)
            except DomainError as error:
                prepared.append(error)
                continue
            office = self.address_book.office_for(valid.address)
            prepared.append(PreparedMember(valid, card, card or self.new_card_number(), office))
        return prepared

    async def write(self, prepared: Sequence[PreparedMember | DomainError]) -> list[ImportOutcome]:
        """Write the prepared batch in one transaction. When it meets a unique index (a
        concurrent writer took a card, phone or email after the lookups), it is written
        again with a savepoint per row, so that only the rows in conflict are decided
        again (now seeing the other writer's rows)."""
        try:
            async with in_transaction() as connection:
                return await self._write(connection, prepared)
        except IntegrityError:
            pass
        outcomes: list[ImportOutcome] = []
        async with in_transaction():
            for row in prepared:
                for attempt in (1, 2):
                    try:
                        async with in_transaction() as savepoint:
                            outcomes += await self._write(savepoint, [row])
                        break
                    except IntegrityError:
                        if attempt == 2:
                            raise
        return outcomes

    async def enroll(self, rows: Sequence[ImportedMember | DomainError]) -> list[ImportOutcome]:
        """Prepare and write one batch."""
        return await self.write(self.prepare(rows))

    async def _write(self, connection, prepared: Sequence[PreparedMember | DomainError]) -> list[ImportOutcome]:
        rows = [row for row in prepared if isinstance(row, PreparedMember)]
        await prefer_index_lookups(connection)
        holders = await _Holders.load(connection, rows)
        outcomes: list[ImportOutcome] = []
        new_members: list[tuple[str, int, tuple]] = []  # (card, office id, member row)
        for row in prepared:
            if isinstance(row, DomainError):
                outcomes.append(row)
                continue
            try:
                if _already_present(row.valid, row.given_card, holders):
                    outcomes.append(False)
                    continue
            except DomainError as error:
                outcomes.append(error)
                continue
            card = row.card
            for _ in range(5):  # a drawn card already held: a collision in 90 million numbers is rare
                if card not in holders.cards:
                    break
                card = self.new_card_number()
                if await Member.filter(card_number=card).using_db(connection).exists():
                    holders.cards[card] = ("", "")
            holders.add(card, row.valid)
            new_members.append((card, row.office.id, row.valid.member_row(card, row.office, self.today)))
            outcomes.append(True)
        if new_members:
            member_insert, assignment_insert = _inserts()
            ids = dict(await member_insert.run(
                connection, [values for _, _, values in new_members], returning=["card_number", "id"]))
            actor = self.caller.actor
            await assignment_insert.run(connection, [
                (ids[card], office_id, ENROLMENT_REASON, actor) for card, office_id, _ in new_members
            ])
            # The office x tier rollup, in the batch's transaction like enrol()'s (a new
            # member's tier is the model's default, STANDARD).
            await move_tier_counts(connection, [(office_id, Tier.STANDARD, 1) for _, office_id, _ in new_members])
        return outcomes


@functools.cache
def _inserts() -> tuple[BulkInsert, BulkInsert]:
    """The batch's two inserts, made once (after the models are initialised)."""
    return BulkInsert(Member, MEMBER_ROW_COLUMNS), BulkInsert(RegionAssignment, ["member_id", "office_id", "reason", "actor"])


def audit_reason(reason: str | None) -> str:
    """An audited reason, whitespace squeezed: 1 to 280 characters, or INVALID."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise invalid("a reason is required", "input", "reason")
    if len(reason) > 280:
        raise invalid("reason is longer than 280 characters", "input", "reason")
    return reason


def refuse_erased(member: Member, *field: str) -> None:
    """MEMBER_NOT_ACTIVE for a member whose personal data was erased (privacy.erasure):
    nothing is written about them any more."""
    if member.erased_at is not None:
        raise DomainError("MEMBER_NOT_ACTIVE", "the member's personal data was erased", field)


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
    keys = contacts.current()
    phone = email = None  # the new ones, to check for DUPLICATE
    if changes.phone is not UNSET:
        phone = _contact(changes.phone)
        values["phone_hash"] = phone_hash(phone, "input", "phone") if phone else None
        values["phone_cipher"] = keys.seal(phone, "phone")
    if changes.email is not UNSET:
        email = _contact(changes.email)
        values["email_hash"] = email_hash(email, "input", "email") if email else None
        values["email_cipher"] = keys.seal(email, "email")
    address = None
    if changes.address is not UNSET:
        if changes.address is None:
            raise invalid("address cannot be removed", "input", "address")
        address = validate_address(changes.address, "input", "address")
        values.update(_address_columns(address))
    if not values:
        return member
    await _check_unique_contacts(phone, email, exclude_id=member.id)
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
        await _check_unique_contacts(phone, email, exclude_id=member.id)
        raise
    return await Member.get(id=member.id)


async def assign_region(caller: Caller, member_id: str, office_code: str, reason: str) -> Member:
    """Assign a member to an office by hand (branch staff within their branch, or admin)."""
    reason = audit_reason(reason)
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
    reason = audit_reason(reason)
    member = await visible_member(caller, member_id, "input", "memberId")
    refuse_erased(member, "input", "memberId")  # an erased member stays CLOSED
    if member.status is status:
        return member
    values: dict[str, Any] = {"status": status}
    phone = email = None  # re-activation: the ones claimed again, to check for DUPLICATE
    if status is MemberStatus.CLOSED:
        values.update(phone_hash=None, email_hash=None)
    elif member.status is MemberStatus.CLOSED:
        phone, email = member_phone(member), member_email(member)
        keys = {
            "phone_hash": phone_hash(phone) if phone else None,
            "email_hash": email_hash(email) if email else None,
        }
        await _check_unique_contacts(phone, email, exclude_id=member.id, field=("input", "status"))
        values.update(keys)
    try:
        async with in_transaction() as connection:
            await Member.filter(id=member.id).using_db(connection).update(**values)
            await MemberStatusChange.create(
                member_id=member.id, from_status=member.status, to_status=status,
                reason=reason, actor=caller.actor, using_db=connection,
            )
    except IntegrityError:
        await _check_unique_contacts(phone, email, exclude_id=member.id, field=("input", "status"))
        raise
    return await Member.get(id=member.id)
