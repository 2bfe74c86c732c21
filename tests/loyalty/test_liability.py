"""Miles liability and breakage (loyalty.liability): constructed ledgers whose numbers are
stated, and the same figures summed directly over the ledger entries.

Credits of January 2025 expire at the end of January 2028 (36 months after their
month); credits of January 2022 expired after 2025-01-31.
"""

from __future__ import annotations

from datetime import date

import pytest
from tortoise.functions import Sum

from loyalty import ledger
from loyalty.jobs import expire_miles
from loyalty.liability import Liability, basis_points, miles_breakage, miles_liability
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind
from loyalty.rules import load_rules
from loyalty.tiers import override_tier
from members.access import Caller, Role
from members.addresses import Address
from members.enums import Tier
from members.errors import DomainError, ForbiddenError
from members.models import Member, Office
from members.services import Enrolment, enroll

RULES = load_rules()
D = date.fromisoformat
ADMIN = Caller(Role.ADMIN, "t")
AIRLINE = Caller(Role.AIRLINE, "t")


async def member(name: str, city: str, province: str) -> Member:
    return await enroll(ADMIN, Enrolment(name, "Fang", Address(country="CN", province=province, city=city)),
                        today=D("2021-12-01"))


async def fly(who: Member, day: date, km: int, ref: str, fare_class: str = "J") -> None:
    """A flight posted on its own day (J: 3 x km miles; STANDARD: no bonus)."""
    flight = ledger.FlightDetails("CA", "1501", day, "PEK", "SHA", km, fare_class)
    await ledger.flight_accrue(AIRLINE, who.card_number, flight, ref, rules=RULES, today=day)


async def redeem(who: Member, miles: int, day: date, key: str) -> None:
    await ledger.redeem(ADMIN, str(who.id), miles, "upgrade voucher", key, rules=RULES, today=day)


async def office_code(who: Member) -> str:
    return (await Office.get(id=who.office_id)).code


@pytest.fixture
async def ledgers(db):
    """A (Beijing, STANDARD): 3,000 credited 2025-01-15, 1,000 redeemed -> 2,000 open in
    2028-01. B (Shanghai, GOLD by override): 1,500 credited 2022-01-10, all expired;
    1,200 credited 2022-03-05, 400 redeemed, 800 expired; 6,000 credited 2025-06-20,
    open in 2028-06. C (Beijing): 900 credited 2025-01-20, reversed."""
    a = await member("Wang", "Beijing", "Beijing")
    b = await member("Li", "Shanghai", "Shanghai")
    c = await member("Zhao", "Beijing", "Beijing")
    await fly(a, D("2025-01-15"), 1_000, "A1")
    await redeem(a, 1_000, D("2025-02-01"), "a-r1")
    await fly(b, D("2022-01-10"), 500, "B1")
    await fly(b, D("2022-03-05"), 1_200, "B2", "B")
    await redeem(b, 1_900, D("2023-01-01"), "b-r1")  # 1,500 of B1 and 400 of B2 (earliest expiry first)
    assert (await Member.get(id=b.id)).redeemable_miles == 800
    await expire_miles(D("2025-04-01"))
    # B1 (1,500 - 1,500 redeemed) left nothing to expire; B2's 800 expired.
    await fly(b, D("2025-06-20"), 2_000, "B3")
    await override_tier(ADMIN, str(b.id), Tier.GOLD, None, "test", rules=RULES, today=D("2025-07-01"))
    await fly(c, D("2025-01-20"), 900, "C1", "B")
    c1 = await LedgerEntry.get(source="AIRLINE", external_ref="C1")
    await ledger.reverse(ADMIN, str(c1.id), "no-show", "c-rev", rules=RULES, today=D("2025-02-01"))
    return a, b, c


async def test_liability_by_expiry_month_tier_and_office(ledgers):
    a, b, _ = ledgers
    liability = await miles_liability(ADMIN, D("2026-01-10"), today=D("2026-01-10"))
    cells = {(row.expiry_month, row.tier, row.office_code): (row.miles, row.members) for row in liability.rows}
    assert cells == {
        (D("2028-01-01"), Tier.STANDARD, await office_code(a)): (2_000, 1),
        (D("2028-06-01"), Tier.GOLD, await office_code(b)): (6_000, 1),
    }
    assert liability.total_miles == 8_000
    assert liability.by(lambda row: row.tier) == [(Tier.STANDARD, 2_000), (Tier.GOLD, 6_000)]
    # As of 2028-02-01 the January 2028 lots are past their last day: only June's count.
    later = await miles_liability(ADMIN, D("2028-02-01"), today=D("2026-01-10"))
    assert [(row.expiry_month, row.miles) for row in later.rows] == [(D("2028-06-01"), 6_000)]


async def test_liability_equals_the_balances_summed_over_the_ledger(ledgers):
    liability = await miles_liability(ADMIN, None, today=D("2026-01-10"))
    sums = await LedgerEntry.all().group_by("member_id").annotate(total=Sum("redeemable_miles")).values_list(
        "member_id", "total")
    assert liability.as_of == D("2026-01-10")
    assert liability.total_miles == sum(max(int(total), 0) for _, total in sums) == 8_000


async def test_breakage_by_credit_month(ledgers):
    breakage = await miles_breakage(ADMIN, D("2022-01-31"), D("2022-03-01"))
    assert (breakage.start, breakage.end) == (D("2022-01-01"), D("2022-03-31"))
    months = [(m.month, m.credits, m.credited_miles, m.expired_miles, m.basis_points) for m in breakage.months]
    assert months == [
        (D("2022-01-01"), 1, 1_500, 0, 0),
        (D("2022-02-01"), 0, 0, 0, 0),
        (D("2022-03-01"), 1, 1_200, 800, 6_666),  # 800 / 1,200 = 0.6666.. rounded down
    ]
    assert (breakage.credited_miles, breakage.expired_miles, breakage.basis_points) == (2_700, 800, 2_962)
    # January 2025: A's 3,000 counted, C's reversed 900 not.
    (january,) = (await miles_breakage(ADMIN, D("2025-01-01"), D("2025-01-31"))).months
    assert (january.credits, january.credited_miles, january.expired_miles) == (1, 3_000, 0)


async def test_breakage_equals_sums_over_the_ledger(ledgers):
    breakage = await miles_breakage(ADMIN, D("2016-01-01"), D("2025-12-31"))
    expired = await LedgerEntry.filter(kind=LedgerEntryKind.EXPIRY).values_list("redeemable_miles", flat=True)
    assert breakage.expired_miles == -sum(expired) == 800
    reversed_ids = await LedgerEntry.filter(reverses_id__not_isnull=True).values_list("reverses_id", flat=True)
    credits = await LedgerEntry.filter(redeemable_miles__gt=0, activity_date__lte=D("2025-12-31")).exclude(
        id__in=reversed_ids).exclude(kind=LedgerEntryKind.REVERSAL).values_list("redeemable_miles", flat=True)
    assert breakage.credited_miles == sum(credits) == 1_500 + 1_200 + 3_000 + 6_000
    assert await CreditLot.filter(expired__gt=0).count() == 1


async def test_breakage_of_a_credit_that_paid_a_negative_balance(db):
    """A credit posted while a reversal has left the balance negative keeps only the
    remainder in its lot, yet counts in full: what paid the debt paid for a redemption
    the reversed credit had funded (used, not broken). F1: 1,500 credited 2024-01-10, all
    redeemed, then reversed -> balance -1,500. F2: 3,000 credited 2024-04-15 -> lot 1,500,
    which expires after 2027-04-30. April 2024: 1,500 expired of 3,000 credited = 5,000 bp.
    Counting only the lot would give 1,500 of 1,500 = 10,000 bp (all broken), although
    the member did redeem 1,500 of the 3,000 miles that count (F1 is left out)."""
    who = await member("Sun", "Beijing", "Beijing")
    await fly(who, D("2024-01-10"), 500, "F1")
    await redeem(who, 1_500, D("2024-02-01"), "f-r1")
    f1 = await LedgerEntry.get(source="AIRLINE", external_ref="F1")
    await ledger.reverse(ADMIN, str(f1.id), "no-show", "f-rev", rules=RULES, today=D("2024-03-01"))
    assert (await Member.get(id=who.id)).redeemable_miles == -1_500
    await fly(who, D("2024-04-15"), 1_000, "F2")
    f2 = await LedgerEntry.get(source="AIRLINE", external_ref="F2")
    assert (f2.redeemable_miles, (await CreditLot.get(entry_id=f2.id)).remaining) == (3_000, 1_500)
    await expire_miles(D("2027-05-01"))
    breakage = await miles_breakage(ADMIN, D("2024-01-01"), D("2024-04-30"))
    months = [(m.month, m.credits, m.credited_miles, m.expired_miles, m.basis_points) for m in breakage.months]
    assert months == [
        (D("2024-01-01"), 0, 0, 0, 0),  # F1 reversed
        (D("2024-02-01"), 0, 0, 0, 0),
        (D("2024-03-01"), 0, 0, 0, 0),
        (D("2024-04-01"), 1, 3_000, 1_500, 5_000),
    ]
    # The ledger's identity behind it: credited = redeemed + expired + balance.
    assert (await Member.get(id=who.id)).redeemable_miles == 0
    assert breakage.credited_miles == 1_500 + breakage.expired_miles + 0


def test_basis_points_round_down():
    assert basis_points(1, 3) == 3_333
    assert basis_points(2, 3) == 6_666
    assert basis_points(5, 0) == 0
    assert basis_points(7, 7) == 10_000


async def test_refusals(db):
    with pytest.raises(DomainError) as error:
        await miles_liability(ADMIN, D("2026-01-09"), today=D("2026-01-10"))
    assert (error.value.code, error.value.field) == ("INVALID", ("asOf",))
    with pytest.raises(DomainError) as error:
        await miles_breakage(ADMIN, D("2025-02-01"), D("2025-01-31"))
    assert (error.value.code, error.value.field) == ("INVALID", ("to",))
    with pytest.raises(DomainError) as error:
        await miles_breakage(ADMIN, D("2015-01-01"), D("2025-01-01"))  # 121 months
    assert error.value.code == "INVALID"
    assert len((await miles_breakage(ADMIN, D("2015-02-01"), D("2025-01-01"))).months) == 120
    for role in (Role.OFFICE, Role.BRANCH, Role.PARTNER, Role.AIRLINE, Role.MEMBER):
        with pytest.raises(ForbiddenError):
            await miles_liability(Caller(role, "t"), None, today=D("2026-01-10"))
        with pytest.raises(ForbiddenError):
            await miles_breakage(Caller(role, "t"), D("2025-01-01"), D("2025-01-31"))


async def test_nothing_open(db):
    assert await miles_liability(ADMIN, None, today=D("2026-01-10")) == Liability(D("2026-01-10"), ())


async def test_each_is_one_query_through_an_index(ledgers):
    """Liability reads the open lots through their partial index (credit_lot_open_expiry),
    breakage the months' credits through theirs (ledger_entry_credit_day): never every
    lot, every entry or every member."""
    from tests.statements import captured, is_postgres, plan

    with captured() as statements:
        await miles_liability(ADMIN, None, today=D("2026-01-10"))
        await miles_breakage(ADMIN, D("2022-01-01"), D("2022-12-31"))
    liability, breakage = statements.selects("credit_lot"), statements.selects("ledger_entry")
    assert len(liability) == len(breakage) == 1
    for statement, index, table, alias in ((liability[0], "credit_lot_open_expiry", "credit_lot", "l"),
                                           (breakage[0], "ledger_entry_credit_day", "ledger_entry", "e")):
        lines = await plan(statement)
        assert any(index in line for line in lines), (statement.sql, lines)
        wholes = [f"Seq Scan on {table}"] if is_postgres() else [f"SCAN {table}", f"SCAN {alias}"]
        assert not any(line.strip() in wholes or line.strip().startswith(f"{wholes[0]} ") for line in lines), lines
        assert not any("SCAN m" == line.strip() or "Seq Scan on member" in line for line in lines), lines
