"""Rows named by a code (offices, branches, partners): a code longer than its column
names no row, and is answered so before any query (PostgreSQL refuses to compare a
varchar(8) column with a longer parameter; that must not become an internal error)."""

from __future__ import annotations

from typing import TypeVar

from tortoise.models import Model

M = TypeVar("M", bound=Model)


def fits(model: type[Model], code: str | None) -> bool:
    """Whether `code` can be a value of `model`'s code column."""
    return isinstance(code, str) and 0 < len(code) <= model._meta.fields_map["code"].max_length


async def by_code(model: type[M], code: str | None) -> M | None:
    """The row with this code, None when there is none or the code cannot be one."""
    return await model.get_or_none(code=code) if fits(model, code) else None
