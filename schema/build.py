"""Assemble the schema from the areas, with limits, caches and error masking."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.care import CareMutation, CareQuery
from schema.errors import should_mask_error
from schema.finance import SCALARS, FinanceQuery
from schema.insights import InsightsMutation, InsightsQuery
from schema.claims import ClaimMutation, ClaimQuery
from schema.signin import SignInMutation
from schema.limits import Limits, QueryLimits
from schema.observe import current_request
from schema.prepared import PreparedDocuments, PreparedOperation
from schema.loyalty import LoyaltyMutation, LoyaltyQuery
from schema.members import MemberMutation, MemberQuery
from schema.privacy import PrivacyMutation, PrivacyQuery
from schema.regions import RegionQuery
from schema.subscriptions import Subscription
from schema.webhooks import WebhookMutation, WebhookQuery

logger = logging.getLogger("loyalty.graphql")


@strawberry.type(description="Reads: members, regions, tiers and the tier event log.")
class Query(
    MemberQuery, RegionQuery, LoyaltyQuery, InsightsQuery, CareQuery, ClaimQuery, PrivacyQuery, WebhookQuery, FinanceQuery
):
    pass


@strawberry.type(description="Writes: every mutation takes one input and returns a payload with userErrors.")
class Mutation(
    MemberMutation, LoyaltyMutation, CareMutation, InsightsMutation, SignInMutation, ClaimMutation, PrivacyMutation, WebhookMutation
):
    pass


class LoyaltySchema(strawberry.Schema):
    """The schema, logging only an unexpected error with its traceback (and the
    request's id). A refused request (a client's error) is noted in the request's
    record, which the server logs as its one line (schema.observe); outside a server
    it is logged here, in one line."""

    documents: PreparedDocuments  # the documents prepared by text (schema.prepared), set by build_schema

    def _create_execution_context(self, *args: Any, **kwargs: Any) -> ExecutionContext:
        # The request's record keeps the execution context: the operation's name for the
        # log line and metrics, read only when they are written.
        context = super()._create_execution_context(*args, **kwargs)
        record = current_request.get()
        if record is not None:
            record.execution = context
        return context

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        record = current_request.get()
        for error in errors:
            if should_mask_error(error):
                request_id = record.request_id if record is not None else "-"
                logger.error("internal error (request %s): %s", request_id, error.message, exc_info=error.original_error,
                             extra={"request_id": request_id})
                if record is not None:
                    record.failed()
            else:
                code = (error.extensions or {}).get("code") or "GRAPHQL_VALIDATION"
                if record is not None:
                    record.refused(code, error.message)
                else:
                    logger.info("refused (%s): %s", code, error.message[:300])


def list_prices() -> dict[str, int]:
    """The most objects each list field without `first` can return (schema.limits)."""
    from care.calls import MAX_NEEDS, CareCallReason
    from loyalty.liability import MAX_BREAKAGE_MONTHS
    from members.regions import region_data

    branches = region_data()["branches"]
    return {
        "Query.branches": len(branches),
        "Branch.offices": max(len(branch["offices"]) for branch in branches),
        "Query.officeStats": sum(len(branch["offices"]) for branch in branches),
        "CareCallDue.reasons": len(CareCallReason),
        "CareCall.needs": MAX_NEEDS,
        "TierRules.rules": 4,
        # A member's office assignments: one per move. Priced, not capped (see README, limits).
        "Member.regionHistory": 10,
        "MilesLiability.byTier": 4,
        "MilesLiability.byOffice": sum(len(branch["offices"]) for branch in branches),
        # One office's rows: a month of expiry per month of credit validity (36), by tier.
        "MilesLiability.rows": 4 * 40,
        "MilesBreakage.months": MAX_BREAKAGE_MONTHS,
    }


def build_schema(*, introspection: bool = True, limits: Limits = Limits(), tracing: type | None = None) -> strawberry.Schema:
    """The schema with its per-request extensions; ``tracing``: an OpenTelemetry
    extension class (api.tracing) when tracing is configured."""
    documents: PreparedDocuments  # made over the built schema, below; the factory runs per request
    # A factory, not an instance: strawberry builds fresh extensions per request. One
    # extension (schema.prepared): the document parsed within the token limit, the
    # limits before validation, both once per text; errors masked on the way out.
    # Introspection off: its validation rule is among the prepared documents' rules.
    extensions: list = [
        lambda: PreparedOperation(documents, should_mask_error=should_mask_error, error_message="Internal error."),
    ]
    if tracing is not None:
        extensions.append(tracing)
    # Without introspection (production) validation messages suggest no field names either.
    config = StrawberryConfig(disable_field_suggestions=not introspection, scalar_map=SCALARS)
    schema = LoyaltySchema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions, config=config)
    documents = schema.documents = PreparedDocuments(
        schema, QueryLimits(schema._schema, limits, list_prices(), introspection),
        max_tokens=limits.max_tokens, introspection=introspection,
    )
    return schema
