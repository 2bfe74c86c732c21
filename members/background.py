"""Stopping a background task that uses the database, safely.

Why not `task.cancel()`: a task cancelled while it enters a transaction (tortoise's
``in_transaction().__aenter__``, between taking the connection and its BEGIN) never
gives the connection back: SQLite's one connection stays locked and every later query
of the process waits forever; a PostgreSQL pool keeps a connection "idle in
transaction". So a background task gets a stop event, checks it at safe points (between
batches, between turns), and ends on its own; `stop_task` sets the event and waits.
"""

from __future__ import annotations

import asyncio


async def stop_task(task: asyncio.Task, stop: asyncio.Event, *, grace: float | None = None) -> None:
    """Set ``stop`` and wait for ``task`` to end: for as long as it takes (``grace``
    None), or ``grace`` seconds and then cancel it, the last resort for a task that
    does not stop on its own. What the task raised is not re-raised (logged by it)."""
    stop.set()
    if grace is not None:
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def wait_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set, whichever comes first; True when
    stopped (a periodic task's pause: the cancel here lands on no database work)."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
    return stop.is_set()
