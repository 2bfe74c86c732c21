"""Tortoise models of VIP care: logged care calls and member feedback with its history."""

from enum import Enum, IntEnum

from tortoise import fields
from tortoise.models import Model


class CallOutcome(str, Enum):
    REACHED = "REACHED"
    NO_ANSWER = "NO_ANSWER"
    DECLINED = "DECLINED"
    WRONG_NUMBER = "WRONG_NUMBER"

    @property
    def is_contact(self) -> bool:
        """The member was reached (a refusal to talk is still a contact): the call
        interval starts again."""
        return self in (CallOutcome.REACHED, CallOutcome.DECLINED)


class FeedbackKind(str, Enum):
    COMPLAINT = "COMPLAINT"
    SUGGESTION = "SUGGESTION"
    PRAISE = "PRAISE"
    INQUIRY = "INQUIRY"


class FeedbackChannel(str, Enum):
    APP = "APP"
    WEB = "WEB"
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    COUNTER = "COUNTER"
    SOCIAL = "SOCIAL"


class FeedbackStatus(str, Enum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


class CareCall(Model):
    """One call made by office staff to a member. Append-only."""

    id = fields.BigIntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="care_calls", on_delete=fields.RESTRICT)
    member_id: int
    # The member's office when the call was made (scope of the call record).
    office_id = fields.IntField()
    branch_id = fields.IntField()
    called_at = fields.DatetimeField()
    outcome = fields.CharEnumField(CallOutcome, max_length=12)
    notes = fields.TextField(null=True)
    # Needs the member named, as a JSON list of short strings.
    needs = fields.JSONField(default=list)
    follow_up_on = fields.DateField(null=True)
    actor = fields.CharField(max_length=100)
    # The member's satisfaction (1 to 5) as told on a REACHED call, if asked.
    satisfaction = fields.SmallIntField(null=True)

    class Meta:
        table = "care_call"
        indexes = (("member_id", "called_at"), ("office_id", "called_at"))


class Feedback(Model):
    """A complaint, suggestion, praise or inquiry, routed to the member's office."""

    id = fields.BigIntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="feedback", on_delete=fields.RESTRICT)
    member_id: int
    office_id = fields.IntField()
    branch_id = fields.IntField()
    kind = fields.CharEnumField(FeedbackKind, max_length=10)
    channel = fields.CharEnumField(FeedbackChannel, max_length=8)
    subject = fields.CharField(max_length=200)
    text = fields.TextField()
    status = fields.CharEnumField(FeedbackStatus, max_length=12, default=FeedbackStatus.OPEN)
    resolution = fields.TextField(null=True)
    submitted_at = fields.DatetimeField()
    # For complaints: submitted_at + complaint_response_hours; overdue while unresolved after it.
    respond_by = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField()
    submitted_by = fields.CharField(max_length=100)
    # The member's satisfaction (1 to 5) with the latest resolution, if asked.
    satisfaction = fields.SmallIntField(null=True)

    class Meta:
        table = "feedback"
        # (office_id, respond_by): an office's complaints falling due in the current hour (care.region_counts).
        indexes = (("office_id", "status", "id"), ("branch_id", "status", "id"), ("member_id", "id"), ("office_id", "respond_by"))


class FeedbackChange(Model):
    """History of a feedback item: every status change, who made it and why."""

    id = fields.BigIntField(primary_key=True)
    feedback = fields.ForeignKeyField("models.Feedback", related_name="changes", on_delete=fields.RESTRICT)
    feedback_id: int
    from_status = fields.CharEnumField(FeedbackStatus, max_length=12, null=True)
    to_status = fields.CharEnumField(FeedbackStatus, max_length=12)
    note = fields.TextField(null=True)
    actor = fields.CharField(max_length=100)
    changed_at = fields.DatetimeField()

    class Meta:
        table = "feedback_change"


class CareMeasure(IntEnum):
    """What a row of the VIP care rollup (OfficeCareCount) counts."""

    VIPS = 0  # ACTIVE members of the tier (on_date: NEVER)
    LAST_CONTACT = 1  # of those, last contacted on on_date (NEVER: not yet contacted)
    SHORT_UNTIL = 2  # of those, below both retain thresholds, tier valid until on_date


class OfficeCareCount(Model):
    """The VIP care rollup that region statistics read (care.counts): per office, VIP
    tier, measure and day, how many ACTIVE VIPs. Keyed by day because "contacted within
    the call interval" and "at risk of downgrade" move with the day: a statistic sums
    the rows on the right side of its day's cut-off, at most one per day of the interval
    for each office and tier, whatever the number of members. Kept by triggers on the
    member table (migration 0006), so every writer, bulk SQL included, keeps it right in
    its own transaction; rebuilt from the member table when the retain thresholds
    change (care.counts.ensure_care_counts)."""

    id = fields.IntField(primary_key=True)
    office: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Office", related_name="care_counts", on_delete=fields.RESTRICT
    )
    office_id: int
    tier = fields.SmallIntField()
    measure = fields.SmallIntField()
    on_date = fields.DateField()
    members = fields.IntField(default=0)

    class Meta:
        table = "office_care_count"
        # The key in the order statistics read it: per office and measure, a range of days.
        unique_together = (("office_id", "measure", "on_date", "tier"),)


class StatsMeasure(IntEnum):
    """What a row of the region statistics rollup (OfficeStatsCount) counts, and its slot."""

    UPGRADES = 0  # tier events with to_tier above from_tier; slot: the local day (days since 1970-01-01)
    DOWNGRADES = 1  # tier events with to_tier below from_tier; slot: the local day
    OPEN_COMPLAINTS = 2  # complaints OPEN or IN_PROGRESS; slot: 0
    COMPLAINTS_DUE = 3  # of those, respond_by in this hour (UTC hours since 1970); no respond_by: NO_DUE_HOUR
    CALLS_DUE = 4  # ACTIVE members whose stored worklist state is due (care_priority >= 0); slot: 0


class OfficeStatsCount(Model):
    """The region statistics rollup (care.region_counts): per office, measure and slot,
    how many tier changes (by local day of effective_at), open complaints (in all,
    and by the hour of respond_by) or members due a care call. Upgrades and downgrades of the last 30 days read at
    most 30 rows per office, open and overdue complaints one row per office and one per
    hour still to come of the response time, whatever the number of events and
    complaints. Kept by triggers on tier_event and feedback (migration 0020) and on
    member (the members due, 0021), so every writer keeps it in its own transaction."""

    id = fields.IntField(primary_key=True)
    office: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Office", related_name="stats_counts", on_delete=fields.RESTRICT
    )
    office_id: int
    measure = fields.SmallIntField()
    slot = fields.BigIntField()
    members = fields.IntField(default=0)

    class Meta:
        table = "office_stats_count"
        # The key in the order statistics read it: per office and measure, a range of slots.
        unique_together = (("office_id", "measure", "slot"),)


class StatsZone(Model):
    """The programme's local days as the tier event triggers read them: from the instant
    ``since`` (seconds since 1970, UTC) on, local days start every 86,400 s, the first of
    them being ``day`` (days since 1970-01-01); a new row where the zone's offset
    changes. care.region_counts keeps it equal to the time zone in force."""

    id = fields.IntField(primary_key=True)
    zone = fields.CharField(max_length=64)
    since = fields.BigIntField(unique=True)
    day = fields.IntField()

    class Meta:
        table = "stats_zone"


class CareRetentionThreshold(Model):
    """The rules file's retain thresholds per VIP tier, as the member triggers read them
    to tell a VIP short of retaining the tier (care.counts keeps them equal to the
    rules in force)."""

    id = fields.IntField(primary_key=True)
    tier = fields.SmallIntField(unique=True)
    retain_miles = fields.BigIntField()
    retain_segments = fields.IntField()

    class Meta:
        table = "care_retention_threshold"


class OfficeSatisfactionDay(Model):
    """Satisfaction scores (1 to 5) given on one day in one office: on care calls that
    reached the member and on resolved feedback (care.satisfaction). Region statistics
    average the last 30 days from at most 30 rows per office, whatever the number of
    calls. Kept in the transaction of the call or the resolution that gives the score."""

    id = fields.IntField(primary_key=True)
    office: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Office", related_name="satisfaction_days", on_delete=fields.RESTRICT
    )
    office_id: int
    on_date = fields.DateField()
    scores = fields.IntField(default=0)
    score_total = fields.IntField(default=0)

    class Meta:
        table = "office_satisfaction_day"
        unique_together = (("office_id", "on_date"),)


class GreetingSent(Model):
    """A greeting staff marked as sent (care.greetings): a member's birthday greeting, or
    an office's festival greeting to its VIPs. ``greeting_key`` names the greeting
    (``B:<member id>:<date>`` or ``F:<office id>:<date>:<festival>``), unique: marking
    it again finds the first mark."""

    id = fields.BigIntField(primary_key=True)
    greeting_key = fields.CharField(max_length=200, unique=True)
    kind = fields.CharField(max_length=8)
    on_date = fields.DateField()
    member = fields.ForeignKeyField("models.Member", related_name="greetings_sent", null=True, on_delete=fields.RESTRICT)
    member_id: int | None
    office_id = fields.IntField()
    branch_id = fields.IntField()
    festival = fields.CharField(max_length=100, null=True)
    sent_at = fields.DatetimeField()
    actor = fields.CharField(max_length=100)

    class Meta:
        table = "greeting_sent"


class GoodwillCredit(Model):
    """The audit record of a goodwill credit (care.goodwill): who gave how many miles to
    whom, as which role, why, for which feedback item; its ledger entry (kind
    ADJUSTMENT) carries the miles. Append-only."""

    id = fields.BigIntField(primary_key=True)
    entry = fields.OneToOneField("models.LedgerEntry", related_name="goodwill", on_delete=fields.RESTRICT)
    entry_id: int
    member = fields.ForeignKeyField("models.Member", related_name="goodwill_credits", on_delete=fields.RESTRICT)
    member_id: int
    feedback = fields.ForeignKeyField("models.Feedback", related_name="goodwill_credits", null=True, on_delete=fields.RESTRICT)
    feedback_id: int | None
    # The member's office when credited (scope of the record).
    office_id = fields.IntField()
    branch_id = fields.IntField()
    miles = fields.BigIntField()
    reason = fields.CharField(max_length=300)
    role = fields.CharField(max_length=8)
    actor = fields.CharField(max_length=100)
    credited_at = fields.DatetimeField()

    class Meta:
        table = "goodwill_credit"
        indexes = (("member_id", "id"), ("office_id", "credited_at"))
