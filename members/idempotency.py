"""Idempotent replays: the same (caller, idempotencyKey) with the same content returns
the original result; with other content it is IDEMPOTENCY_CONFLICT."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError

from members import group_commit
from members.errors import DomainError
from members.models import IdempotencyRecord

T = TypeVar("T")
# The fingerprint of a record whose request carried personal data of a member since
# erased (privacy.erasure): a replay with its key returns the (erased) result, whatever
# the content, since what the request held is no longer known.
ERASED_FINGERPRINT = "erased"


def fingerprint(operation: str, content: Any) -> str:
    """A stable hash of what a request asks for."""
    encoded = json.dumps([operation, content], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


async def _replay(caller: str, key: str, operation: str, print_: str) -> int | None:
    record = await IdempotencyRecord.get_or_none(caller=caller, key=key)
    if record is None:
        return None
    if record.operation == operation and record.fingerprint == ERASED_FINGERPRINT:
        return record.result_id  # what it asked for was erased with the member: the result stands
    if record.operation != operation or record.fingerprint != print_:
        raise DomainError(
            "IDEMPOTENCY_CONFLICT",
            "this idempotencyKey was already used for a different request",
            ("input", "idempotencyKey"),
        )
    return record.result_id


async def run_once(
    *,
    caller: str,
    key: str | None,
    operation: str,
    content: Any,
    work: Callable[[Any], Awaitable[tuple[T, int]]],
    load: Callable[[int], Awaitable[T]],
    grouped: bool = False,
) -> T:
    """Run `work(connection)` in one transaction, recording the key beside its result.
    ``grouped``: with group commit (members.group_commit), in a savepoint of a batch's
    transaction; the key's unique index then also meets a twin earlier in the batch.

    `work` returns (result, result_id). A replay loads the first result with
    `load(result_id)` and writes nothing. Two concurrent first requests race on the
    unique (caller, key) index: the loser's transaction rolls back and it replays.
    """
    if key is not None:
        key = key.strip()
        if not key or len(key) > 128:
            raise DomainError("INVALID", "idempotencyKey must be 1 to 128 characters", ("input", "idempotencyKey"))
    print_ = fingerprint(operation, content)
    if key is not None and (prior := await _replay(caller, key, operation, print_)) is not None:
        return await load(prior)

    async def recorded(connection: Any) -> T:
        result, result_id = await work(connection)
        if key is not None:
            await IdempotencyRecord.create(
                caller=caller, key=key, operation=operation, fingerprint=print_,
                result_id=result_id, using_db=connection,
            )
        return result

    try:
        return await (group_commit.write if grouped else group_commit.alone)(recorded)
    except IntegrityError:
        if key is not None and (prior := await _replay(caller, key, operation, print_)) is not None:
            return await load(prior)
        raise
