"""Prepared documents (schema.prepared): a document is parsed, measured and validated
once per text, its price kept by the values of the variables that price it (page sizes)
and of no other variable."""

from __future__ import annotations

from schema.build import build_schema
from tests.api.conftest import data, enroll, error_codes

PAGED = "query($n: Int, $m: Int) { members(first: $n) { edges { node { ledger(first: $m) { edges { node { id kind source } } } } } } }"
READ = "query($id: ID!) { member(id: $id) { id tier } }"


async def test_the_same_text_is_priced_by_its_page_sizes(api):
    # 100 x 100 ledger entries: over the 5,000 budget; 2 x 2: far under. Same text.
    assert error_codes(await api.gql(PAGED, {"n": 100, "m": 100}, as_=("admin",))) == ["QUERY_TOO_COMPLEX"]
    assert "members" in data(await api.gql(PAGED, {"n": 2, "m": 2}, as_=("admin",)))
    assert error_codes(await api.gql(PAGED, {"n": 100, "m": 100}, as_=("admin",))) == ["QUERY_TOO_COMPLEX"]
    assert error_codes(await api.gql(PAGED, {}, as_=("admin",))) == ["QUERY_TOO_COMPLEX"]  # unsent: priced at the most


async def test_a_member_read_is_measured_once_whatever_the_id(api):
    first, second = await enroll(api), await enroll(api)
    documents = build_schema().documents
    prepared = documents.get(READ)
    assert prepared.pricing_variables == ()
    for member in (first, second, first):
        assert documents.refusals(prepared, READ, {"id": member["id"]}, True) == []
    assert len(prepared.measures) == 1
    assert documents.get(READ) is prepared  # parsed once


def test_a_text_that_does_not_parse_is_not_kept():
    documents = build_schema().documents
    assert documents.get("query { member(") is None
    assert documents.plan("query { member(") is None


def test_validation_runs_once_per_text_and_after_the_limits():
    documents = build_schema().documents
    text = "{ nonsense }"
    prepared = documents.get(text)
    assert prepared.errors is None  # not validated until a request within the limits needs it
    errors = documents.refusals(prepared, text, {}, True)
    assert [e.message for e in errors] == ["Cannot query field 'nonsense' on type 'Query'."]
    assert prepared.errors is not None and documents.refusals(prepared, text, {}, True)[0].message == errors[0].message
