"""Keyset pages with opaque cursors, shared by every list of the API.

A cursor is the sort key of the last row seen, tagged with the ordering it belongs
to, base64-encoded. Paging by key, never by offset, means no row is skipped or
repeated when rows are added while a client pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from members.errors import invalid

T = TypeVar("T")
MAX_PAGE = 100
DEFAULT_PAGE = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    total_count: int | None = None

    @classmethod
    def of(cls, rows: Sequence[T], size: int, cursor: Callable[[T], str], total_count: int | None = None) -> Page[T]:
        """The page of `rows` fetched with one row more than `size` (the limit+1
        probe): the first `size` rows, and whether there is more."""
        items = list(rows[:size])
        return cls(items, [cursor(row) for row in items], len(rows) > size, total_count)

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def encode_cursor(ordering: str, key: list[Any]) -> str:
    raw = json.dumps([ordering, key], separators=(",", ":"), default=str, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, ordering: str, size: int) -> list[Any]:
    """The key inside a cursor, or INVALID when it is not one of ours for this ordering."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        tag, key = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise invalid("after is not a valid cursor", "after") from None
    if tag != ordering or not isinstance(key, list) or len(key) != size:
        raise invalid("after is a cursor of another list or ordering", "after")
    return key


def page_size(first: int | None, default: int = DEFAULT_PAGE) -> int:
    """`first` checked against MAX_PAGE; `default` when the client gave none."""
    if first is None:
        return default
    if not 0 <= first <= MAX_PAGE:
        raise invalid(f"first must be between 0 and {MAX_PAGE}", "first")
    return first
