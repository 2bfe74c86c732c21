"""Domain errors: a business rule said no. Services raise them; the schema layer
turns them into payload userErrors (code, field, message)."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """A rule refused the request. `code` is one of the contract's ErrorCode names."""

    def __init__(self, code: str, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = tuple(field) if field else None

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"DomainError({self.code!r}, {self.message!r}, {self.field!r})"


class ForbiddenError(Exception):
    """The caller's role or scope may never do this (AUTH.md: FORBIDDEN, top-level)."""


def invalid(message: str, *field: str) -> DomainError:
    return DomainError("INVALID", message, field)


def not_found(message: str, *field: str) -> DomainError:
    return DomainError("NOT_FOUND", message, field)
