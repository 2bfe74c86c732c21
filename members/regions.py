"""The shipped region data set (6 branches, 142 offices, address rules) and region reads."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from importlib import resources
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Subquery
from tortoise.functions import Count
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from members.addresses import address_key
from members.enums import Tier
from members.models import AddressRule, Branch, Member, Office, OfficeTierCount


def region_data() -> dict[str, Any]:
    """The shipped data set, as JSON."""
    return json.loads(resources.files("members").joinpath("data/regions.json").read_text(encoding="utf-8"))


async def load_region_data(data: dict[str, Any] | None = None) -> dict[str, int]:
    """Insert or update branches, offices and address rules from the data set.
    Safe to run again: existing rows are matched by code and updated in place."""
    data = data or region_data()
    async with in_transaction():
        branches = {b.code: b for b in await Branch.all()}
        offices = {o.code: o for o in await Office.all()}
        for branch_data in data["branches"]:
            branch = branches.get(branch_data["code"])
            if branch is None:
                branch = branches[branch_data["code"]] = await Branch.create(code=branch_data["code"], name=branch_data["name"])
            elif branch.name != branch_data["name"]:
                branch.name = branch_data["name"]
                await branch.save(update_fields=["name"])
            for office_data in branch_data["offices"]:
                values = {
                    "name": office_data["name"],
                    "city": office_data["city"],
                    "province": office_data.get("province"),
                    "country": office_data["country"],
                    "branch_id": branch.id,
                }
                office = offices.get(office_data["code"])
                if office is None:
                    offices[office_data["code"]] = await Office.create(code=office_data["code"], **values)
                elif any(getattr(office, k) != v for k, v in values.items()):
                    await Office.filter(id=office.id).update(**values)
        existing = {(r.country, r.province, r.city): r for r in await AddressRule.all()}
        wanted = {
            (rule["country"], address_key(rule.get("province")), address_key(rule.get("city"))): rule["office"]
            for rule in data["address_rules"]
        }
        wanted[("", "", "")] = data["default_office"]
        for key, office_code in wanted.items():
            office_id = offices[office_code].id
            rule = existing.get(key)
            if rule is None:
                await AddressRule.create(country=key[0], province=key[1], city=key[2], office_id=office_id)
            elif rule.office_id != office_id:
                await AddressRule.filter(id=rule.id).update(office_id=office_id)
        stale = [rule.id for key, rule in existing.items() if key not in wanted]
        if stale:
            await AddressRule.filter(id__in=stale).delete()
        await _add_tier_count_rows()
    return {"branches": len(branches), "offices": len(offices), "address_rules": len(wanted)}


TierCountsByKey = dict[int, dict[Tier, int]]


async def tier_counts(member_queryset, group_by: str | None = None) -> dict[Any, dict[Tier, int]]:
    """Members per tier, counted by the database, optionally grouped by a column
    (office_id or branch_id). The queryset carries the caller's scope."""
    fields = [group_by, "tier"] if group_by else ["tier"]
    rows = await member_queryset.annotate(n=Count("id")).group_by(*fields).values(*fields, "n")
    counts: dict[Any, dict[Tier, int]] = {}
    for row in rows:
        key = row[group_by] if group_by else None
        counts.setdefault(key, {tier: 0 for tier in Tier})[Tier(row["tier"])] = row["n"]
    return counts


# ---- the office x tier rollup (members.models.OfficeTierCount) -----------------------
#
# Why a rollup: counting members per tier from the member table reads one index entry
# per member of the scope. Measured on SQLite at 1,000,000 members (142 offices), an
# office's count (~7,000 entries) stays a few milliseconds, but a branch's or the whole
# programme's grows with the programme (see the scale report of issue 10), and
# `branches { offices { tierCounts } }` for an admin counts every member. The rollup
# answers any scope from at most 142 x 4 rows. Status plays no part (tierCounts counts
# members whatever their status), so only enrolment, tier changes and office moves
# touch it, each in its own transaction.

TierMove = tuple[int, Tier, int]  # (office id, tier, change in members)


async def move_tier_counts(connection: BaseDBAsyncClient, moves: Iterable[TierMove]) -> None:
    """Apply `moves` to the rollup in the caller's transaction. Rows are updated in
    (office, tier) order, so two transactions never wait for each other's rows in
    opposite orders (an upgrade and a downgrade in one office cannot deadlock)."""
    net: dict[tuple[int, Tier], int] = defaultdict(int)
    for office_id, tier, change in moves:
        net[(office_id, Tier(tier))] += change
    rows = [[change, office_id, int(tier)] for (office_id, tier), change in sorted(net.items()) if change]
    if not rows:
        return
    marks = ("$1", "$2", "$3") if connection.capabilities.dialect == "postgres" else ("?", "?", "?")
    sql = (f'UPDATE "{OfficeTierCount._meta.db_table}" SET "members" = "members" + {marks[0]} '
           f'WHERE "office_id" = {marks[1]} AND "tier" = {marks[2]}')
    if len(rows) == 1:
        await connection.execute_query(sql, rows[0])
    else:  # a bulk import's batch moves up to 142 offices: one executemany, in order
        await connection.execute_many(sql, rows)


async def reassign_office(connection: BaseDBAsyncClient, member_id: int, office: Office) -> bool:
    """Move the member to `office` in the caller's transaction, its tier count with it;
    False when it is already there."""
    # First a write on the member's row that changes nothing: it makes a concurrent tier
    # change of the member wait, so the office and tier read next are the ones moved.
    await Member.filter(id=member_id).using_db(connection).update(branch_id=F("branch_id"))
    old_office, tier = await Member.filter(id=member_id).using_db(connection).first().values_list("office_id", "tier")
    if old_office == office.id:
        return False
    await Member.filter(id=member_id).using_db(connection).update(office_id=office.id, branch_id=office.branch_id)
    await move_tier_counts(connection, [(old_office, tier, -1), (office.id, tier, 1)])
    return True


async def _add_tier_count_rows() -> None:
    """Rollup rows of offices that have none yet (a new office, or a database from
    before the rollup), counted from their members."""
    have = {(office_id, Tier(tier)) for office_id, tier in await OfficeTierCount.all().values_list("office_id", "tier")}
    missing = [pk for pk in await Office.all().values_list("id", flat=True) if any((pk, t) not in have for t in Tier)]
    if not missing:
        return
    counted = await tier_counts(Member.filter(office_id__in=missing), group_by="office_id")
    await OfficeTierCount.bulk_create([
        OfficeTierCount(office_id=pk, tier=tier, members=counted.get(pk, {}).get(tier, 0))
        for pk in missing for tier in Tier if (pk, tier) not in have
    ])


async def rebuild_tier_counts(connection: BaseDBAsyncClient) -> None:
    """Set the whole rollup from the member table, in the caller's transaction: for
    writers that insert members in bulk beside the services (the demo data set)."""
    counted = await tier_counts(Member.all().using_db(connection), group_by="office_id")
    for row in await OfficeTierCount.all().using_db(connection):
        members = counted.get(row.office_id, {}).get(Tier(row.tier), 0)
        if row.members != members:
            await OfficeTierCount.filter(id=row.id).using_db(connection).update(members=members)


async def office_tier_counts(offices: QuerySet[Office], group_by: str | None = None) -> dict[Any, dict[Tier, int]]:
    """Members of each tier in the offices of `offices` (a queryset that carries the
    caller's scope), summed from the rollup; grouped by an office column ("id" or
    "branch_id"), or all together under the key None. One statement (at most 142 x 4
    rows)."""
    key_column = {None: "office_id", "id": "office_id", "branch_id": "office__branch_id"}[group_by]
    rows = await OfficeTierCount.filter(office_id__in=Subquery(offices.values("id"))).values_list(
        key_column, "tier", "members"
    )
    counts: dict[Any, dict[Tier, int]] = {None: {tier: 0 for tier in Tier}} if group_by is None else {}
    for key, tier, members in rows:
        counts.setdefault(key if group_by else None, {t: 0 for t in Tier})[Tier(tier)] += members
    return counts
