"""Every GraphQL example in the README is valid against the served schema, so the
first queries a newcomer pastes into GraphiQL do not fail on a renamed field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import DocumentNode, parse, print_ast, validate

from schema.build import build_schema

README = Path(__file__).resolve().parents[2] / "README.md"


def _examples() -> list[str]:
    """Each operation of each ```graphql block (a block holds several, one per user)."""
    documents = []
    for block in re.findall(r"```graphql\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for definition in parse(block).definitions:
            documents.append(print_ast(DocumentNode(definitions=(definition,))))
    return documents


def test_the_readme_has_examples():
    assert len(_examples()) >= 10


@pytest.mark.parametrize("document", _examples(), ids=lambda d: " ".join(d.split())[:60])
def test_readme_example_is_valid(document):
    schema = build_schema()._schema
    errors = validate(schema, parse(document))
    assert not errors, [e.message for e in errors]
