"""The access audit: who read which member's personal fields, when.

Recorded (schema.members, when a resolver returns the field):
- staff (ADMIN, BRANCH, OFFICE) reading a member's birth date, phone, email or address;
- a partner or the airline reading a member's names (their whole view of a member
  beyond the card number and tier: AUTH.md).
Not recorded: a member reading themself, and staff reading names (every list and
worklist shows them; the contact details are what the audit follows).

One row per caller, request and member, with the fields read as bits (PersonalField).
A read costs no statement: `AccessLog.note` merges it into an in-memory buffer of the
process, which is written with multi-row INSERTs (members.bulk_insert) when it holds
`max_rows` rows, every `interval` seconds, and at shutdown (`running`). A crash loses
at most the last interval's reads; a failed write keeps the rows for the next one (up
to `max_pending`, beyond which the oldest are dropped and counted in `dropped`).

Retention: `prune_access` deletes the rows read before a time (`loyalty access prune`,
LOYALTY_ACCESS_LOG_DAYS), in chunks through the index on `at`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from enum import IntFlag

from tortoise.transactions import in_transaction

from members.access import Caller, Role
from members.background import stop_task, wait_stop
from members.bulk_insert import BulkInsert
from members.chunked import delete_in_chunks
from members.models import MemberAccess
from members.paging import Page, newest_first

logger = logging.getLogger("loyalty.access_log")

ACCESS_LOG_ORDER = "memberAccess"
_MAX_ACTOR = 200


class PersonalField(IntFlag):
    """A member's personal fields, as the bits of member_access.field_bits."""

    NAMES = 1
    BIRTH_DATE = 2
    PHONE = 4
    EMAIL = 8
    ADDRESS = 16


STAFF_AUDITED = PersonalField.BIRTH_DATE | PersonalField.PHONE | PersonalField.EMAIL | PersonalField.ADDRESS
_AUDITED: dict[Role, PersonalField] = {
    Role.ADMIN: STAFF_AUDITED, Role.BRANCH: STAFF_AUDITED, Role.OFFICE: STAFF_AUDITED,
    Role.PARTNER: PersonalField.NAMES, Role.AIRLINE: PersonalField.NAMES,
}

_requests = itertools.count(1)
_kept_keys = itertools.count(-1, -1)  # rows kept after a failed write: apart from every request's


def new_request_key() -> int:
    """A key for one request's reads (one row per request and member)."""
    return next(_requests)


@functools.cache
def _insert() -> BulkInsert:
    return BulkInsert(MemberAccess, ["at", "actor", "role", "partner_code", "member_id", "field_bits"])


class AccessLog:
    """The process's buffer of reads not yet written."""

    def __init__(self, *, max_rows: int = 1000, interval: float = 1.0, max_pending: int = 100_000) -> None:
        self.max_rows = max_rows
        self.interval = interval
        self.max_pending = max_pending
        # (request key, member id) -> [at, actor, role, partner code, member id, bits]
        self._pending: dict[tuple[int, int], list] = {}
        self._flushing: asyncio.Task | None = None
        self.written = 0
        self.dropped = 0

    def note(self, caller: Caller | None, request: int, member_id: int, field: PersonalField) -> None:
        """Record that `caller` was given `field` of the member in the request `request`
        (no-op for what is not audited: see the module's docstring)."""
        if caller is None or not field & _AUDITED.get(caller.role, 0):
            return
        row = self._pending.get((request, member_id))
        if row is not None:
            row[5] |= field
            return
        self._pending[(request, member_id)] = [
            datetime.now(timezone.utc), caller.actor[:_MAX_ACTOR], caller.role.value,
            caller.scope if caller.role is Role.PARTNER else None, member_id, int(field),
        ]
        if len(self._pending) >= self.max_rows:
            self._flush_soon()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _flush_soon(self) -> None:
        if self._flushing is None or self._flushing.done():
            with contextlib.suppress(RuntimeError):  # no running loop: the next flush takes them
                self._flushing = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> int:
        """Write every pending read (multi-row INSERTs in one transaction); the rows
        written. A failure keeps them for the next flush."""
        if not self._pending:
            return 0
        rows, self._pending = list(self._pending.values()), {}
        try:
            async with in_transaction() as connection:
                await _insert().run(connection, rows)
        except Exception:  # noqa: BLE001 - the audit must not take reads down; kept and logged
            logger.exception("access log: %d reads not written; kept for the next flush", len(rows))
            self._keep(rows)
            return 0
        self.written += len(rows)
        return len(rows)

    def _keep(self, rows: list[list]) -> None:
        kept = {(next(_kept_keys), row[4]): row for row in rows}
        kept.update(self._pending)
        overflow = len(kept) - self.max_pending
        if overflow > 0:
            for key in list(kept)[:overflow]:
                del kept[key]
            self.dropped += overflow
            logger.error("access log: %d reads dropped (more than %d waiting)", overflow, self.max_pending)
        self._pending = kept

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AccessLog]:
        """Flush every `interval` seconds while open, and everything at exit. The
        flusher is stopped, not cancelled (members.background): cancelled as it enters
        its transaction, it would keep the connection and the last flush would wait
        for it forever."""
        stop = asyncio.Event()

        async def every_interval() -> None:
            while not await wait_stop(stop, self.interval):
                await self.flush()

        task = asyncio.get_running_loop().create_task(every_interval())
        try:
            yield self
        finally:
            await stop_task(task, stop)
            if self._flushing is not None:
                with contextlib.suppress(Exception):
                    await self._flushing
            await self.flush()


async def member_access_page(member_id: int, first: int | None, after: str | None) -> Page[MemberAccess]:
    """A member's access rows, newest first (keyset by read time and id)."""
    return await newest_first(MemberAccess.filter(member_id=member_id), "at", ACCESS_LOG_ORDER, first, after, 20)


PRUNE_CHUNK = 1000


async def prune_access(
    before: datetime, *, dry_run: bool = False, progress: Callable[[int, int], None] | None = None,
    chunk: int = PRUNE_CHUNK,
) -> int:
    """Delete the access rows read before ``before`` (the retention), ``chunk`` at a time
    in the order of the index on `at`, each chunk its own statement: the cost follows the
    rows due, not the table, and no long lock holds the audit's writers. The number of
    rows removed (or, dry, that would be)."""
    due = MemberAccess.filter(at__lt=before)
    total = await due.count()
    if dry_run or not total:
        if progress:
            progress(total, total)
        return total
    if progress:
        progress(0, total)
    return await delete_in_chunks(
        due, ("at",), chunk=chunk, done=(lambda deleted: progress(min(deleted, total), total)) if progress else None)
