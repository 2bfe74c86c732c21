"""The shipped region data set (6 branches, 142 offices, address rules) and region reads."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from tortoise.functions import Count
from tortoise.transactions import in_transaction

from members.addresses import address_key
from members.enums import Tier
from members.models import AddressRule, Branch, Office


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
