"""Errors as the contract shapes them: payload userErrors for business rules, and
top-level errors with extensions.code for UNAUTHENTICATED / FORBIDDEN / INVALID."""

from __future__ import annotations

from enum import Enum

import strawberry
from graphql import GraphQLError

from members.errors import DomainError


@strawberry.enum(description="Why a request was refused.")
class ErrorCode(Enum):
    INVALID = strawberry.enum_value("INVALID", description="A field fails validation (format, range, unknown code).")
    NOT_FOUND = strawberry.enum_value("NOT_FOUND", description="The member, entry or office does not exist for this caller.")
    DUPLICATE = strawberry.enum_value("DUPLICATE", description="E.g. enrolling the same person twice (same phone or email).")
    IDEMPOTENCY_CONFLICT = strawberry.enum_value("IDEMPOTENCY_CONFLICT", description="A key reused with different content.")
    INSUFFICIENT_MILES = strawberry.enum_value("INSUFFICIENT_MILES", description="Redemption above the redeemable balance.")
    ALREADY_REVERSED = strawberry.enum_value("ALREADY_REVERSED", description="The entry has been reversed already.")
    NAME_MISMATCH = strawberry.enum_value("NAME_MISMATCH", description="Partner accrual: the family name does not match the card.")
    MEMBER_NOT_ACTIVE = strawberry.enum_value("MEMBER_NOT_ACTIVE", description="The member is suspended or closed.")
    LIMIT_EXCEEDED = strawberry.enum_value(
        "LIMIT_EXCEEDED", description="A velocity limit of the rules file, e.g. a partner's miles in 24 hours."
    )
    INVALID_TRANSITION = strawberry.enum_value(
        "INVALID_TRANSITION", description="The object's current status does not allow the requested one (e.g. a CLOSED feedback item)."
    )


@strawberry.type(description="A business rule that said no, with the input field at fault.")
class UserError:
    code: ErrorCode = strawberry.field(description="What kind of refusal this is.")
    field: list[str] | None = strawberry.field(
        description='Path to the input field at fault, e.g. ["input", "flight", "fareClass"].'
    )
    message: str = strawberry.field(description="A sentence for a person.")


def user_errors(error: DomainError) -> list[UserError]:
    return [UserError(code=ErrorCode[error.code], field=list(error.field) if error.field else None, message=error.message)]


# Top-level error codes that are expected and reach the client unmasked.
EXPOSED_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN", "INVALID", "NOT_FOUND", "QUERY_TOO_COMPLEX", "BAD_REQUEST"})


class CodedError(GraphQLError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, extensions={"code": code})


def unauthenticated(message: str = "authentication required: send Authorization: Bearer <token>") -> CodedError:
    return CodedError("UNAUTHENTICATED", message)


def forbidden(message: str = "your role may not do this") -> CodedError:
    return CodedError("FORBIDDEN", message)


def query_error(error: DomainError) -> CodedError:
    """A DomainError raised by a query (queries have no payload) as a top-level error."""
    return CodedError(error.code, error.message)


def should_mask_error(error: GraphQLError) -> bool:
    """Mask everything except our coded errors and GraphQL's own validation errors."""
    original = error.original_error
    if original is None:
        return False  # syntax and validation errors carry no original error
    if error.path is None:
        return False  # raised before execution: a variable value the client sent is malformed
    if isinstance(original, CodedError):
        return False
    code = (getattr(original, "extensions", None) or {}).get("code")
    return code not in EXPOSED_CODES
