"""Deleting the rows of a query in chunks by key, each chunk its own short statement
(autocommit): the retention jobs' way (`loyalty access prune`, `loyalty webhooks prune`).
What it costs follows the rows deleted when the query is served by an index in
``order``'s order, never the table."""

from __future__ import annotations

from collections.abc import Callable

from tortoise.queryset import QuerySet


async def delete_in_chunks(
    query: QuerySet, order: tuple[str, ...], *, chunk: int, done: Callable[[int], None] | None = None
) -> int:
    """Delete every row of ``query``, ``chunk`` rows at a time in ``order``; calls
    ``done(rows deleted so far)`` after each chunk. The number of rows deleted."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    deleted = 0
    while True:
        ids = await query.order_by(*order).limit(chunk).values_list("id", flat=True)
        if not ids:
            return deleted
        deleted += await query.model.filter(id__in=list(ids)).delete()
        if done:
            done(deleted)
        if len(ids) < chunk:  # the last chunk: no need to ask again
            return deleted
