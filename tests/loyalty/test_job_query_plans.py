"""The daily jobs find their candidates through indexes, in batches by key, so a run
costs what is due and not the whole programme: `miles expire` reads the partial index
of OPEN lots (credit_lot_open_expiry), `tiers review` the (validUntil, id) index of
members; neither sorts its candidates. Plans as in tests/members/test_list_query_plans."""

from __future__ import annotations

from datetime import date

from loyalty.jobs import expire_miles
from loyalty.tiers import review_tiers
from members.enums import Tier
from tests.loyalty.test_expiry_job import RULES, credit, new_member
from tests.loyalty.test_tier_review import flight, member_with
from tests.statements import captured, is_postgres, plan, plan_problems

D = date.fromisoformat


async def test_expiry_reads_the_open_lots_index_in_batches(db):
    for name in ("Wang", "Li", "Zhao", "Chen", "Liu"):
        member = await new_member(name)
        await credit(member, D("2026-01-15"), 500, expires_on=D("2029-01-31"))
        await credit(member, D("2026-02-15"), 300, expires_on=D("2029-02-28"))
        await credit(member, D("2026-06-15"), 100, expires_on=D("2029-06-30"))  # not yet expired
    with captured() as statements:
        summary = await expire_miles(D("2029-03-01"), batch_size=3)
    assert (summary.members, summary.miles) == (5, 5 * 800)
    candidates = [s for s in statements.selects("credit_lot") if '"member_id"=?' not in s.sql.replace("$", "?")]
    batches = [s for s in candidates if "ORDER BY" in s.sql]
    # 3 keys (members 1-3), then 3 keys (members 4, 5 and 4 again: members 1-3's later
    # lots were closed with them), then the empty read after member 4's last lot
    assert len(batches) == 3
    for statement in candidates:
        lines = await plan(statement)
        assert any("credit_lot_open_expiry" in line for line in lines), (statement.sql, lines)
    for statement in batches:
        lines = await plan(statement)
        assert plan_problems(lines, "credit_lot") == [], (statement.sql, lines)


async def test_review_reads_members_due_by_valid_until_in_batches(db):
    for n, name in enumerate(("Wang", "Li", "Zhao", "Chen", "Liu")):
        await member_with(Tier.GOLD, D("2027-12-31") if n % 2 else D("2028-01-31"), name=name)
    await member_with(Tier.GOLD, D("2028-12-31"), name="Sun")  # not due
    with captured() as statements:
        summary = await review_tiers(D("2028-03-01"), rules=RULES, batch_size=2)
    assert summary.examined == 5
    batches = [s for s in statements.selects("member") if "ORDER BY" in s.sql and "tier_valid_until" in s.sql.split("WHERE")[-1]]
    assert len(batches) == 4  # 5 members by 2, and the empty read that ends the run
    for statement in batches:
        lines = await plan(statement)
        assert plan_problems(lines, "member") == [], (statement.sql, lines)
        assert any("tier_valid_until" in line or "idx_member_tier_v" in line for line in lines), (statement.sql, lines)


async def test_review_sums_each_window_from_the_ledger_index_alone(db):
    """The review's window totals (the decision's, and the stored retention totals when
    the member keeps a tier) read the (member_id, activity_date, qualifying miles,
    qualifying segments) index and not one table page per entry: at 1M members those
    pages are rarely cached (SQLite shows a COVERING INDEX; PostgreSQL an index scan of
    ledger_entry)."""
    member = await member_with(Tier.GOLD, D("2027-12-31"))
    await flight(member, D("2027-06-15"), 5_000, 200)
    with captured() as statements:
        summary = await review_tiers(D("2028-03-01"), rules=RULES)
    assert summary.examined == 1
    sums = [s for s in statements.selects("ledger_entry") if "SUM(" in s.sql.replace('"', "")]
    assert sums
    for statement in sums:
        lines = await plan(statement)
        assert plan_problems(lines, "ledger_entry") == [], (statement.sql, lines)
        if is_postgres():
            assert any("Index" in line and "ledger_entry" in line for line in lines), (statement.sql, lines)
        else:
            assert any("COVERING INDEX idx_ledger_entr_member" in line for line in lines), (statement.sql, lines)
