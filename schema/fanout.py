"""Shared execution of live subscriptions: one execution and one JSON encoding of a
subscription's selection per event for every subscriber that would get the same
result, whatever the number of subscribers.

Two subscribers get the same result for an event when they sent the same document
(and operation name), the same values for the variables the selection itself uses,
and hold the same visibility: the same role and scope (a member: the same member).
The filters and `after:` of the subscription field are not part of the selection:
each subscriber's own feed (loyalty.feed) decides WHICH events it gets, by its own
scope and filters, and from where; only the result for an event it gets is shared.
Subscribers who share all of that form a `Selection`; the first of them to need an
event's result runs it (strawberry's own pipeline: validation, permissions, error
masking, for a one-event subscription) and encodes it as JSON text, the others reuse
the text. Each then writes it to its own socket in the frame of its own protocol
and operation id (`OperationChannel`, which the WebSocket handlers of api.app set for
the operation's task).

Without a channel (no WebSocket handler of ours, e.g. a test calling
schema.subscribe), the subscription yields its events and strawberry executes them
per subscriber, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from graphql import FieldNode, OperationDefinitionNode, VariableNode, Visitor, parse, visit

from members.access import Caller

# Results kept per selection (an event's JSON text): subscribers of one selection
# deliver in step once live; one that lags behind more than this only recomputes.
RESULTS_KEPT = 256
# How the one-event execution finds its event: a key of Context.extra.
SINGLE_EVENT = "fanout_event"


@dataclass
class OperationChannel:
    """One subscription operation on one WebSocket: what it asked and how to send it a
    result (set by the protocol handler for the operation's task)."""

    schema: Any
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    # Sends the JSON text of one result ({"data": ..., "errors": ...}) in this
    # protocol's frame for this operation id.
    send: Callable[[str], Awaitable[None]]


current_channel: contextvars.ContextVar[OperationChannel | None] = contextvars.ContextVar("current_channel", default=None)


def frame_prefix(operation_id: str, message_type: str) -> str:
    """The start of a result frame; the payload text and "}" complete it."""
    return '{"type":%s,"id":%s,"payload":' % (json.dumps(message_type), json.dumps(operation_id))


def visibility(caller: Caller) -> Hashable:
    """What of a caller decides what a selection shows: role and resolved scope (for a
    member, the member). The token's subject of other roles shows nowhere."""
    return (caller.role, caller.scope, caller.office_id, caller.branch_id, caller.member_id, caller.blocked,
            caller.subject if caller.blocked else None)


class _Names(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.names.add(node.name.value)


@lru_cache(maxsize=256)
def selection_variables(query: str, operation_name: str | None) -> frozenset[str] | None:
    """The variables an event's result may depend on: every variable the document uses
    except in the arguments of the subscription's one root field (its filters and
    `after:`, which choose events, not what a result shows). None: all of them (a
    document of another shape)."""
    document = parse(query)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    if len(chosen) != 1:
        return None
    roots = chosen[0].selection_set.selections
    if len(roots) != 1 or not isinstance(roots[0], FieldNode):
        return None
    names = _Names()
    root = roots[0]
    for node in [*(root.directives or ()), *(chosen[0].directives or ()), *([root.selection_set] if root.selection_set else [])]:
        visit(node, names)
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            visit(definition, names)
    return frozenset(names.names)


def selection_key(channel: OperationChannel, caller: Caller) -> Hashable:
    variables = channel.variables or {}
    used = selection_variables(channel.query, channel.operation_name)
    if used is not None:
        variables = {name: variables[name] for name in used if name in variables}
    return (channel.query, channel.operation_name, json.dumps(variables, sort_keys=True, default=str), visibility(caller))


class _NotExecuted(Exception):
    """The subscriber executing a result left (or failed) before it was done."""


@dataclass(eq=False)
class Selection:
    """Subscribers who get the same result for an event (see the module docstring)."""

    key: Hashable
    channel: OperationChannel  # the first subscriber's document and variables (its `send` is not kept)
    make_context: Callable[[object], Any]  # a fresh context for one event
    registry: SharedSelections
    members: int = 0
    results: OrderedDict[int, asyncio.Future[str]] = field(default_factory=OrderedDict)  # by event position

    async def result(self, event: Any) -> str:
        """The JSON text of this selection's result for the event: executed by the first
        subscriber to ask, in its own task (a selection that awaits nothing, no member
        read, is done before any other subscriber runs: no second wake-up for them),
        reused by the others."""
        while True:
            pending = self.results.get(event.id)
            if pending is None:
                return await self._execute_for_all(event)
            if not pending.done():
                with contextlib.suppress(_NotExecuted):
                    # Shielded: this subscriber leaving does not cancel it for the others.
                    await asyncio.shield(pending)
            if pending.exception() is None:
                return pending.result()
            # The subscriber executing it left or failed: the next one to ask executes it.

    async def _execute_for_all(self, event: Any) -> str:
        pending = asyncio.get_running_loop().create_future()
        self.results[event.id] = pending
        while len(self.results) > RESULTS_KEPT:
            self.results.popitem(last=False)
        try:
            text = await self._execute(event)
        except BaseException:
            if self.results.get(event.id) is pending:
                del self.results[event.id]
            pending.set_exception(_NotExecuted())
            pending.exception()  # retrieved: nobody else may be waiting
            raise
        pending.set_result(text)
        return text

    async def _execute(self, event: Any) -> str:
        self.registry.executions += 1
        channel = self.channel
        return json.dumps(await execute_one(
            channel.schema, channel.query, channel.variables, channel.operation_name, self.make_context(event)))


async def execute_one(schema: Any, query: str, variables: dict[str, Any] | None, operation_name: str | None,
                      context: Any) -> dict[str, Any]:
    """The result of a subscription document for the one event of ``context``
    (extra[SINGLE_EVENT]), through strawberry's own pipeline: {"data": ..., "errors": ...}."""
    stream = await schema.subscribe(query, variable_values=variables, context_value=context, operation_name=operation_name)
    try:
        result = await anext(stream)
    finally:
        await stream.aclose()
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


async def _never_sends(payload: str) -> None:
    raise RuntimeError("a selection sends nothing itself")


class SharedSelections:
    """The selections of one server process's live subscriptions."""

    def __init__(self) -> None:
        self._selections: dict[Hashable, Selection] = {}
        self.executions = 0  # one-event executions run so far (tests, diagnostics)

    def __len__(self) -> int:
        return len(self._selections)

    def join(self, channel: OperationChannel, caller: Caller, make_context: Callable[[object], Any]) -> Selection:
        key = selection_key(channel, caller)
        selection = self._selections.get(key)
        if selection is None:
            document = replace(channel, send=_never_sends)  # holds nothing of the first subscriber's connection
            selection = self._selections[key] = Selection(key, document, make_context, self)
        selection.members += 1
        return selection

    def leave(self, selection: Selection) -> None:
        selection.members -= 1
        if selection.members <= 0 and self._selections.get(selection.key) is selection:
            del self._selections[selection.key]
