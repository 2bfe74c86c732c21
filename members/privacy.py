"""A member's personal data on the member row: consents, the one function that erases
the row's personal columns (privacy.erasure calls it in its transaction), and the hold
on the member row that writers of free text about a member take against an erasure
(`hold_member`).

Consents (docs/PRIVACY.md): ``greetings`` (birthday and festival greetings; greetingsDue
lists only the members who hold it) is on at enrolment and for the members enrolled
before it existed, and the member may withdraw it; ``marketing`` is opt-in (off until
the member or an admin sets it). Every change is kept in MemberConsentChange.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from members.access import Caller, Role, require_role
from members.errors import invalid
from members.models import Member, MemberConsentChange
from members.services import refuse_erased, visible_member

__all__ = ["CONSENTS", "ERASED_NAME", "ERASED_TEXT", "Consents", "erase_personal_columns", "hold_member", "set_consents"]

# What an erased member's family and given names read as (the columns are not nullable,
# and the contract's familyName and givenName are non-null).
ERASED_NAME = "ERASED"
# What erased free text reads as where the column is not nullable.
ERASED_TEXT = "[erased]"
CONSENTS = ("greetings", "marketing")


@dataclass(frozen=True)
class Consents:
    """A change of consents: None leaves one as it is."""

    greetings: bool | None = None
    marketing: bool | None = None


async def set_consents(caller: Caller, member_id: str | int | None, consents: Consents, *, now: datetime) -> Member:
    """Set a member's consents: the member their own (member_id may be omitted), an admin
    any member's. A consent given with its current value is no change (no history row).
    INVALID when neither is given; MEMBER_NOT_ACTIVE for an erased member."""
    require_role(caller, (Role.MEMBER, Role.ADMIN), "consents are set by the member or an admin")
    if member_id is None:
        if caller.role is not Role.MEMBER:
            raise invalid("memberId is required", "input", "memberId")
        member_id = caller.member_id
    given = {name: getattr(consents, name) for name in CONSENTS if getattr(consents, name) is not None}
    if not given:
        raise invalid("give greetings, marketing or both", "input")
    member = await visible_member(caller, member_id, "input", "memberId")
    refuse_erased(member, "input", "memberId")
    changed = {name: value for name, value in given.items() if getattr(member, f"consent_{name}") != value}
    if not changed:
        return member
    now = now.astimezone(timezone.utc)
    async with in_transaction() as connection:
        await Member.filter(id=member.id).using_db(connection).update(
            consents_updated_at=now, **{f"consent_{name}": value for name, value in changed.items()}
        )
        for name, value in changed.items():
            await MemberConsentChange.create(
                member_id=member.id, consent=name.upper(), granted=value, actor=caller.actor, changed_at=now,
                using_db=connection,
            )
    return await Member.get(id=member.id)


def erased_values(now: datetime) -> dict[str, Any]:
    """The member row's personal columns as erasure leaves them: names the placeholder,
    birth date, phone, email (and their uniqueness keys) and the address but its
    country NULL or empty (country stays: it is no one's, and the office is kept),
    consents withdrawn."""
    return {
        "family_name": ERASED_NAME, "given_name": ERASED_NAME, "birth_date": None,
        "phone_cipher": None, "email_cipher": None, "phone_hash": None, "email_hash": None,
        "address_province": None, "address_city": "", "address_line": None, "address_postal_code": None,
        "consent_greetings": False, "consent_marketing": False, "consents_updated_at": now, "erased_at": now,
    }


async def erase_personal_columns(connection: BaseDBAsyncClient, member_id: int, now: datetime) -> bool:
    """Erase the member row's personal columns on `connection` (the caller's transaction),
    once: False when the row was erased already (a concurrent erasure won)."""
    updated = await Member.filter(id=member_id, erased_at__isnull=True).using_db(connection).update(
        **erased_values(now.astimezone(timezone.utc))
    )
    return bool(updated)


async def hold_member(connection: BaseDBAsyncClient, member_id: int) -> bool | None:
    """Hold the member's row against an erasure until the caller's transaction ends, and
    say whether the member is erased (None: no such member). Call it FIRST in a
    transaction that writes free text about the member (feedback, its notes).

    Why: erasure's first statement is the UPDATE of the member row (erase_personal_columns),
    and its scrubbing of the copies comes after, in the same transaction. A writer that
    only read the row could insert its text after the scrub had looked and commit after
    it: the text would outlive the erasure. With the hold the two are serialised: a
    writer that holds the row first makes the erasure wait and is then scrubbed with the
    rest; a writer that comes second waits for the erasure to commit and reads it erased.
    - PostgreSQL: SELECT ... FOR SHARE (concurrent writers about one member share it;
      the erasure's UPDATE conflicts with it, and it with the UPDATE; a foreign key's
      own KEY SHARE lock does not). Taken before the writer's other row locks, so that
      it cannot deadlock with the erasure's.
    - SQLite: an UPDATE that changes nothing (no trigger watches erased_at), as the
      transaction's first statement: it takes the database's write lock at once, waiting
      under busy_timeout, as ledger postings do, rather than reading first and failing
      with SQLITE_BUSY_SNAPSHOT when another process (`loyalty member erase`) committed
      in between."""
    table = Member._meta.db_table
    if connection.capabilities.dialect == "postgres":
        sql = f'SELECT "erased_at" FROM "{table}" WHERE "id" = $1 FOR SHARE'
    else:
        sql = f'UPDATE "{table}" SET "erased_at" = "erased_at" WHERE "id" = ? RETURNING "erased_at"'
    rows = await connection.execute_query_dict(sql, [member_id])
    return None if not rows else rows[0]["erased_at"] is not None
