"""Errors as the contract shapes them: payload userErrors for business rules, and
top-level errors with extensions.code for UNAUTHENTICATED / FORBIDDEN / INVALID."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import FieldExtension, MaskErrors

from members.errors import DomainError, ForbiddenError


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
    INVALID_CREDENTIALS = strawberry.enum_value(
        "INVALID_CREDENTIALS", description="Sign-in: the login or the password is wrong (which one is not said)."
    )
    LOCKED = strawberry.enum_value(
        "LOCKED", description="Sign-in: too many failures in a row; the message says when to try again."
    )
    INVALID_TOKEN = strawberry.enum_value(
        "INVALID_TOKEN", description="A refresh token that is unknown, expired, revoked or already used: sign in again."
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


def coded(error: DomainError | ForbiddenError) -> CodedError:
    """The one mapping of a service's refusal to a top-level GraphQL error: ForbiddenError
    is FORBIDDEN, a DomainError keeps its code (a query has no payload; a mutation's
    refusal goes to its payload instead, RefusalInPayload)."""
    if isinstance(error, ForbiddenError):
        return forbidden(str(error))
    return CodedError(error.code, error.message)


def should_mask_error(error: GraphQLError) -> bool:
    """Mask everything except our coded errors, services' refusals and GraphQL's own
    validation errors."""
    original = error.original_error
    if original is None:
        return False  # syntax and validation errors carry no original error
    if error.path is None:
        return False  # raised before execution: a variable value the client sent is malformed
    if isinstance(original, (CodedError, DomainError, ForbiddenError)):
        return False
    code = (getattr(original, "extensions", None) or {}).get("code")
    return code not in EXPOSED_CODES


class RefusalErrors(MaskErrors):
    """The response's errors: a service's refusal raised through any resolver becomes its
    coded error (coded()), so no resolver catches DomainError or ForbiddenError by hand;
    anything unexpected is masked as "Internal error."."""

    def _process_result(self, result: object) -> None:
        # MaskErrors asks isinstance(result, <a runtime-checkable Protocol>), which walks
        # the protocol's attributes on every request: about 4 % of a member read.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = []
        for error in errors:
            if isinstance(error.original_error, (DomainError, ForbiddenError)):
                refusal = coded(error.original_error)
                processed.append(GraphQLError(
                    refusal.message, nodes=error.nodes, source=error.source, positions=error.positions,
                    path=error.path, extensions=refusal.extensions,
                ))
            elif self.should_mask_error(error):
                processed.append(self.anonymise_error(error))
            else:
                processed.append(error)
        return processed


class RefusalInPayload(FieldExtension):
    """A mutation's refusal in its payload: a DomainError whose code the contract lists
    becomes the payload's userErrors, every other field null (or its default). ForbiddenError (FORBIDDEN)
    and any other code stay top-level errors (RefusalErrors)."""

    def apply(self, field: Any) -> None:
        self.payload = field.type  # the mutation's payload class

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: Any, **kwargs: Any) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except DomainError as error:
            if error.code not in ErrorCode.__members__:
                raise
            return refusal_payload(self.payload, error)


def refusal_payload(payload: type, error: DomainError) -> Any:
    """A mutation's payload for a refusal whose code the contract lists: userErrors,
    every other field null, but one with a default (a non-null flag) keeps it."""
    others = {f.python_name: None for f in payload.__strawberry_definition__.fields
              if f.python_name != "user_errors" and f.default is dataclasses.MISSING}
    return payload(**others, user_errors=user_errors(error))


def mutation(**options: Any) -> Any:
    """strawberry.mutation whose refusals go to its payload (RefusalInPayload)."""
    return strawberry.mutation(extensions=[RefusalInPayload()], **options)
