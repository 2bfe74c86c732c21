"""Tortoise models owned by the loyalty domain: the ledger, credit lots and the tier event log."""

from enum import Enum

from tortoise import fields
from tortoise.models import Model

from members.enums import Tier


class LedgerEntryKind(str, Enum):
    FLIGHT = "FLIGHT"
    PARTNER = "PARTNER"
    TIER_BONUS = "TIER_BONUS"
    REDEMPTION = "REDEMPTION"
    EXPIRY = "EXPIRY"
    REVERSAL = "REVERSAL"
    ADJUSTMENT = "ADJUSTMENT"


class TierChangeReason(str, Enum):
    UPGRADE = "UPGRADE"
    RETENTION = "RETENTION"
    DOWNGRADE = "DOWNGRADE"
    MANUAL = "MANUAL"
    REVERSAL = "REVERSAL"
    # A rules change applied by `loyalty rules apply` (loyalty.rulechange).
    RULE_CHANGE = "RULE_CHANGE"


class LedgerEntry(Model):
    """One append-only posting. Never updated or deleted."""

    id = fields.BigIntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="ledger", on_delete=fields.RESTRICT)
    member_id: int
    kind = fields.CharEnumField(LedgerEntryKind, max_length=12)
    activity_date = fields.DateField()
    posted_at = fields.DatetimeField(auto_now_add=True)
    # Miles are 64-bit: a 32-bit column would make an accrual past 2^31 a database error.
    qualifying_miles = fields.BigIntField(default=0)
    # Hundredths of a segment: an H ticket is 75, a J ticket 300.
    qualifying_segments = fields.IntField(default=0)
    redeemable_miles = fields.BigIntField(default=0)
    source = fields.CharField(max_length=16)
    external_ref = fields.CharField(max_length=100, null=True)
    description = fields.CharField(max_length=300, null=True)
    carrier = fields.CharField(max_length=3, null=True)
    flight_number = fields.CharField(max_length=8, null=True)
    origin = fields.CharField(max_length=3, null=True)
    destination = fields.CharField(max_length=3, null=True)
    distance_km = fields.IntField(null=True)
    fare_class = fields.CharField(max_length=1, null=True)
    # Content fingerprint of the request that created it, for externalRef replays.
    fingerprint = fields.CharField(max_length=64, null=True)
    bonus_for = fields.OneToOneField(
        "models.LedgerEntry", related_name="bonus", null=True, on_delete=fields.RESTRICT
    )
    bonus_for_id: int | None
    # One-to-one: the database refuses a second reversal of the same entry.
    reverses = fields.OneToOneField(
        "models.LedgerEntry", related_name="reversed_by", null=True, on_delete=fields.RESTRICT
    )
    reverses_id: int | None

    class Meta:
        table = "ledger_entry"
        unique_together = (("source", "external_ref"),)
        # (source, posted_at, id): a partner's credits of the last 24 hours (the velocity
        # cap), and its statement newest first by key (loyalty.statements).
        # (member_id, activity_date) carries the qualifying miles and segments: a member's
        # window totals (tier status, each qualifying posting, the tier review) are then
        # summed from the index alone, a leaf page or two, instead of one table page per
        # entry, which at 1,000,000 members (33 million entries) are rarely in the cache.
        indexes = (
            ("member_id", "activity_date", "qualifying_miles", "qualifying_segments"),
            ("member_id", "id"),
            ("source", "posted_at", "id"),
        )


class CreditLot(Model):
    """What is left of one redeemable credit, consumed earliest-expiry first.

    This is allocation state beside the ledger (the ledger itself stays append-only)."""

    id = fields.BigIntField(primary_key=True)
    entry = fields.OneToOneField("models.LedgerEntry", related_name="lot", on_delete=fields.RESTRICT)
    entry_id: int
    member = fields.ForeignKeyField("models.Member", related_name="lots", on_delete=fields.RESTRICT)
    member_id: int
    expires_on = fields.DateField()
    remaining = fields.BigIntField()
    # What the expiry job took from this lot (loyalty.jobs): the breakage of its credit
    # (loyalty.liability). 0 for lots expired before migration 0022 kept it.
    expired = fields.BigIntField(default=0, db_default=0)

    class Meta:
        table = "credit_lot"
        # Open lots (remaining > 0) by expiry date also have a PARTIAL index,
        # credit_lot_open_expiry (expires_on, member_id, remaining) WHERE remaining > 0, which the
        # expiry job reads; Tortoise cannot declare a `>` condition, so it is created by
        # RunSQL in migrations/0003_scale_lists.py.
        indexes = (("member_id", "expires_on"),)


class TierEvent(Model):
    """The append-only tier-change log: source of tierChanges, tierHistory and the
    tierChanged subscription. `id` is the position."""

    id = fields.BigIntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="tier_events", on_delete=fields.RESTRICT)
    member_id: int
    card_number = fields.CharField(max_length=11)
    from_tier = fields.IntEnumField(Tier)
    to_tier = fields.IntEnumField(Tier)
    reason = fields.CharEnumField(TierChangeReason, max_length=12)
    effective_at = fields.DatetimeField()
    since = fields.DateField()
    valid_until = fields.DateField(null=True)
    office_id = fields.IntField(db_index=True)
    branch_id = fields.IntField(db_index=True)
    office_code = fields.CharField(max_length=8)
    branch_code = fields.CharField(max_length=8)
    cause = fields.ForeignKeyField("models.LedgerEntry", related_name="tier_events", null=True, on_delete=fields.RESTRICT)
    cause_id: int | None
    actor = fields.CharField(max_length=100)
    note = fields.CharField(max_length=300, null=True)

    class Meta:
        table = "tier_event"
        indexes = (
            ("member_id", "id"),
            # Upgrades and downgrades of the last 30 days of an office, a branch, everyone
            # (care.stats): a range of the days asked, not every event of the region.
            ("office_id", "effective_at"),
            ("branch_id", "effective_at"),
            ("effective_at",),
        )


class JobRunStatus(str, Enum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


class JobRun(Model):
    """One daily job (tiers review, miles expiry, care refresh) for one programme day:
    the scheduler's lease and its record. At most one row per (job, day) (a unique
    index): the scheduler that inserts it, or takes it over by a conditional UPDATE once
    its lease has lapsed (a crashed holder, a failed run to retry), runs the job; the
    others leave it. The lease is renewed while the job runs."""

    id = fields.BigIntField(primary_key=True)
    job = fields.CharField(max_length=32)
    day = fields.DateField()
    status = fields.CharEnumField(JobRunStatus, max_length=8)
    owner = fields.CharField(max_length=100)  # host:pid:random of the scheduler holding or having run it
    lease_until = fields.DatetimeField()
    attempts = fields.SmallIntField(default=1)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    outcome = fields.TextField(null=True)  # the job's summary line, or the error of a failed run
    counts = fields.JSONField(null=True)  # the job's counts, e.g. {"examined": 3, "downgraded": 1}

    class Meta:
        table = "job_run"
        unique_together = (("job", "day"),)


class RulesChangeRun(Model):
    """The audit record of one `loyalty rules apply` (loyalty.rulechange): who applied
    which rules file (its SHA-256) when, and what it changed. A run that stops midway
    stays RUNNING or FAILED; running the file again finishes the rest."""

    id = fields.BigIntField(primary_key=True)
    rules_hash = fields.CharField(max_length=64, db_index=True)
    rules_path = fields.CharField(max_length=300)
    actor = fields.CharField(max_length=100)
    day = fields.DateField()  # the programme day the run judged tiers and expiry on
    status = fields.CharEnumField(JobRunStatus, max_length=8)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    outcome = fields.TextField(null=True)  # the summary line, or the error of a failed run
    counts = fields.JSONField(null=True)  # members examined and changed, entries, miles, transitions

    class Meta:
        table = "rules_change_run"


class ClaimStatus(str, Enum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class MilesClaim(Model):
    """A member's claim for a flight that was not credited (loyalty.claims): PENDING
    until the airline or an admin approves it (the flight posted, its entry linked) or
    rejects it with a reason."""

    id = fields.BigIntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="miles_claims", on_delete=fields.RESTRICT)
    member_id: int
    carrier = fields.CharField(max_length=3)
    flight_number = fields.CharField(max_length=8)
    flight_date = fields.DateField()
    origin = fields.CharField(max_length=3)
    destination = fields.CharField(max_length=3)
    distance_km = fields.IntField()
    fare_class = fields.CharField(max_length=1)
    status = fields.CharEnumField(ClaimStatus, max_length=8, default=ClaimStatus.PENDING)
    submitted_at = fields.DatetimeField()
    submitted_on = fields.DateField()  # the programme day: the claims window is judged on it
    decided_at = fields.DatetimeField(null=True)
    decided_by = fields.CharField(max_length=100, null=True)
    reason = fields.CharField(max_length=300, null=True)
    entry = fields.OneToOneField("models.LedgerEntry", related_name="claim", null=True, on_delete=fields.RESTRICT)
    entry_id: int | None

    class Meta:
        table = "miles_claim"
        indexes = (("member_id", "submitted_at", "id"), ("status", "submitted_at", "id"), ("submitted_at", "id"))


class WebhookStatus(str, Enum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"


class PartnerWebhook(Model):
    """A partner's webhook (loyalty.webhooks): the tier changes the partner may see, POSTed
    to its url in log order, signed with its secret. ``cursor`` is the position of the
    last event delivered (or passed as not the partner's); failures count the failed
    attempts in a row, and after the settings' maximum the webhook is PAUSED until resumed.
    A dispatcher delivers a partner's events only while it holds the lease
    (lease_owner, lease_until), taken by a conditional UPDATE."""

    id = fields.IntField(primary_key=True)
    partner = fields.OneToOneField("models.Partner", related_name="webhook", on_delete=fields.RESTRICT)
    partner_id: int
    url = fields.CharField(max_length=500)
    # The HMAC key: kept in full to sign with, shown to the operator once (set, rotate).
    secret = fields.CharField(max_length=100)
    status = fields.CharEnumField(WebhookStatus, max_length=8, default=WebhookStatus.ACTIVE)
    cursor = fields.BigIntField(default=0)
    failures = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_error = fields.CharField(max_length=300, null=True)
    paused_at = fields.DatetimeField(null=True)
    lease_owner = fields.CharField(max_length=100, null=True)
    lease_until = fields.DatetimeField()
    created_at = fields.DatetimeField()
    secret_set_at = fields.DatetimeField()

    class Meta:
        table = "partner_webhook"
        # The dispatcher's read: ACTIVE webhooks due an attempt.
        indexes = (("status", "next_attempt_at"),)


class WebhookDelivery(Model):
    """One attempt to deliver one event to a partner's webhook, kept as the delivery log:
    its HTTP status (null when no response came), the error, how long it took."""

    id = fields.BigIntField(primary_key=True)
    webhook = fields.ForeignKeyField("models.PartnerWebhook", related_name="deliveries", on_delete=fields.RESTRICT)
    webhook_id: int
    event_id = fields.BigIntField()
    attempt = fields.IntField()
    delivered = fields.BooleanField()
    status_code = fields.IntField(null=True)
    error = fields.CharField(max_length=300, null=True)
    duration_ms = fields.IntField()
    at = fields.DatetimeField()

    class Meta:
        table = "webhook_delivery"
        # A webhook's log, newest first by key (members.paging.newest_first).
        indexes = (("webhook_id", "at", "id"),)
