"""Ids as the database stores them: a text that cannot be one names no row.

Member, office and branch ids are 32-bit columns on PostgreSQL; ledger entries, lots,
events, calls and feedback are 64-bit. A larger number, a negative one or anything but
digits is not an id: looking it up would make the database fail (out of range for the
column), so it is answered as "no such row" before any query.
"""

from __future__ import annotations

INT_IDS = 2**31  # IntField primary keys: members, offices, branches
BIGINT_IDS = 2**63  # BigIntField primary keys: ledger entries, lots, tier events, calls, feedback


def database_id(value: str | int | None, limit: int = INT_IDS) -> int | None:
    """The id `value` names (1 to limit - 1), or None when it cannot name a row."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        pk = value
    else:
        text = str(value).strip() if value is not None else ""
        if not text.isascii() or not text.isdigit() or len(text) > 19:
            return None
        pk = int(text)
    return pk if 0 < pk < limit else None
