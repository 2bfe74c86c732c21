"""VIP care insights: lifecycle stages and value segments, greetings due, region statistics."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated

import strawberry

from care.greetings import GreetingKind as DomainGreetingKind
from care.greetings import Greeting as DomainGreeting
from care.greetings import greetings_due, mark_greeting_sent
from care.stats import RegionStats as DomainStats
from care.stats import office_stats, region_stats
from members.enums import LifecycleStage as DomainStage
from members.enums import ValueSegment as DomainSegment
from schema.context import Info
from schema.errors import UserError, mutation
from schema.members import Member
from schema.permissions import STAFF, allow
from schema.regions import TierCounts


def _described(enum: type[Enum], name: str, description: str, values: dict[str, str]) -> type[Enum]:
    """strawberry.enum over a domain enum, with a description for every value."""
    wrapped = strawberry.enum(enum, name=name, description=description)
    for value in wrapped.__strawberry_definition__.values:
        value.description = values[value.name]
    return wrapped


LifecycleStage = _described(
    DomainStage, "LifecycleStage",
    "Stage of a member's relationship with the programme, from earning activity (flights and partner credits "
    "not reversed) of the last period_months against the period before (rules file [care.lifecycle]).",
    {
        "NEW": "考察: enrolled within new_months.",
        "GROWING": "形成: more activity than in the period before, at least growth_percent of it (any activity after none).",
        "STABLE": "稳定: activity neither growing nor declining.",
        "DECLINING": "退化: activity below decline_percent of the period before.",
        "DORMANT": "No earning activity in either period.",
    },
)
ValueSegment = _described(
    DomainSegment, "ValueSegment",
    "Rank of a member's qualifying miles of the trailing value_window_months within their office.",
    {
        "HIGH": "The top value_high_percent of the office (by miles, then member id).",
        "MEDIUM": "Below HIGH, down to value_medium_percent of the office.",
        "LOW": "The rest, and every member without qualifying miles in the window.",
    },
)
GreetingKind = _described(
    DomainGreetingKind, "GreetingKind", "What a greeting is for.",
    {"BIRTHDAY": "A member's birthday.", "FESTIVAL": "A festival: a greeting to every VIP of the region."},
)


@strawberry.type(description="A greeting due on a day: a member's birthday or a festival.")
class Greeting:
    date: date = strawberry.field(description="The day to greet (a February 29 birthday: February 28 in a common year).")
    kind: GreetingKind = strawberry.field(description="BIRTHDAY or FESTIVAL.")
    member: Member | None = strawberry.field(description="BIRTHDAY: the member (ACTIVE, in the caller's scope).")
    festival: str | None = strawberry.field(description='FESTIVAL: its name, e.g. "Spring Festival 春节".')
    recipients: int | None = strawberry.field(description="FESTIVAL: ACTIVE VIP members (SILVER and above) in the region asked for.")
    sent_at: datetime | None = strawberry.field(
        description="When staff marked it sent (greetingMarkSent); a FESTIVAL's only in one office's list, null elsewhere."
    )
    sent_by: str | None = strawberry.field(description="Who marked it sent.")

    @classmethod
    def from_domain(cls, g: DomainGreeting) -> Greeting:
        return cls(
            date=g.date, kind=g.kind, member=Member.from_row(g.member) if g.member is not None else None,
            festival=g.festival, recipients=g.recipients, sent_at=g.sent_at, sent_by=g.sent_by,
        )


@strawberry.input(description="A greeting to mark sent: a member's birthday greeting, or an office's festival greeting.")
class GreetingMarkSentInput:
    kind: GreetingKind = strawberry.field(description="BIRTHDAY or FESTIVAL.")
    date: date = strawberry.field(description="The greeting's day, as greetingsDue lists it.")
    member_id: strawberry.ID | None = strawberry.field(
        default=None, description="BIRTHDAY: the member (ACTIVE, in the caller's scope, greeted on date)."
    )
    office_code: str | None = strawberry.field(
        default=None, description="FESTIVAL: the office that sent it (office staff: their own office when omitted)."
    )


@strawberry.type(description="Result of greetingMarkSent.")
class GreetingMarkSentPayload:
    greeting: Greeting | None = strawberry.field(description="The greeting, with when it was first marked sent.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type(description="VIP care figures of an office, a branch or the caller's whole scope, counted by the database.")
class RegionStats:
    office_code: str | None = strawberry.field(description="The office, when the figures are one office's.")
    branch_code: str | None = strawberry.field(description="The branch (of the office, or the branch asked for); null for all branches.")
    name: str = strawberry.field(description="Name of the office or branch (\"All branches\" for the whole programme).")
    tier_counts: TierCounts = strawberry.field(description="Members of each tier, whatever their status.")
    upgrades_last_30_days: int = strawberry.field(description="Tier changes to a higher tier effective in the 30 days ending today.")
    downgrades_last_30_days: int = strawberry.field(description="Tier changes to a lower tier effective in the 30 days ending today.")
    at_risk_vips: int = strawberry.field(description="ACTIVE VIPs at risk of losing their tier at validUntil.")
    vips: int = strawberry.field(description="ACTIVE members of tier SILVER and above.")
    vips_contacted_within_interval: int = strawberry.field(
        description="VIPs last reached less than their tier's call interval ago (not due an INTERVAL_PASSED call)."
    )
    care_call_coverage: float = strawberry.field(description="vipsContactedWithinInterval / vips, 0..1 (0 without VIPs).")
    open_complaints: int = strawberry.field(description="Complaints in status OPEN or IN_PROGRESS.")
    overdue_complaints: int = strawberry.field(description="Open complaints past their respondBy.")
    satisfaction_scores: int = strawberry.field(
        description="Satisfaction scores given in the 30 days ending today: on REACHED care calls (by the call's day) and on resolved feedback."
    )
    average_satisfaction: float | None = strawberry.field(
        description="The mean of those scores, 1 (very unhappy) to 5 (very happy); null when none was given."
    )

    @classmethod
    def from_domain(cls, stats: DomainStats) -> RegionStats:
        return cls(
            office_code=stats.office_code, branch_code=stats.branch_code, name=stats.name,
            tier_counts=TierCounts.from_counts(stats.tier_counts),
            upgrades_last_30_days=stats.upgrades_last_30_days, downgrades_last_30_days=stats.downgrades_last_30_days,
            at_risk_vips=stats.at_risk_vips, vips=stats.vips,
            vips_contacted_within_interval=stats.vips_contacted_within_interval,
            care_call_coverage=stats.care_call_coverage,
            open_complaints=stats.open_complaints, overdue_complaints=stats.overdue_complaints,
            satisfaction_scores=stats.satisfaction_scores, average_satisfaction=stats.average_satisfaction,
        )



@strawberry.type
class InsightsQuery:
    @strawberry.field(
        description="Birthdays of ACTIVE members and festivals from `from` to `to` (both included, at most 366 days), "
        "in date order (festivals first, then birthdays by name); the caller's scope, optionally one office or branch in it.",
        permission_classes=[allow(*STAFF)],
    )
    async def greetings_due(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from", description="First day.")],
        to: Annotated[date, strawberry.argument(description="Last day (not before from).")],
        office_code: str | None = None,
        branch_code: str | None = None,
    ) -> list[Greeting]:
        rows = await greetings_due(info.context.caller, from_, to, office_code, branch_code)
        return [Greeting.from_domain(g) for g in rows]

    @strawberry.field(
        description="VIP care figures of one office or branch in the caller's scope, or of the whole scope when neither is given.",
        permission_classes=[allow(*STAFF)],
    )
    async def region_stats(self, info: Info, office_code: str | None = None, branch_code: str | None = None) -> RegionStats:
        context = info.context
        stats = await region_stats(
            context.caller, context.rules, context.today(), office_code, branch_code,
            timezone=context.timezone, now=context.now(),
        )
        return RegionStats.from_domain(stats)

    @strawberry.field(
        description="VIP care figures per office in the caller's scope (a branch: all its offices), by office code.",
        permission_classes=[allow(*STAFF)],
    )
    async def office_stats(self, info: Info, branch_code: str | None = None) -> list[RegionStats]:
        context = info.context
        rows = await office_stats(
            context.caller, context.rules, context.today(), branch_code, timezone=context.timezone, now=context.now()
        )
        return [RegionStats.from_domain(row) for row in rows]


@strawberry.type
class InsightsMutation:
    @mutation(
        description="Mark a greeting sent: a member's birthday greeting, or an office's festival greeting (office or "
        "branch staff in scope, or admin). Marking it again returns the first mark.",
        permission_classes=[allow(*STAFF)],
    )
    async def greeting_mark_sent(self, info: Info, input: GreetingMarkSentInput) -> GreetingMarkSentPayload:
        greeting = await mark_greeting_sent(
            info.context.caller, input.kind, input.date, member_id=input.member_id, office_code=input.office_code,
            now=info.context.now(),
        )
        return GreetingMarkSentPayload(greeting=Greeting.from_domain(greeting), user_errors=[])
