"""Member sign-in: passwords, lockout, and refresh tokens with rotation.

- A member's password is stored as an argon2id hash (argon2-cffi's defaults), set by an
  admin (a first password) or changed by the member (with the current one).
- Sign-in takes a card number or a phone number and the password. A wrong password or
  an unknown login are the same INVALID_CREDENTIALS (an unknown login still costs a hash
  verification, so timing does not tell them apart). After MAX_FAILURES failures in a
  row the credential is LOCKED for LOCK_SECONDS, doubling with each further failure up
  to MAX_LOCK_SECONDS; a success clears the count. Each attempt is counted before its
  check (guesses sent at once cannot pass the lockout), a member's currentPassword
  when changing it included; hashing runs in a worker thread.
- A sign-in returns a refresh token: 32 random bytes, stored only as its SHA-256, valid
  REFRESH_DAYS, of a new family. Refreshing uses it up and returns the next token of the
  family (rotation); presenting a used token again revokes the whole family (it was
  stolen or replayed) and is INVALID_TOKEN, as are unknown, expired and revoked tokens.
  Signing out revokes the family.

The short-lived access token (a JWT) is minted by the API layer from the member id
this module returns; this module never signs anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from members import contacts
from members.access import Caller, Role, require_role
from members.enums import MemberStatus
from members.errors import DomainError, invalid
from members.models import Member, MemberCredential, RefreshToken
from members.services import phone_key, refuse_erased, visible_member

__all__ = [
    "LOCK_SECONDS", "MAX_FAILURES", "MAX_LOCK_SECONDS", "REFRESH_DAYS", "SignedIn", "refresh", "set_password",
    "sign_in", "sign_out",
]

MAX_FAILURES = 5
LOCK_SECONDS = 60
MAX_LOCK_SECONDS = 3600
REFRESH_DAYS = 30
MIN_PASSWORD, MAX_PASSWORD = 10, 128
_CARD = re.compile(r"CA\d{9}")
_hasher = PasswordHasher()
# Verified against when the login names nobody, so a miss costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class SignedIn:
    member: Member
    refresh_token: str
    refresh_expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(now: datetime) -> datetime:
    return now.astimezone(timezone.utc)


def _password(value: str | None, *field: str) -> str:
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise invalid(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters", *field)
    return value


async def set_password(
    caller: Caller, member_id: str, new_password: str, *, current_password: str | None = None, now: datetime
) -> Member:
    """Set a member's password: an admin for any member (a first password, or a reset),
    a member their own with the current one (when they have one). Clears any lockout."""
    require_role(caller, (Role.ADMIN, Role.MEMBER), "passwords are set by the member or an admin")
    new_password = _password(new_password, "input", "newPassword")
    member = await visible_member(caller, member_id, "input", "memberId")
    refuse_erased(member, "input", "memberId")
    credential = await MemberCredential.get_or_none(member_id=member.id)
    if caller.role is Role.MEMBER and credential is not None:
        # Counted like a sign-in: a stolen session cannot guess the password here either.
        if not isinstance(current_password, str) or not await _attempt(
            credential, current_password, _utc(now), "input", "currentPassword"
        ):
            raise DomainError("INVALID_CREDENTIALS", "the current password is wrong", ("input", "currentPassword"))
    values = {"password_hash": await _hash(new_password), "failed_attempts": 0, "locked_until": None,
              "changed_at": _utc(now)}
    async with in_transaction() as connection:
        created = False
        if credential is None:
            try:
                async with in_transaction() as savepoint:
                    await MemberCredential.create(member_id=member.id, using_db=savepoint, **values)
                created = True
            except IntegrityError:  # a first password set at the same moment: this one wins
                pass
        if not created:
            await MemberCredential.filter(member_id=member.id).using_db(connection).update(**values)
            # A new password signs out every session of the old one.
            await RefreshToken.filter(member_id=member.id, revoked_at=None).using_db(connection).update(revoked_at=_utc(now))
    return member


def _verify_now(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _verify(password_hash: str, password: str) -> bool:
    """argon2 costs about 0.1 s of CPU by design: in a worker thread, so the event loop
    (every other request of the process) does not wait for it."""
    return await asyncio.to_thread(_verify_now, password_hash, password)


async def _hash(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _attempt(credential: MemberCredential, password: str, now: datetime, *field: str) -> bool:
    """Check ``password`` as one attempt counted BEFORE the check, so that guesses sent
    at once cannot pass the lockout: each takes its place in the count with one
    conditional UPDATE, refused while the lockout holds; the attempt that reaches
    MAX_FAILURES sets the lockout before its own check (a right password lifts it). A
    right password clears the count. LOCKED when locked; False for a wrong password."""
    gate = Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    if not await MemberCredential.filter(gate, id=credential.id).update(failed_attempts=F("failed_attempts") + 1):
        raise _locked(credential.locked_until or now, now, *field)
    failures = (await MemberCredential.get(id=credential.id)).failed_attempts
    lock = _lock_for(failures)
    if lock:
        await MemberCredential.filter(id=credential.id).update(locked_until=now + timedelta(seconds=lock))
    if await _verify(credential.password_hash, password):
        await MemberCredential.filter(id=credential.id).update(failed_attempts=0, locked_until=None)
        return True
    if lock:
        raise DomainError("LOCKED", f"too many failed sign-ins: try again in {lock} s", field)
    return False


def _locked(until: datetime, now: datetime, *field: str) -> DomainError:
    seconds = max(int((until - now).total_seconds()) + 1, 1)
    return DomainError("LOCKED", f"too many failed sign-ins: try again in {seconds} s", field)


async def _member_by_login(login: str) -> Member | None:
    login = (login or "").strip()
    if _CARD.fullmatch(login.upper()):
        return await Member.get_or_none(card_number=login.upper())
    try:
        phone = phone_key(login, "input", "login")
    except DomainError:
        return None
    # The hash under the lookup key, or an old one still configured while it changes.
    return await Member.filter(phone_hash__in=contacts.current().lookup_hashes(phone, "phone")).first()


def _lock_for(failures: int) -> int:
    """Seconds of lockout after ``failures`` failures in a row (0 below MAX_FAILURES)."""
    if failures < MAX_FAILURES:
        return 0
    return min(LOCK_SECONDS * 2 ** (failures - MAX_FAILURES), MAX_LOCK_SECONDS)


async def sign_in(login: str, password: str, *, now: datetime) -> SignedIn:
    """Check a card number or phone and a password; a new refresh token family. See the
    module docstring for INVALID_CREDENTIALS and LOCKED."""
    now = _utc(now)
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD:
        raise DomainError("INVALID_CREDENTIALS", "wrong login or password", ("input", "password"))
    member = await _member_by_login(login)
    credential = await MemberCredential.get_or_none(member_id=member.id) if member is not None else None
    if credential is None:
        await _verify(_DUMMY_HASH, password)
        raise DomainError("INVALID_CREDENTIALS", "wrong login or password", ("input", "password"))
    if not await _attempt(credential, password, now, "input", "login"):
        raise DomainError("INVALID_CREDENTIALS", "wrong login or password", ("input", "password"))
    if member.status is not MemberStatus.ACTIVE:
        raise DomainError("MEMBER_NOT_ACTIVE", f"the member is {member.status.value}", ("input", "login"))
    async with in_transaction() as connection:
        token, expires_at = await _issue(connection, member.id, uuid.uuid4().hex, now)
    return SignedIn(member, token, expires_at)


async def _issue(connection, member_id: int, family: str, now: datetime) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(days=REFRESH_DAYS)
    await RefreshToken.create(
        member_id=member_id, token_hash=_digest(token), family=family, issued_at=now, expires_at=expires_at,
        using_db=connection,
    )
    return token, expires_at


def _invalid_token() -> DomainError:
    return DomainError("INVALID_TOKEN", "the refresh token is not valid: sign in again", ("input", "refreshToken"))


async def refresh(token: str, *, now: datetime) -> SignedIn:
    """Use a refresh token up and return the next one of its family (see the module
    docstring); the member must still be ACTIVE."""
    now = _utc(now)
    row = await RefreshToken.get_or_none(token_hash=_digest(token or ""))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise _invalid_token()
    async with in_transaction() as connection:
        used = await RefreshToken.filter(id=row.id, used_at=None, revoked_at=None).using_db(connection).update(used_at=now)
        if not used:
            # Presented again after it was used: the family is compromised.
            await RefreshToken.filter(family=row.family, revoked_at=None).using_db(connection).update(revoked_at=now)
            reused = True
        else:
            reused = False
            member = await Member.get(id=row.member_id).using_db(connection)
            if member.status is not MemberStatus.ACTIVE:
                raise DomainError("MEMBER_NOT_ACTIVE", f"the member is {member.status.value}", ("input", "refreshToken"))
            new_token, expires_at = await _issue(connection, member.id, row.family, now)
    if reused:
        raise _invalid_token()
    return SignedIn(member, new_token, expires_at)


async def sign_out(token: str, *, now: datetime) -> None:
    """Revoke the refresh token's family (every token rotated from the same sign-in).
    An unknown token is INVALID_TOKEN; signing out twice is fine."""
    row = await RefreshToken.get_or_none(token_hash=_digest(token or ""))
    if row is None:
        raise _invalid_token()
    await RefreshToken.filter(family=row.family, revoked_at=None).update(revoked_at=_utc(now))
