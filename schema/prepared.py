"""Documents prepared once per text: parsed (within the token limit), validated, and
what the limits need of them, found again by one dictionary lookup (issue 12).

Strawberry runs each schema extension's hooks through context managers built for
every request, and its parser and validation caches hash the parsed document (a walk
of the whole tree) on every request. Here one extension (`PreparedOperation`) does
it all in its operation hook, before strawberry would parse: it hands strawberry the
cached document and the cached validation errors (strawberry then neither parses nor
validates again), adds the checks that depend on the request (unstorable text in the
variables, the limits for the caller's budget and the page sizes sent), and on the
way out masks errors as RefusalErrors does (it is one). A text that does not parse
is left to strawberry, which parses it again with the same token limit and answers
its syntax error as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    VariableNode,
    Visitor,
    parse,
    specified_rules,
    visit,
)
from strawberry.schema.schema import validate_document

from schema.errors import RefusalErrors
from schema.inputs import MESSAGE as UNSTORABLE_MESSAGE
from schema.inputs import has_unstorable_text, unstorable_text_error
from schema.limits import PRICING_ARGUMENTS, QueryLimits

CACHE_SIZE = 256  # distinct document texts kept (like the parser and validation caches before)


class _PricingVariables(Visitor):
    """Names of the variables sent to an argument that can change a price."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        if node.name.value in PRICING_ARGUMENTS and isinstance(node.value, VariableNode):
            self.names.add(node.value.name.value)


_NOT_COMPILED = object()


@dataclass
class Prepared:
    """One document text, parsed and validated."""

    document: DocumentNode
    errors: list[GraphQLError] | None = None  # validation errors; None until a request within the limits needs them
    unstorable: bool = False  # the text or a string literal carries text no database stores
    pricing_variables: tuple[str, ...] = ()  # the variables the limits read (page sizes, dates)
    measures: dict[Any, Any] = field(default_factory=dict)  # QueryLimits' measures by pricing values
    plan: Any = _NOT_COMPILED  # schema.plans.Plan, None when it has none


class PreparedDocuments:
    """The prepared documents of one schema, by text, least recently used out first."""

    def __init__(self, schema: Any, limits: QueryLimits, *, max_tokens: int, introspection: bool) -> None:
        self.strawberry_schema = schema
        self.schema: GraphQLSchema = schema._schema
        self.limits = limits
        self.max_tokens = max_tokens
        self.rules = tuple(specified_rules) + (() if introspection else (NoSchemaIntrospectionCustomRule,))
        self._cache: OrderedDict[str, Prepared] = OrderedDict()

    def get(self, text: str) -> Prepared | None:
        """The prepared document, or None when the text does not parse."""
        prepared = self._cache.get(text)
        if prepared is not None:
            self._cache.move_to_end(text)
            return prepared
        try:
            document = parse(text, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        names = _PricingVariables()
        visit(document, names)
        prepared = Prepared(
            document=document,
            unstorable=unstorable_text_error(text, document, None) is not None,
            pricing_variables=tuple(sorted(names.names)),
        )
        self._cache[text] = prepared
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return prepared

    def plan(self, text: str) -> Any:
        """The compiled plan of this text (schema.plans), or None: a document that parses,
        validates and is within the limits for a caller with a token, whatever the
        variables, and has a plan."""
        prepared = self.get(text)
        if prepared is None:
            return None
        if prepared.plan is _NOT_COMPILED:
            from schema.plans import compile_plan

            within = not prepared.unstorable and not prepared.pricing_variables and not self.refusals(prepared, text, {}, True)
            prepared.plan = compile_plan(self.strawberry_schema, prepared.document) if within else None
        return prepared.plan

    def refusals(self, prepared: Prepared, text: str, variables: Any, authenticated: bool) -> list[GraphQLError]:
        """What refuses this request before execution, in the order of the checks:
        unstorable text, the limits (before any validation rule walks a document over
        them), then validation (once per text, when a request first gets that far)."""
        if prepared.unstorable or has_unstorable_text(variables):
            return [GraphQLError(UNSTORABLE_MESSAGE, extensions={"code": "INVALID"})]
        refused = self.limits.prepared_errors(prepared, text, authenticated, variables)
        if refused:
            return refused
        if prepared.errors is None:
            prepared.errors = validate_document(self.schema, prepared.document, self.rules)
        return list(prepared.errors)


class PreparedOperation(RefusalErrors):
    """The schema's one extension (besides tracing when configured): the prepared
    document, its validation and the limits; errors masked on the way out."""

    def __init__(self, documents: PreparedDocuments, **masking: Any) -> None:
        super().__init__(**masking)
        self.documents = documents

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.documents.max_tokens
        context.validation_rules = self.documents.rules
        query = context.query
        if query and context.graphql_document is None:
            prepared = self.documents.get(query)
            if prepared is not None:
                context.graphql_document = prepared.document
                caller = getattr(context.context, "caller", None)
                context.pre_execution_errors = self.documents.refusals(prepared, query, context.variables, caller is not None)
        yield from super().on_operation()
