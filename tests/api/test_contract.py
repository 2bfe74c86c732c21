"""The served schema keeps the public contract, and schema.graphql matches the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, build_schema as parse_sdl

from schema.build import build_schema

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT.parent / "shared" / "spec" / "contract.graphql"


# Output fields served nullable where the contract says non-null: the object may have
# moved outside the caller's scope since (an office's old tier change of a member now in
# another office). Null there, instead of failing the whole page (schema.reads).
SCOPED_NULLABLE = {"TierChange.member"}


@pytest.fixture(scope="module")
def served():
    return build_schema()._schema


def _contract():
    if not CONTRACT.is_file():
        pytest.skip(f"contract not found at {CONTRACT}")
    return parse_sdl(CONTRACT.read_text(encoding="utf-8"))


def test_every_contract_type_field_and_argument_is_served(served):
    contract = _contract()
    missing: list[str] = []
    for name, expected in contract.type_map.items():
        if name.startswith("__"):
            continue
        actual = served.type_map.get(name)
        if actual is None:
            missing.append(f"type {name}")
            continue
        if isinstance(expected, GraphQLEnumType):
            missing += [f"{name}.{v}" for v in expected.values if v not in actual.values]
        if isinstance(expected, (GraphQLObjectType, GraphQLInputObjectType)):
            for field_name, field in expected.fields.items():
                got = actual.fields.get(field_name)
                if got is None:
                    missing.append(f"field {name}.{field_name}")
                    continue
                served_type = str(got.type) + ("!" if f"{name}.{field_name}" in SCOPED_NULLABLE else "")
                if served_type != str(field.type):
                    missing.append(f"type of {name}.{field_name}: {got.type} != {field.type}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    got_arg = got.args.get(arg_name)
                    if got_arg is None:
                        missing.append(f"argument {name}.{field_name}({arg_name})")
                    elif str(got_arg.type) != str(arg.type):
                        missing.append(f"type of {name}.{field_name}({arg_name}): {got_arg.type} != {arg.type}")
    assert missing == []


def test_every_type_and_field_has_a_description(served):
    undescribed = []
    for name, graphql_type in served.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not graphql_type.description:
            undescribed.append(name)
        for field_name, field in getattr(graphql_type, "fields", {}).items():
            if not field.description:
                undescribed.append(f"{name}.{field_name}")
    assert undescribed == []


def test_committed_schema_graphql_matches_the_code():
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed.strip() == build_schema().as_str().strip(), "run `make schema` and commit schema.graphql"
