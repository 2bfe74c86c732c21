"""Query depth and cost limits, checked at validation, before anything runs.

Depth: the top field is level 1; a document nested deeper than `max_depth` is refused.
Cost: every field costs 1 for each object it is resolved on; a field taking `first`
multiplies the cost of its selection by that page size (or its default, or the
100 maximum when it comes from a variable). `members(first: 50) { edges { node {
ledger(first: 20) { ... } } } }` thus costs about 50 × 20 per ledger field.
The standard introspection query is exempt while introspection is on.
"""

from __future__ import annotations

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)

from members.paging import MAX_PAGE

DEFAULT_PAGE = 50


class _Measure:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments

    def _fields(self, selection_set: SelectionSetNode | None, seen: frozenset[str] = frozenset()):
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self._fields(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:  # cycles are refused by another rule
                    yield from self._fields(fragment.selection_set, seen | {name})

    def depth(self, selection_set: SelectionSetNode | None, level: int = 1) -> int:
        deepest = level - 1
        for field in self._fields(selection_set):
            deepest = max(deepest, self.depth(field.selection_set, level + 1) if field.selection_set else level)
        return deepest

    def cost(self, selection_set: SelectionSetNode | None, multiplier: int = 1) -> int:
        total = 0
        for field in self._fields(selection_set):
            total += multiplier
            if field.selection_set:
                total += self.cost(field.selection_set, multiplier * _page_size(field))
        return total

    def introspection_only(self, selection_set: SelectionSetNode | None) -> bool:
        return all(field.name.value.startswith("__") for field in self._fields(selection_set))


def _page_size(field: FieldNode) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(1, min(int(argument.value.value), MAX_PAGE))
            return MAX_PAGE  # a variable: assume the worst
    # List fields without `first` (branches, offices, regionHistory) are short.
    return DEFAULT_PAGE if field.name.value in {"members", "tierChanges", "ledger", "tierHistory"} else 1


def limits_rule(max_depth: int, max_cost: int, introspection: bool) -> type[ValidationRule]:
    class QueryLimits(ValidationRule):
        def enter_document(self, node, *_args):
            fragments = {d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)}
            measure = _Measure(fragments)
            for definition in node.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                if introspection and measure.introspection_only(definition.selection_set):
                    continue
                depth = measure.depth(definition.selection_set)
                if depth > max_depth:
                    self.report_error(GraphQLError(
                        f"query is nested {depth} levels deep; the limit is {max_depth}",
                        definition, extensions={"code": "QUERY_TOO_COMPLEX"},
                    ))
                    continue
                cost = measure.cost(definition.selection_set)
                if cost > max_cost:
                    self.report_error(GraphQLError(
                        f"query costs {cost}; the limit is {max_cost} (ask for smaller pages)",
                        definition, extensions={"code": "QUERY_TOO_COMPLEX"},
                    ))
            return self.SKIP

    return QueryLimits
