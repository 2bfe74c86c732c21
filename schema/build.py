"""Assemble the schema from the areas, with limits, caches and error masking."""

from __future__ import annotations

import strawberry
from strawberry.extensions import AddValidationRules, DisableIntrospection, MaskErrors, ParserCache, ValidationCache

from schema.care import CareMutation, CareQuery
from schema.errors import should_mask_error
from schema.insights import InsightsQuery
from schema.limits import limits_rule
from schema.loyalty import LoyaltyMutation, LoyaltyQuery
from schema.members import MemberMutation, MemberQuery
from schema.regions import RegionQuery
from schema.subscriptions import Subscription


@strawberry.type(description="Reads: members, regions, tiers and the tier event log.")
class Query(MemberQuery, RegionQuery, LoyaltyQuery, InsightsQuery, CareQuery):
    pass


@strawberry.type(description="Writes: every mutation takes one input and returns a payload with userErrors.")
class Mutation(MemberMutation, LoyaltyMutation, CareMutation):
    pass


def build_schema(
    *, introspection: bool = True, max_depth: int = 12, max_cost: int = 25_000
) -> strawberry.Schema:
    limits = limits_rule(max_depth, max_cost, introspection)
    # Factories, not instances: strawberry builds fresh extensions per request.
    extensions = [
        lambda: AddValidationRules([limits]),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        lambda: MaskErrors(should_mask_error=should_mask_error, error_message="Internal error."),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions)
