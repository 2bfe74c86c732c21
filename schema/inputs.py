"""Text no database can store, refused for the whole request before it runs.

PostgreSQL refuses NUL characters in text, and a lone UTF-16 surrogate (which JSON's
\\ud800 escapes can carry) cannot be encoded for SQLite: either would fail deep inside a
service as an internal error. One check over the document and its variables answers
INVALID instead, whatever the field.
"""

from __future__ import annotations

import re
from typing import Any

from graphql import BREAK, DocumentNode, GraphQLError, StringValueNode, Visitor, visit

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "text must not contain NUL characters or unpaired UTF-16 surrogates"


def has_unstorable_text(value: Any) -> bool:
    """Whether any string in `value` (a str, or JSON-like lists and dicts of them, keys
    included) holds a character no database column can store."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class _EscapedText(Visitor):
    """Finds a string literal whose escapes (\\u0000, \\ud800) spell unstorable text."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> Any:
        if UNSTORABLE.search(node.value):
            self.found = True
            return BREAK
        return None


def unstorable_text_error(query: str | None, document: DocumentNode | None, variables: Any) -> GraphQLError | None:
    """INVALID when the document (its text, or a string literal's escapes) or a
    variable carries unstorable text."""
    found = has_unstorable_text(query) or has_unstorable_text(variables)
    if not found and document is not None and query is not None and "\\u" in query:
        escaped = _EscapedText()
        visit(document, escaped)
        found = escaped.found
    return GraphQLError(MESSAGE, extensions={"code": "INVALID"}) if found else None
