"""Tortoise models owned by the membership domain."""

from tortoise import fields
from tortoise.models import Model

from members.enums import LifecycleStage, MemberStatus, Tier, ValueSegment


class Branch(Model):
    """A branch (分公司): a group of sales offices."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=8, unique=True)
    name = fields.CharField(max_length=100)

    offices: fields.ReverseRelation["Office"]

    class Meta:
        table = "branch"


class Office(Model):
    """A sales office (营业部): VIPs are assigned to one by their contact address."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=8, unique=True)
    name = fields.CharField(max_length=100)
    city = fields.CharField(max_length=64)
    province = fields.CharField(max_length=64, null=True)
    country = fields.CharField(max_length=2)
    branch: fields.ForeignKeyRelation[Branch] = fields.ForeignKeyField(
        "models.Branch", related_name="offices", on_delete=fields.RESTRICT
    )
    branch_id: int

    class Meta:
        table = "office"


class AddressRule(Model):
    """Maps (country, province, city) to an office: '' in province or city means "any".

    Keys are stored normalised (see members.addresses.address_key) so that the lookup
    is an equality match; the empty string rather than NULL keeps the unique index
    effective on every database (NULLs are distinct in unique indexes).
    """

    id = fields.IntField(primary_key=True)
    country = fields.CharField(max_length=2)
    province = fields.CharField(max_length=64)
    city = fields.CharField(max_length=64)
    office: fields.ForeignKeyRelation[Office] = fields.ForeignKeyField(
        "models.Office", related_name="address_rules", on_delete=fields.RESTRICT
    )
    office_id: int

    class Meta:
        table = "address_rule"
        unique_together = (("country", "province", "city"),)


class Member(Model):
    """A programme member. Balances and tier are kept on the row for reads,
    the ledger (loyalty.models) is the source of truth for miles."""

    id = fields.IntField(primary_key=True)
    card_number = fields.CharField(max_length=11, unique=True)
    family_name = fields.CharField(max_length=64, db_index=True)
    given_name = fields.CharField(max_length=64, db_index=True)
    status = fields.CharEnumField(MemberStatus, max_length=10, default=MemberStatus.ACTIVE)
    birth_date = fields.DateField(null=True)
    # Phone and email as given, sealed (AES-GCM, members.contacts): no plain phone or
    # email is stored. Read them with members.services.member_phone / member_email.
    phone_cipher = fields.TextField(null=True)
    email_cipher = fields.TextField(null=True)
    # Keyed hashes (HMAC, members.contacts) of the normalised phone and email: sign-in by
    # phone and DUPLICATE compare them. Set while the member is ACTIVE or SUSPENDED,
    # cleared when CLOSED so that the person may enrol again. A unique index on a
    # nullable column lets the database itself refuse a second holder.
    phone_hash = fields.CharField(max_length=32, null=True, unique=True)
    email_hash = fields.CharField(max_length=32, null=True, unique=True)
    address_country = fields.CharField(max_length=2)
    address_province = fields.CharField(max_length=64, null=True)
    address_city = fields.CharField(max_length=64)
    address_line = fields.CharField(max_length=200, null=True)
    address_postal_code = fields.CharField(max_length=16, null=True)
    office: fields.ForeignKeyRelation[Office] = fields.ForeignKeyField(
        "models.Office", related_name="members", on_delete=fields.RESTRICT
    )
    office_id: int
    # Denormalised from the office so branch-scoped lists filter on one indexed column.
    branch_id = fields.IntField()
    enrolled_at = fields.DatetimeField(auto_now_add=True)
    tier = fields.IntEnumField(Tier, default=Tier.STANDARD)
    tier_since = fields.DateField()
    tier_valid_until = fields.DateField(null=True)
    # The programme day the current tier was recorded (its tier event written), which is
    # later than tier_since for an upgrade posted late from an old flight: the welcome
    # call runs from it (care.calls). NULL on rows from before it was kept: tier_since.
    tier_recorded_on = fields.DateField(null=True)
    # Running total of redeemable miles; `loyalty ledger reconcile` proves it.
    redeemable_miles = fields.BigIntField(default=0)
    # VIP care, kept on the row so that worklists and filters are plain indexed reads:
    # the day of the last care call that reached the member (REACHED or DECLINED), the
    # follow-up date the last call asked for, and the stage and value segment written
    # by `loyalty care refresh` (care.segments) as of care_refreshed_on.
    care_last_contact_on = fields.DateField(null=True)
    care_follow_up_on = fields.DateField(null=True)
    lifecycle_stage = fields.CharEnumField(LifecycleStage, max_length=10, default=LifecycleStage.NEW)
    value_segment = fields.CharEnumField(ValueSegment, max_length=6, default=ValueSegment.LOW)
    care_refreshed_on = fields.DateField(null=True)
    # The refresh day on which lifecycle_stage last changed: a DECLINING or DORMANT VIP
    # is due a call until contacted on or after it (care.calls).
    lifecycle_since = fields.DateField(null=True)
    # Qualifying miles and segments (hundredths) so far in the retention window of the
    # current tier (the window_months ending with tier_valid_until's month; 0 without a
    # validUntil), kept by loyalty.changes in the transaction of every posting and tier
    # change, so that "at risk of downgrade" is a predicate SQL can count.
    retention_miles = fields.IntField(default=0)
    retention_segments = fields.IntField(default=0)
    # The care worklist's order (care.calls), kept in the transaction of every change of
    # the facts it follows from and by `loyalty care refresh`: care_priority is the most
    # urgent reason's rank * 10 + (3 - tier) (NULL: not due), care_due_since the day that
    # reason is due since; the state holds from care_state_on until care_recheck_on, the
    # next day on which the mere passing of time may change it.
    care_priority = fields.SmallIntField(null=True)
    care_due_since = fields.DateField(null=True)
    care_state_on = fields.DateField(null=True)
    care_recheck_on = fields.DateField(null=True)
    # Consents (members.privacy, docs/PRIVACY.md): greetings (birthday and festival
    # greetings, which greetingsDue honours) are on unless the member withdraws them;
    # marketing is opt-in. consents_updated_at: the last change of either (NULL: never).
    consent_greetings = fields.BooleanField(default=True, db_default=True)
    consent_marketing = fields.BooleanField(default=False, db_default=False)
    consents_updated_at = fields.DatetimeField(null=True)
    # When the member's personal data was erased (privacy.erasure); NULL: never. The row,
    # its card number, ledger and balances stay.
    erased_at = fields.DatetimeField(null=True)

    class Meta:
        table = "member"
        # Every ordering of members.queries.list_members has an index in its own order
        # for each scope (whole programme, one branch, one office) after the tier: the
        # list reads one tier at a time (tier = t), so a page reads only its rows
        # whatever the size of the programme and the tiers filter. id ends each so that
        # the keyset tie-break is in the index on PostgreSQL too (SQLite has it as
        # rowid). (tier_valid_until, id) pages the tier review by key.
        indexes = (
            ("tier", "family_name", "given_name", "id"),
            ("office_id", "tier", "family_name", "given_name", "id"),
            ("branch_id", "tier", "family_name", "given_name", "id"),
            ("tier", "card_number"),
            ("office_id", "tier", "card_number"),
            ("branch_id", "tier", "card_number"),
            ("tier", "enrolled_at", "id"),
            ("office_id", "tier", "enrolled_at", "id"),
            ("branch_id", "tier", "enrolled_at", "id"),
            ("tier_valid_until", "id"),
            ("office_id", "lifecycle_stage"),
            ("office_id", "value_segment"),
            # careCallsDue of an office, a branch, everyone: seek and keyset in this order.
            ("office_id", "status", "care_priority", "care_due_since", "id"),
            ("branch_id", "status", "care_priority", "care_due_since", "id"),
            ("status", "care_priority", "care_due_since", "id"),
            # Rows whose worklist state is due a recheck (the daily job; per office or
            # branch at read time), or was computed for a later day. In Meta, not
            # db_index: a migration's AddField does not create a field's index.
            ("care_recheck_on",),
            ("office_id", "care_recheck_on"),
            ("branch_id", "care_recheck_on"),
            ("care_state_on",),
            # Region statistics of an office's VIPs (care.stats: contacted within the
            # interval, at risk of downgrade) read from the index alone.
            ("office_id", "status", "tier", "care_last_contact_on", "tier_valid_until", "retention_miles",
             "retention_segments"),
        )


class OfficeTierCount(Model):
    """How many members of one tier are assigned to one office, whatever their status:
    the rollup that tierCounts reads (members.regions), so that a branch's or the whole
    programme's counts cost a few hundred rows and not a count of every member. Kept in
    the transaction of every enrolment, tier change and office move
    (members.regions.move_tier_counts); one row per office and tier, made with the
    office (members.regions.load_region_data)."""

    id = fields.IntField(primary_key=True)
    office: fields.ForeignKeyRelation[Office] = fields.ForeignKeyField(
        "models.Office", related_name="tier_counts", on_delete=fields.RESTRICT
    )
    office_id: int
    tier = fields.IntEnumField(Tier)
    members = fields.IntField(default=0)

    class Meta:
        table = "office_tier_count"
        unique_together = (("office_id", "tier"),)


class RegionAssignment(Model):
    """History of a member's office: every assignment is kept."""

    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="region_history", on_delete=fields.RESTRICT
    )
    member_id: int
    office: fields.ForeignKeyRelation[Office] = fields.ForeignKeyField(
        "models.Office", related_name="assignments", on_delete=fields.RESTRICT
    )
    office_id: int
    assigned_at = fields.DatetimeField(auto_now_add=True)
    reason = fields.CharField(max_length=300)
    actor = fields.CharField(max_length=100)

    class Meta:
        table = "region_assignment"


class MemberStatusChange(Model):
    """Audit of memberStatusSet: who changed a member's status, when and why."""

    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="status_changes", on_delete=fields.RESTRICT
    )
    member_id: int
    from_status = fields.CharEnumField(MemberStatus, max_length=10)
    to_status = fields.CharEnumField(MemberStatus, max_length=10)
    reason = fields.CharField(max_length=300)
    actor = fields.CharField(max_length=100)
    changed_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "member_status_change"


class IdempotencyRecord(Model):
    """One row per (caller, idempotencyKey): the request's fingerprint and the object
    it produced. The unique index makes the database the arbiter of a replay race."""

    id = fields.IntField(primary_key=True)
    caller = fields.CharField(max_length=120)
    key = fields.CharField(max_length=128)
    operation = fields.CharField(max_length=40)
    fingerprint = fields.CharField(max_length=64)
    result_id = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_record"
        unique_together = (("caller", "key"),)
        # The records of one result (an erasure scrubs the requests that carried the member's data).
        indexes = (("operation", "result_id"),)


class Partner(Model):
    """A registered partner programme: tokens naming an unknown or disabled code are refused."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=12, unique=True)
    name = fields.CharField(max_length=100)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "partner"


class MemberCredential(Model):
    """A member's password (argon2id hash) and sign-in failures (members.credentials)."""

    id = fields.IntField(primary_key=True)
    member: fields.OneToOneRelation[Member] = fields.OneToOneField(
        "models.Member", related_name="credential", on_delete=fields.RESTRICT
    )
    member_id: int
    password_hash = fields.CharField(max_length=200)
    # Failed sign-ins in a row, and the lockout they earned (members.credentials).
    failed_attempts = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    changed_at = fields.DatetimeField()

    class Meta:
        table = "member_credential"


class RefreshToken(Model):
    """A refresh token, stored as the SHA-256 of its text, one per rotation. The family
    groups the tokens rotated from one sign-in (revoked together)."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="refresh_tokens", on_delete=fields.RESTRICT
    )
    member_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    family = fields.CharField(max_length=32)
    issued_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_token"
        indexes = (("family",), ("member_id", "id"))


class MemberErasure(Model):
    """Audit of memberErase: who erased a member's personal data, when and why (the
    reason is the operator's words, never the member's data). One per member."""

    id = fields.IntField(primary_key=True)
    member: fields.OneToOneRelation[Member] = fields.OneToOneField(
        "models.Member", related_name="erasure", on_delete=fields.RESTRICT
    )
    member_id: int
    erased_at = fields.DatetimeField()
    actor = fields.CharField(max_length=100)
    reason = fields.CharField(max_length=300)

    class Meta:
        table = "member_erasure"


class MemberConsentChange(Model):
    """History of a member's consents: each change of one consent, by whom and when."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="consent_changes", on_delete=fields.RESTRICT
    )
    member_id: int
    consent = fields.CharField(max_length=16)
    granted = fields.BooleanField()
    actor = fields.CharField(max_length=100)
    changed_at = fields.DatetimeField()

    class Meta:
        table = "member_consent_change"
        indexes = (("member_id", "id"),)


class MemberAccess(Model):
    """One caller's read of one member's personal fields in one request (members.access_log):
    the access audit that admins query (memberAccessLog). Written in batches, after the
    read: `at` is when the fields were read."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    # The caller as audit trails write it (role:subject@scope), its role, and the partner
    # code of a partner's token.
    actor = fields.CharField(max_length=200)
    role = fields.CharField(max_length=10)
    partner_code = fields.CharField(max_length=12, null=True)
    # No foreign key: the audit outlives whatever happens to the member row, and a batch
    # insert checks nothing per row.
    member_id = fields.IntField()
    # members.access_log.PersonalField bits: the fields read.
    field_bits = fields.SmallIntField()

    class Meta:
        table = "member_access"
        # (at): the retention job (`loyalty access prune`) finds the rows due by it, so its
        # cost follows the rows removed, not the table.
        indexes = (("member_id", "at", "id"), ("at",))
