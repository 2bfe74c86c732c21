"""The access audit (members.access_log): every read of a member's personal fields by
staff (birth date, phone, email, address) or by a partner or the airline (names) is one
row per request and member, written in batches after the read; a member reading
themself is not recorded; admins page through a member's rows with memberAccessLog."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from api.app import create_app
from loyalty.rules import load_rules
from members.access import Caller, Role, resolve_caller
from members.access_log import AccessLog, PersonalField
from members.addresses import Address
from members.models import MemberAccess
from members.services import Enrolment, enroll as enroll_member
from schema.build import build_schema
from schema.context import Context
from tests.api.conftest import Api, as_member, data, enroll, error_codes, office_address
from tests.api.loyalty_factories import loyalty_register_partner
from tests.statements import counted_statements

LOG = """query($id: ID!, $first: Int, $after: String) { memberAccessLog(memberId: $id, first: $first, after: $after) {
  totalCount edges { cursor node { at actor role partnerCode fields } } pageInfo { hasNextPage endCursor } } }"""
CONTACTS = "query($id: ID) { member(id: $id) { phone email again: phone birthDate } }"


@pytest.fixture
async def app_api(db):
    """An Api and its app (its access log is `app.state.access_log`)."""
    app = create_app(db, manage_orm=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        api = Api(client=client, settings=db)
        api.app = app
        yield api


async def access_log(api, member: dict, **variables) -> dict:
    await api.app.state.access_log.flush()
    return data(await api.gql(LOG, {"id": member["id"], **variables}, as_=("admin",)))["memberAccessLog"]


async def test_a_staff_read_of_contacts_is_one_row_with_the_fields_read(app_api):
    api = app_api
    member = await enroll(app_api, fields="id cardNumber")  # the enrolment reads no personal field
    assert (await access_log(api, member))["totalCount"] == 0
    got = data(await api.gql(CONTACTS, {"id": member["id"]}, as_=("office", "PEK01", "clerk-7")))["member"]
    assert got["phone"] == got["again"] and got["phone"].startswith("+86")
    log = await access_log(api, member)
    assert log["totalCount"] == 1  # phone twice, email, birth date: one request, one row
    node = log["edges"][0]["node"]
    assert (node["actor"], node["role"], node["partnerCode"]) == ("office:clerk-7@PEK01", "office", None)
    assert node["fields"] == ["BIRTH_DATE", "PHONE", "EMAIL"]
    # A list page of the office reading addresses: one more row for this member.
    page = "{ members(first: 10) { edges { node { familyName address { city } } } } }"
    assert len(data(await api.gql(page, as_=("office", "PEK01")))["members"]["edges"]) == 1
    log = await access_log(api, member)
    assert [e["node"]["fields"] for e in log["edges"]] == [["ADDRESS"], ["BIRTH_DATE", "PHONE", "EMAIL"]]


async def test_what_is_not_recorded_the_member_themself_and_staff_reading_names(app_api):
    api = app_api
    member = await enroll(app_api, fields="id cardNumber")
    data(await api.gql("{ me { phone email birthDate address { city } } }", as_=as_member(member)))
    data(await api.gql("query($id: ID) { member(id: $id) { familyName givenName tier } }", {"id": member["id"]},
                       as_=("admin",)))
    assert (await access_log(api, member))["totalCount"] == 0


async def test_a_partner_and_the_airline_reading_names_are_recorded(app_api):
    api = app_api
    await loyalty_register_partner("HOTEL9")
    member = await enroll(app_api, fields="id cardNumber")
    query = "query($card: String) { member(cardNumber: $card) { familyName givenName tier } }"
    data(await api.gql(query, {"card": member["cardNumber"]}, as_=("partner", "HOTEL9", "hotel-desk")))
    data(await api.gql(query, {"card": member["cardNumber"]}, as_=("airline", None, "gate-3")))
    data(await api.gql("query($card: String) { member(cardNumber: $card) { tier } }", {"card": member["cardNumber"]},
                       as_=("airline",)))  # no personal field: nothing
    nodes = [e["node"] for e in (await access_log(api, member))["edges"]]
    assert [(n["actor"], n["role"], n["partnerCode"], n["fields"]) for n in nodes] == [
        ("airline:gate-3", "airline", None, ["NAMES"]),
        ("partner:hotel-desk@HOTEL9", "partner", "HOTEL9", ["NAMES"]),
    ]


async def test_a_read_the_compiled_plan_gives_up_on_is_still_one_row(app_api):
    # The plan reads the names, then meets a field the partner may not see (status) and
    # leaves the request to the ordinary path, which reads the names again: one request,
    # one row (not one per path).
    api = app_api
    await loyalty_register_partner("HOTEL9")
    member = await enroll(app_api, fields="id cardNumber")
    query = "query($card: String) { member(cardNumber: $card) { familyName status } }"
    result = await api.gql(query, {"card": member["cardNumber"]}, as_=("partner", "HOTEL9", "hotel-desk"))
    assert error_codes(result) == ["FORBIDDEN"]
    nodes = [e["node"] for e in (await access_log(api, member))["edges"]]
    assert [(n["actor"], n["fields"]) for n in nodes] == [("partner:hotel-desk@HOTEL9", ["NAMES"])]


async def test_admins_page_the_log_newest_first_and_only_admins(app_api):
    api = app_api
    member = await enroll(app_api, fields="id cardNumber")
    for clerk in ("a", "b", "c"):
        data(await api.gql(CONTACTS, {"id": member["id"]}, as_=("office", "PEK01", clerk)))
    first = await access_log(api, member, first=2)
    assert [e["node"]["actor"] for e in first["edges"]] == ["office:c@PEK01", "office:b@PEK01"]
    assert first["pageInfo"]["hasNextPage"] and first["totalCount"] == 3
    rest = await access_log(api, member, first=2, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["actor"] for e in rest["edges"]] == ["office:a@PEK01"] and not rest["pageInfo"]["hasNextPage"]
    refused = await api.gql(LOG, {"id": member["id"]}, as_=("branch", "NCB"))
    assert error_codes(refused) == ["FORBIDDEN"]
    bad = await api.gql(LOG, {"id": member["id"], "after": "nonsense"}, as_=("admin",))
    assert error_codes(bad) == ["INVALID"]
    assert error_codes(await api.gql(LOG, {"id": member["id"], "first": 1000}, as_=("admin",))) == ["INVALID"]
    for unknown_id in ("not-an-id", "99999999999999999999", "-3"):
        unknown = data(await api.gql(LOG, {"id": unknown_id}, as_=("admin",)))["memberAccessLog"]
        assert (unknown["totalCount"], unknown["edges"]) == (0, [])


async def test_a_page_of_100_members_with_phones_costs_no_extra_statement_and_one_insert(db):
    """The request runs the same statements with or without the audit; the batch of 100
    rows is then one INSERT."""
    rules = load_rules()
    today = date(2026, 3, 1)
    admin = Caller(Role.ADMIN, "test")
    for n in range(100):
        await enroll_member(admin, Enrolment("Qian", f"N{n:03d}", Address(**office_address("PEK01")),
                                             phone=f"+86 137 {n:08d}"), today=today)
    caller = await resolve_caller(Role.OFFICE, "clerk", "PEK01")
    query = "{ members(first: 100) { edges { node { id phone } } } }"
    counts = []
    log = AccessLog()
    for audit in (None, log):
        context = Context(caller=caller, auth_error=None, timezone=db.tz, settings=db, rules=rules, access_log=audit)
        with counted_statements() as statements:
            result = await build_schema().execute(query, context_value=context)
        assert result.errors is None and len(result.data["members"]["edges"]) == 100
        counts.append(len(statements))
    assert counts[0] == counts[1]  # the audit adds nothing to the request
    assert log.pending == 100
    with counted_statements() as statements:
        assert await log.flush() == 100
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1 and inserts[0].count("member_access") == 1
    assert await MemberAccess.filter(field_bits=PersonalField.PHONE, actor="office:clerk@PEK01").count() == 100


async def test_a_full_buffer_flushes_itself_and_a_failed_write_keeps_the_rows(db, monkeypatch):
    log = AccessLog(max_rows=3)
    caller = Caller(Role.ADMIN, "auditor")
    for member_id in (1, 2):
        log.note(caller, 1, member_id, PersonalField.PHONE)
    log.note(caller, 1, 1, PersonalField.EMAIL)  # the same request and member: merged
    assert log.pending == 2 and log._flushing is None
    log.note(caller, 2, 1, PersonalField.PHONE)  # a third row: a flush is started
    await log._flushing
    assert (log.pending, log.written) == (0, 3)
    assert sorted(await MemberAccess.all().values_list("member_id", "field_bits")) == [
        (1, PersonalField.PHONE), (1, PersonalField.PHONE | PersonalField.EMAIL), (2, PersonalField.PHONE)]

    import members.access_log as access_log_module

    class Broken:
        async def run(self, connection, rows):
            raise OSError("disk full")

    monkeypatch.setattr(access_log_module, "_insert", lambda: Broken())
    log.note(caller, 3, 5, PersonalField.ADDRESS)
    assert await log.flush() == 0 and log.pending == 1  # kept for the next flush
    monkeypatch.undo()
    assert await log.flush() == 1 and await MemberAccess.filter(member_id=5).count() == 1


async def test_the_lifespan_writes_what_is_left_at_shutdown(db):
    from dataclasses import replace

    app = create_app(replace(db, access_log_seconds=3600), manage_orm=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            api = Api(client=client, settings=db)
            member = await enroll(api, fields="id cardNumber")
            data(await api.gql(CONTACTS, {"id": member["id"]}, as_=("admin",)))
    # No interval has passed (an hour): the row is the shutdown's flush.
    assert await MemberAccess.filter(member_id=int(member["id"])).count() == 1


async def test_shutdown_waits_for_a_flush_entering_its_transaction(db, monkeypatch):
    """The flusher is stopped, not cancelled: shut down while its flush holds the
    connection before its BEGIN (the moment a cancel would keep the connection forever,
    and the last flush would wait for it), shutdown ends and every row is written."""
    import asyncio

    from tortoise.transactions import in_transaction

    context = in_transaction()
    wrapper = type(getattr(context, "connection", None) or context.client)  # SQLite's or the pool's
    real_begin = wrapper.begin
    entered, release = asyncio.Event(), asyncio.Event()

    async def held_begin(self):
        if not entered.is_set():  # the first transaction only: the periodic flush's
            entered.set()
            await release.wait()
        await real_begin(self)

    monkeypatch.setattr(wrapper, "begin", held_begin)
    caller = Caller(Role.ADMIN, "auditor")
    log = AccessLog(interval=0)
    log.note(caller, 1, 7, PersonalField.PHONE)
    async with asyncio.timeout(30):  # a hang fails the test instead of the suite
        async with log.running():
            await entered.wait()  # the periodic flush holds the connection, before BEGIN
            log.note(caller, 2, 8, PersonalField.EMAIL)  # for the shutdown's flush
            # Let the flush go on once the shutdown below has begun.
            asyncio.get_running_loop().call_soon(release.set)
        assert (log.pending, log.written) == (0, 2)
        assert sorted(await MemberAccess.all().values_list("member_id", flat=True)) == [7, 8]
