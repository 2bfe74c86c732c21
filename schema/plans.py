"""Compiled plans for the hottest documents (issue 12): a member's read by id or card
number and flightAccrue, answered without strawberry's and graphql-core's per-request
and per-field machinery when nothing can go wrong, by the ordinary path otherwise.

A document gets a plan once, when it is prepared (schema.prepared), if it is one
query or mutation whose one root field is planned (PLANNED_ROOTS) and whose selection
under it holds only fields without arguments, directives or fragments that read an
attribute (strawberry's "basic" fields), or a member's field behind the full member
view (`permission_classes=full_view`: a method reading its row), and if it validates
and is within the limits for any token. A request with such a document is answered by
its plan: its variables coerced by graphql-core, its root field's permission classes
and resolver run as strawberry runs them (the resolver gets an Info with the
context and field name, which is all these resolvers read), and the result turned
into JSON directly, each value serialised by its GraphQL type as graphql-core would.

Whenever a plan cannot answer exactly as the ordinary path would, it gives up
(`Fallback`) and the ordinary path answers the same request from the start: no
token, a refused permission, variables that do not coerce, unstorable text, a
service's error, a null where the schema promises a value. A member read has no side
effect to repeat; a flight accrual is idempotent by its externalRef (the ordinary path
then replays the posting the plan made, or refuses as the plan's attempt was
refused), so a plan may give up even after its service ran. A mutation's refusal with
a code the contract lists is no error: the plan answers it as RefusalInPayload does
(userErrors, the other fields null).

A plan whose root field's arguments are each one variable binds them itself
(direct_binder: the member read's ID/String variables, flightAccrue's input) instead of
graphql-core's get_variable_values and get_argument_values. A member read's plan also
knows the member columns its selection reads (member_columns, from each field's
`row_columns` metadata); the resolver passes them to find_member, which reads only
those (members.queries).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from functools import partial
from typing import Any

from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    GraphQLInputType,
    SelectionSetNode,
    Undefined,
    VariableNode,
    coerce_input_value,
    is_type_sub_type_of,
    type_from_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from strawberry import ID
from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryOptional, StrawberryType

from members.errors import DomainError
from schema.errors import ErrorCode, refusal_payload

# The root fields with plans: their resolvers read nothing of Info but the context and
# the field's name (check_role's message), and running one a second time is harmless
# (a read; flightAccrue is idempotent by externalRef).
PLANNED_ROOTS = frozenset({("Query", "member"), ("Mutation", "flightAccrue")})
DEFINITION = "strawberry-definition"  # strawberry's back-reference on graphql-core's fields


class Fallback(Exception):
    """The plan does not answer this request: the ordinary path does, from the start."""


@dataclass(frozen=True, slots=True)
class PlanInfo:
    """What a planned resolver and its permission classes read of strawberry's Info."""

    context: Any
    field_name: str
    # The member read's (Query.member): the row's columns its selection reads
    # (member_columns); None for every column. The resolver hands it to find_member.
    row_columns: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class FieldPlan:
    key: str  # the response key (alias or name)
    read: Callable[[Any, Any], Any]  # (object, context) -> value
    complete: Callable[[Any, Any], Any]  # (value, context) -> JSON value


def _leaf(serialize: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    def complete(value: Any, context: Any) -> Any:
        return serialize(value)

    return complete


def _non_null(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def complete(value: Any, context: Any) -> Any:
        if value is None:
            raise Fallback  # the ordinary path answers the non-null violation
        return inner(value, context)

    return complete


def _nullable(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def complete(value: Any, context: Any) -> Any:
        return None if value is None else inner(value, context)

    return complete


def _list(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def complete(value: Any, context: Any) -> Any:
        return [inner(item, context) for item in value]

    return complete


def _object(fields: list[FieldPlan]) -> Callable[[Any, Any], Any]:
    def complete(value: Any, context: Any) -> Any:
        return render(fields, value, context)

    return complete


def render(fields: list[FieldPlan], source: Any, context: Any) -> dict[str, Any]:
    return {field.key: field.complete(field.read(source, context), context) for field in fields}


def _completer(type_: Any, node: FieldNode) -> Callable[[Any, Any], Any] | None:
    """How a value of this GraphQL type is completed, as graphql-core's complete_value
    does for it; None when the plan cannot complete it."""
    if isinstance(type_, GraphQLNonNull):
        inner = _completer(type_.of_type, node)
        return _non_null(inner) if inner is not None else None
    if isinstance(type_, GraphQLList):
        inner = _completer(type_.of_type, node)
        return _nullable(_list(inner)) if inner is not None else None
    if isinstance(type_, (GraphQLScalarType, GraphQLEnumType)):
        return _nullable(_leaf(type_.serialize)) if node.selection_set is None else None
    if isinstance(type_, GraphQLObjectType) and node.selection_set is not None:
        fields = compile_selection(type_, node.selection_set)
        return _nullable(_object(fields)) if fields is not None else None
    return None  # interfaces, unions: resolve_type is not planned


def _reader(parent: GraphQLObjectType, node: FieldNode) -> Callable[[Any, Any], Any] | None:
    """How the field's value is read from its object, or None: a basic field's attribute,
    or a method of the object (alone, or with info for the access audit), open to all
    or behind the full member view."""
    from schema.members import full_view

    name = node.name.value
    if name == "__typename":
        typename = parent.name
        return lambda source, context: typename
    definition = parent.fields.get(name)
    field = definition.extensions.get(DEFINITION) if definition is not None else None
    if field is None or node.arguments or definition.args:
        return None
    if field.is_basic_field and field.default_resolver is getattr:
        attribute = field.python_name
        return lambda source, context: getattr(source, attribute)
    resolver = field.base_resolver
    if resolver is None or field.is_async or list(field.permission_classes) not in (list(full_view), []):
        return None
    # A method of the object alone, or one that also takes info for the access audit
    # (Member._read reads info.context only, which PlanInfo carries).
    parameters = list(inspect.signature(resolver.wrapped_func).parameters)
    if parameters not in (["self"], ["self", "info"]):
        return None
    takes_info = parameters == ["self", "info"]
    method = resolver.wrapped_func
    permissions = list(field.permission_classes)

    def read(source: Any, context: Any) -> Any:
        info = PlanInfo(context, name)
        for permission in permissions:
            try:
                allowed = permission().has_permission(source, info)
            except Exception:  # noqa: BLE001 - a refusal: the ordinary path says it
                raise Fallback from None
            if not allowed:
                raise Fallback
        return method(source, info) if takes_info else method(source)

    return read


def compile_selection(parent: GraphQLObjectType, selection_set: SelectionSetNode) -> list[FieldPlan] | None:
    fields = []
    keys = set()
    for node in selection_set.selections:
        if not isinstance(node, FieldNode) or node.directives:
            return None
        key = node.alias.value if node.alias else node.name.value
        if key in keys:
            return None  # merged fields: left to graphql-core
        keys.add(key)
        read = _reader(parent, node)
        definition = parent.fields.get(node.name.value)
        if node.name.value == "__typename":
            complete = _leaf(str)
        else:
            complete = _completer(definition.type, node) if definition is not None else None
        if read is None or complete is None:
            return None
        fields.append(FieldPlan(key, read, complete))
    return fields


@dataclass(repr=False)
class Plan:
    """A compiled document: its one operation and root field."""

    schema: GraphQLSchema
    operation: OperationDefinitionNode
    node: FieldNode
    definition: Any  # graphql-core's field
    field: Any  # strawberry's field
    payload: type | None  # a mutation's payload class (userErrors)
    key: str
    complete: Callable[[Any, Any], Any]
    arguments: list[tuple[str, str, Callable[[Any], Any] | None]]  # (GraphQL name, Python name, conversion)
    row_columns: tuple[str, ...] | None = None  # PlanInfo.row_columns
    # The resolver's arguments straight from the request's variables (direct_binder), or
    # None: graphql-core's coercion (_coerced_arguments).
    direct: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def operation_name(self) -> str | None:
        return self.operation.name.value if self.operation.name else None

    async def answer(self, context: Any, variables: dict[str, Any] | None) -> dict[str, Any]:
        """The response's data; Fallback when the ordinary path must answer."""
        if self.direct is not None:
            kwargs = self.direct(variables or {})
        else:
            kwargs = self._coerced_arguments(variables)
        info = PlanInfo(context, self.node.name.value, self.row_columns)
        for permission in self.field.permission_classes:
            try:
                allowed = permission().has_permission(None, info)
            except Exception:  # noqa: BLE001 - FORBIDDEN, UNAUTHENTICATED: the ordinary path says it
                raise Fallback from None
            if not allowed:
                raise Fallback
        try:
            value = await self.field.base_resolver.wrapped_func(None, info, **kwargs)
        except DomainError as error:
            if self.payload is None or error.code not in ErrorCode.__members__:
                raise Fallback from None
            value = refusal_payload(self.payload, error)
        except Exception:  # noqa: BLE001 - the ordinary path runs it again and answers the error
            raise Fallback from None
        try:
            return {self.key: self.complete(value, context)}
        except Fallback:
            raise
        except Exception:  # noqa: BLE001 - e.g. a value its scalar cannot serialise: the ordinary path's field error
            raise Fallback from None

    def _coerced_arguments(self, variables: dict[str, Any] | None) -> dict[str, Any]:
        """The resolver's arguments by graphql-core's coercion of the variables and then
        of the arguments (literals, defaults), each converted as strawberry converts it."""
        coerced = get_variable_values(
            self.schema, self.operation.variable_definitions or (), variables or {}, max_errors=1)
        if not isinstance(coerced, VariableValues):
            raise Fallback  # the variables' errors, as the ordinary path words them
        try:
            values = get_argument_values(self.definition, self.node, coerced)
            return {
                python_name: values[name] if convert is None else convert(values[name])
                for name, python_name, convert in self.arguments if name in values
            }
        except Exception:  # noqa: BLE001 - an argument the ordinary path refuses
            raise Fallback from None


def direct_binder(
    schema: GraphQLSchema, operation: OperationDefinitionNode, node: FieldNode, definition: Any,
    arguments: list[tuple[str, str, Callable[[Any], Any] | None]],
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """The resolver's arguments straight from the request's variables, when each
    argument given is one variable without a default or directives, used once, of a type
    the argument takes, and the operation declares no other variable (`member(id: $id)`,
    `flightAccrue(input: $input)`): each variable's value coerced as get_variable_values
    coerces it (a scalar or enum by its own coerce_input_value, the parse_value of ID
    and String; anything else by graphql-core's coerce_input_value), then converted as
    the argument is (_argument: an input object by _input_converter). graphql-core's
    coercion of the variables and then of the arguments (their types looked up from the
    AST, value sources: a fifth of a member read's plan time, a sixth of an accrual's)
    is not needed. A variable absent is no argument (the resolver's default, which is the
    argument's GraphQL default), a null is None. None when the document does not qualify
    (literals, defaults: graphql-core's, as before). A value graphql-core would refuse (a
    required variable absent, a null for a non-null type, one that does not coerce) is a
    Fallback: the ordinary path words the error."""
    declared = {d.variable.name.value: d for d in operation.variable_definitions or ()}
    conversions = {name: (python_name, convert) for name, python_name, convert in arguments}
    steps = []
    for argument in node.arguments:
        name = argument.name.value
        if not isinstance(argument.value, VariableNode) or name not in conversions:
            return None
        variable = declared.pop(argument.value.name.value, None)
        if variable is None or variable.default_value is not None or variable.directives:
            return None
        type_ = type_from_ast(schema, variable.type)
        if type_ is None or not is_type_sub_type_of(schema, type_, definition.args[name].type):
            return None
        non_null = isinstance(type_, GraphQLNonNull)
        python_name, convert = conversions[name]
        steps.append((variable.variable.name.value, python_name, _coercion(type_.of_type if non_null else type_),
                      convert, non_null))
    if declared:
        return None  # a variable bound to no argument: graphql-core's coercion checks it

    def bind(variables: dict[str, Any]) -> dict[str, Any]:
        kwargs = {}
        for variable, python_name, coerce, convert, non_null in steps:
            if variable not in variables:
                if non_null:
                    raise Fallback  # a required variable not given
                continue  # absent: the resolver's default
            value = variables[variable]
            if value is None:
                if non_null:
                    raise Fallback
            else:
                try:
                    value = coerce(value)
                except Exception:  # noqa: BLE001 - a leaf's refusal, as coerce_input_value's: no value
                    raise Fallback from None
                if value is Undefined:
                    raise Fallback  # does not coerce: the ordinary path words it
            if convert is not None:
                try:
                    value = convert(value)
                except Exception:  # noqa: BLE001 - an argument the ordinary path refuses
                    raise Fallback from None
            kwargs[python_name] = value
        return kwargs

    return bind


def _coercion(type_: GraphQLInputType) -> Callable[[Any], Any]:
    """How a non-null value of a nullable input type is coerced, as graphql-core's
    coerce_input_value coerces it (Undefined when it does not coerce, or, for a scalar or
    an enum, its own refusal, which coerce_input_value turns into Undefined): a leaf's
    own coerce_input_value (ID's and String's parse_value) called directly."""
    if isinstance(type_, (GraphQLScalarType, GraphQLEnumType)):
        return type_.coerce_input_value
    return partial(coerce_input_value, type_=type_)


def compile_plan(strawberry_schema: Any, document: Any) -> Plan | None:
    """The plan of a parsed, valid document, or None when it has none."""
    schema: GraphQLSchema = strawberry_schema._schema
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or len(document.definitions) != 1:
        return None
    operation = operations[0]
    root = {OperationType.QUERY: schema.query_type, OperationType.MUTATION: schema.mutation_type}.get(operation.operation)
    selections = operation.selection_set.selections
    if root is None or operation.directives or len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    node = selections[0]
    if node.directives or (root.name, node.name.value) not in PLANNED_ROOTS:
        return None
    definition = root.fields[node.name.value]
    field = definition.extensions.get(DEFINITION)
    complete = _completer(definition.type, node)
    if field is None or complete is None:
        return None
    payload = None
    if operation.operation is OperationType.MUTATION:
        payload = field.type if hasattr(field.type, "__strawberry_definition__") else None
        if payload is None:
            return None
    arguments = [_argument(strawberry_schema, argument) for argument in field.arguments]
    member_read = (root.name, node.name.value) == MEMBER_READ
    return Plan(
        schema=schema, operation=operation, node=node, definition=definition, field=field, payload=payload,
        key=node.alias.value if node.alias else node.name.value, complete=complete, arguments=arguments,
        row_columns=member_columns(definition.type, node) if member_read else None,
        direct=direct_binder(schema, operation, node, definition, arguments),
    )


MEMBER_READ = ("Query", "member")


def member_columns(type_: Any, node: FieldNode) -> tuple[str, ...] | None:
    """The member row's columns a member read's selection needs (issue 12: the floor
    reads the columns asked, not all forty): each field's `row_columns` metadata
    (schema.members.row_columns); the card view's attributes (id, cardNumber, tier:
    Member.from_row's) and the scope's columns are always read (members.queries).
    None, every column, when a field does not say what it reads. A field that reads
    more than it says raises on the partial row: the plan then gives up and the
    ordinary path, reading the whole row, answers (tests/api/test_compiled_plans.py
    compares the two)."""
    from schema.members import ROW_COLUMNS

    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if not isinstance(type_, GraphQLObjectType) or type_.name != "Member" or node.selection_set is None:
        return None
    columns: list[str] = []
    for selection in node.selection_set.selections:
        name = selection.name.value
        if name == "__typename":
            continue
        field = type_.fields[name].extensions.get(DEFINITION)
        if field is not None and field.is_basic_field and field.default_resolver is getattr:
            continue  # set by Member.from_row from the card view's columns
        said = (field.metadata or {}).get(ROW_COLUMNS) if field is not None else None
        if said is None:
            return None
        columns.extend(column for column in said if column not in columns)
    return tuple(columns)


_AS_THEY_ARE = (str, int, float, bool)  # scalars strawberry hands to a resolver unconverted (ID is a str)


def _argument(strawberry_schema: Any, argument: Any) -> tuple[str, str, Callable[[Any], Any] | None]:
    """An argument's GraphQL and Python names and its conversion to what the resolver
    takes: none for a plain scalar, strawberry's own (convert_argument, as its
    resolvers get them) for anything else (input objects, enums, lists)."""
    config = strawberry_schema.config
    name = config.name_converter.from_argument(argument)
    type_ = argument.type.of_type if type(argument.type) is StrawberryOptional else argument.type
    if type_ is ID or (isinstance(type_, type) and issubclass(type_, _AS_THEY_ARE)):
        return name, argument.python_name, None
    registry = strawberry_schema.schema_converter.scalar_registry
    compiled = _input_converter(type_, registry, config)
    if compiled is not None:
        return name, argument.python_name, compiled

    def convert(value: Any) -> Any:
        return convert_argument(value, argument.type, registry, config, path=(name,))

    return name, argument.python_name, convert


def _input_converter(type_: Any, registry: Any, config: Any) -> Callable[[Any], Any] | None:
    """convert_argument of an input object compiled for its type once: the same steps
    (every field without a default first None, each field given converted by its type,
    the class called with them) without looking each field's type and name up again on
    every request (a sixth of an accrual's GraphQL time). Only plain input objects whose
    fields are scalars (not GlobalID), optional scalars or such input objects; None
    for anything else (enums, lists, from_input, Maybe), which convert_argument keeps."""
    definition = getattr(type_, "__strawberry_definition__", None)
    if definition is None or not getattr(definition, "is_input", False) or definition.from_input is not None:
        return None
    defaults = {
        field.python_name: None for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }
    fields: list[tuple[str, str, Callable[[Any], Any] | None]] = []
    for field in definition.fields:
        field_type = field.resolve_type(type_definition=definition)
        optional = type(field_type) is StrawberryOptional
        inner = field_type.of_type if optional else field_type
        if isinstance(inner, StrawberryType) or inner is GlobalID:
            return None  # lists, Maybe, lazy and generic types: convert_argument's
        if is_scalar(inner, registry):
            convert = None
        else:
            convert = _input_converter(inner, registry, config)
            if convert is None:
                return None
            if optional:
                convert = _or_none(convert)
        fields.append((config.name_converter.from_field(field), field.python_name, convert))

    def convert_input(value: Any) -> Any:
        kwargs = dict(defaults)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                given = value[graphql_name]
                kwargs[python_name] = given if convert is None else convert(given)
        return type_(**kwargs)

    return convert_input


def _or_none(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)

