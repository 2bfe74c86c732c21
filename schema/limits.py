"""Query size, depth and cost limits, checked before validation, in time linear in the document.

Every document is measured once per distinct text and values of the variables that
price it (the measure is kept with the document prepared for the text,
schema.prepared), and each fragment of it once: a fragment's
depth and cost are remembered and reused at every spread, so a document whose fragments
spread each other twice over costs microseconds to measure however large the number it
adds up to.

Cost: every field costs 1 for each object it is resolved on. A field that returns many
objects costs 1 more for each object it can return (it loads them, whatever is selected
of them) and multiplies the cost of its selection by the most it can return:

- a paged field (one with a `first` argument): the page size asked for (a literal, or
  the value its variable was sent with), its default when not given, the maximum page
  (100) for a variable that was not sent;
- a list field: its real maximum (`list_prices`: six branches, the most offices of a
  branch, all 142 offices for officeStats, five care-call reasons, ...), or the maximum
  page (100) for a list with no known bound;
- greetingsDue: the days of its range times GREETINGS_PER_DAY (the whole 366-day range
  when an end is not known);
- the edges of a connection: 1 (the connection's `first` has priced them);
- a payload's userErrors: USER_ERRORS_PRICE.

Aliases count as the separate fields they are. Introspection (`__schema`, `__type`) is
priced by the real size of the schema (types, fields, arguments, enum values) against a
budget of its own: the fullest standard introspection query, so GraphiQL works and 300
aliased `__schema` do not; `__typename` costs 1 like any field. Depth counts the levels
of ordinary fields (the top field is level 1); no document may nest more than
MAX_NESTING levels in all, introspection included.

Budgets: `max_cost` for an authenticated caller, `anonymous_max_cost` for a request
without a valid token (no API field is open to it but `tierRules` and introspection).
Documents over `max_tokens` lexical tokens are refused by the parser before any of this.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    SchemaMetaFieldDef,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    TypeMetaFieldDef,
    get_introspection_query,
    get_named_type,
    parse,
)
from graphql.type.introspection import introspection_types

from members.paging import MAX_PAGE

MAX_NESTING = 64  # levels, introspection included: far beyond any real query, far below recursion limits
GREETINGS_PER_DAY = 5  # greetingsDue: price of one day of the range
GREETINGS_MAX_DAYS = 366  # care.greetings.MAX_RANGE_DAYS
USER_ERRORS_PRICE = 5  # a payload's userErrors: services refuse with one error at a time
TOO_COMPLEX = "QUERY_TOO_COMPLEX"
ROOT_INTROSPECTION = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}


@dataclass(frozen=True)
class Limits:
    """The configured limits (api.settings: LOYALTY_MAX_DEPTH, LOYALTY_MAX_COST,
    LOYALTY_ANONYMOUS_MAX_COST, LOYALTY_MAX_TOKENS)."""

    max_depth: int = 12
    max_cost: int = 5000
    anonymous_max_cost: int = 500
    max_tokens: int = 5000


@dataclass(frozen=True)
class Measure:
    """What a selection adds up to, per object it is resolved on."""

    depth: int = 0  # levels of ordinary fields
    cost: int = 0  # ordinary fields
    introspection: int = 0  # fields under __schema / __type
    nesting: int = 0  # levels of every kind

    def __add__(self, other: Measure) -> Measure:
        return Measure(
            max(self.depth, other.depth), self.cost + other.cost,
            self.introspection + other.introspection, max(self.nesting, other.nesting),
        )


NOTHING = Measure()


Variables = Mapping[str, Any]
# The arguments whose values change a price (a page size, a greetingsDue range).
PRICING_ARGUMENTS = frozenset({"first", "from", "to"})
# Per prepared document (schema.prepared), the measures kept by pricing values.
MEASURES_PER_DOCUMENT = 64


def _argument(field: FieldNode, name: str, variables: Variables) -> tuple[bool, Any]:
    """(given, value) of an argument: a literal, or the value its variable was sent with
    (None when the variable was not sent: priced at the worst)."""
    for argument in field.arguments or ():
        if argument.name.value == name:
            value = argument.value
            if isinstance(value, IntValueNode):
                return True, int(value.value)
            if isinstance(value, StringValueNode):
                return True, value.value
            if isinstance(value, VariableNode):
                return True, variables.get(value.name.value)
            return True, None
    return False, None


def _page(field: FieldNode, default: int | None, variables: Variables) -> int:
    given, value = _argument(field, "first", variables)
    if not given:
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        return MAX_PAGE  # an unsent variable (or a wrong value, refused by validation): the worst
    return max(1, min(value, MAX_PAGE))


def _greeting_days(field: FieldNode, variables: Variables) -> int:
    """Days of a greetingsDue range; the longest range when an end is not known."""
    ends: dict[str, date] = {}
    for name in ("from", "to"):
        _, value = _argument(field, name, variables)
        if isinstance(value, str):
            try:
                ends[name] = date.fromisoformat(value)
            except ValueError:
                return 1  # refused by validation
    if len(ends) == 2:
        days = (ends["to"] - ends["from"]).days + 1
        # A range the service refuses (INVALID: backwards, or longer than it allows) costs nothing to refuse.
        return days if 1 <= days <= GREETINGS_MAX_DAYS else 1
    return GREETINGS_MAX_DAYS


def introspection_prices(schema: GraphQLSchema) -> dict[str, int]:
    """The real maximum of each introspection list, from the schema itself."""
    types = list(schema.type_map.values())

    def most(attribute: str) -> int:
        return max((len(getattr(t, attribute, None) or {}) for t in types), default=1)

    fields = [f for t in types for f in (getattr(t, "fields", None) or {}).values()]
    prices = {
        "__Schema.types": len(types),
        "__Schema.directives": len(schema.directives),
        "__Type.fields": most("fields"),
        "__Type.inputFields": most("fields"),
        "__Type.enumValues": most("values"),
        "__Type.interfaces": most("interfaces"),
        "__Type.possibleTypes": max((len(schema.get_possible_types(t)) for t in types if hasattr(t, "resolve_type")), default=1),
        "__Field.args": max((len(getattr(f, "args", None) or {}) for f in fields), default=1),
        "__Directive.args": max((len(d.args) for d in schema.directives), default=1),
        "__Directive.locations": 1,
    }
    return {key: max(1, price) for key, price in prices.items()}


class DocumentMeasurer:
    """Measures one document: each fragment once, each operation from its root type."""

    def __init__(
        self, schema: GraphQLSchema, list_prices: dict[str, int], document: DocumentNode, variables: Variables | None = None
    ) -> None:
        self.schema = schema
        self.variables = variables or {}
        self.list_prices = list_prices
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.measured: dict[str, Measure] = {}
        self.measuring: set[str] = set()

    def operations(self, document: DocumentNode) -> Iterator[tuple[OperationDefinitionNode, Measure]]:
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                root = self.schema.get_root_type(definition.operation)
                yield definition, self.selection(definition.selection_set, root, 0)

    def selection(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None, level: int) -> Measure:
        total = NOTHING
        if selection_set is None:
            return total
        if level >= MAX_NESTING:
            return Measure(nesting=level + 1)
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                total += self.field(node, parent, level)
            elif isinstance(node, InlineFragmentNode):
                condition = self.schema.get_type(node.type_condition.name.value) if node.type_condition else parent
                total += self.selection(node.selection_set, condition, level)
            elif isinstance(node, FragmentSpreadNode):
                total += self.fragment(node.name.value, level)
        return total

    def fragment(self, name: str, level: int) -> Measure:
        """A fragment's measure relative to where it is spread (measured once, at level 0)."""
        if name not in self.measured:
            definition = self.fragments.get(name)
            if definition is None or name in self.measuring:
                return NOTHING  # unknown or cyclic: refused by validation
            if len(self.measuring) >= MAX_NESTING:
                return Measure(nesting=MAX_NESTING + 1)  # spreads inside spreads: refused, recursion bounded
            self.measuring.add(name)
            condition = self.schema.get_type(definition.type_condition.name.value)
            self.measured[name] = self.selection(definition.selection_set, condition, 0)
            self.measuring.discard(name)
        inner = self.measured[name]
        if inner == NOTHING:
            return NOTHING
        return Measure(inner.depth and inner.depth + level, inner.cost, inner.introspection, inner.nesting + level)

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, level: int) -> Measure:
        name = node.name.value
        if name == "__typename":
            return Measure(depth=level + 1, cost=1, nesting=level + 1)
        definition = self._definition(parent, name)
        child_type = get_named_type(definition.type) if definition is not None else None
        inner = self.selection(node.selection_set, child_type, level + 1) if node.selection_set else NOTHING
        times = self._multiplier(node, parent, definition)
        introspective = name.startswith("__") or (parent is not None and parent.name in introspection_types)
        if introspective:
            # Under __schema / __type everything is introspection; its depth is bounded by nesting.
            return Measure(0, 0, 1 + times * (inner.cost + inner.introspection), max(level + 1, inner.nesting))
        # A field that returns many objects loads them whatever is selected of them: it
        # costs one per object on top of what is selected.
        loaded = times if times > 1 and node.selection_set else 0
        return Measure(
            max(level + 1, inner.depth), 1 + loaded + times * inner.cost, times * inner.introspection,
            max(level + 1, inner.nesting),
        )

    def _definition(self, parent: GraphQLNamedType | None, name: str):
        if name in ROOT_INTROSPECTION:
            return ROOT_INTROSPECTION[name]
        fields = getattr(parent, "fields", None)
        return fields.get(name) if fields else None

    def _multiplier(self, node: FieldNode, parent: GraphQLNamedType | None, definition) -> int:
        if definition is None:
            return 1
        key = f"{parent.name}.{node.name.value}" if parent is not None else node.name.value
        if "first" in definition.args:
            return _page(node, definition.args["first"].default_value, self.variables)
        if key == "Query.greetingsDue":
            return _greeting_days(node, self.variables) * GREETINGS_PER_DAY
        field_type = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
        if not isinstance(field_type, GraphQLList):
            return 1
        if parent is not None and parent.name.endswith("Connection") and node.name.value == "edges":
            return 1  # the connection field's page size has priced its edges
        if node.name.value == "userErrors":
            return USER_ERRORS_PRICE
        return self.list_prices.get(key, MAX_PAGE)


def _pricing_value(value: Any) -> Any:
    """A variable's value as a key of the price it gives: whole numbers and short texts
    as they are; any other value prices as any other of its kind (a long text as a date
    that does not parse, the rest as a value not sent)."""
    if (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and len(value) <= 32):
        return value
    return "<long text>" if isinstance(value, str) else None


def _refusal(message: str, node) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": TOO_COMPLEX})


class QueryLimits:
    """The limits of one schema: the measure of each document (kept with the document
    prepared for its text, schema.prepared) and the check of a measure against a
    caller's budget."""

    def __init__(self, schema: GraphQLSchema, limits: Limits, list_prices: dict[str, int], introspection: bool) -> None:
        self.schema = schema
        self.limits = limits
        self.list_prices = {**introspection_prices(schema), **list_prices}
        self.introspection = introspection
        # The fullest standard introspection query (what GraphiQL and code generators send).
        standard = get_introspection_query(
            descriptions=True, specified_by_url=True, directive_is_repeatable=True,
            schema_description=True, input_value_deprecation=True,
        )
        self.introspection_budget = max(m.introspection for _, m in self._measure_document(parse(standard))) if introspection else 0

    def _measure_document(self, document: DocumentNode, variables: Variables | None = None) -> list[tuple[OperationDefinitionNode, Measure]]:
        return list(DocumentMeasurer(self.schema, self.list_prices, document, variables).operations(document))

    def prepared_errors(self, prepared: Any, text: str, authenticated: bool, variables: Variables | None) -> list[GraphQLError]:
        """`errors` for a document prepared once per text (schema.prepared): its measures
        are kept with it, keyed only by the values of the variables that can price it
        (`prepared.pricing_variables`), so a member read by id costs one lookup
        whatever the id."""
        values = variables if isinstance(variables, Mapping) else {}
        key = tuple(_pricing_value(values.get(name)) for name in prepared.pricing_variables)
        measures = prepared.measures.get(key)
        if measures is None:
            if len(prepared.measures) >= MEASURES_PER_DOCUMENT:
                prepared.measures.clear()
            measures = prepared.measures[key] = self._measure_document(prepared.document, values)
        return self._refusals(measures, authenticated)

    def _refusals(self, measured: list[tuple[OperationDefinitionNode, Measure]], authenticated: bool) -> list[GraphQLError]:
        budget = self.limits.max_cost if authenticated else self.limits.anonymous_max_cost
        errors = []
        for operation, measure in measured:
            if measure.nesting > MAX_NESTING:
                errors.append(_refusal(f"query is nested more than {MAX_NESTING} levels deep", operation))
            elif measure.depth > self.limits.max_depth:
                errors.append(_refusal(f"query is nested {measure.depth} levels deep; the limit is {self.limits.max_depth}", operation))
            elif measure.cost > budget and not authenticated and measure.cost <= self.limits.max_cost:
                # A token would let it run: say so rather than "too complex".
                errors.append(GraphQLError(
                    f"authentication required: this query costs {measure.cost}; without a token the limit is {budget}",
                    operation, extensions={"code": "UNAUTHENTICATED"},
                ))
            elif measure.cost > budget:
                errors.append(_refusal(f"query costs {measure.cost}; the limit is {budget} (ask for smaller pages)", operation))
            elif self.introspection and measure.introspection > self.introspection_budget:
                errors.append(_refusal(
                    f"introspection costs {measure.introspection}; the limit is {self.introspection_budget} (one schema query at a time)",
                    operation,
                ))
        return errors
