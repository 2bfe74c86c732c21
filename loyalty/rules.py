"""The programme's rule set as data: loading and validating a rules file.

Every number of RULES.md lives in a TOML file (``default_rules.toml`` ships
with the package); this module turns it into immutable ``Rules``. Segments
are kept as integer hundredths everywhere in code (25 segments = 2500, an
H ticket = 75), so sums and comparisons are exact.

Standard library only: the service, CLI and tests all share it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

__all__ = [
    "DEFAULT_RULES_PATH",
    "TIERS",
    "Rules",
    "RulesError",
    "TierRule",
    "CareRules",
    "LifecycleRules",
    "load_rules",
    "parse_rules",
]

TIERS: tuple[str, ...] = ("STANDARD", "SILVER", "GOLD", "PLATINUM")
DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.toml")

# Top-level integer settings and whether 0 is meaningful for them (a window
# or renewal of zero months would make every tier lapse at once).
_SETTINGS: dict[str, int] = {
    "window_months": 1,
    "claims_window_months": 0,
    "minimum_distance_km": 0,
    "credit_validity_months": 0,
    "renewal_months": 1,
    "at_risk_months": 0,
    "expiring_soon_days": 0,
    "partner_daily_miles_cap": 1,
}
_TIER_KEYS = (
    "upgrade_miles",
    "upgrade_segments",
    "retain_miles",
    "retain_segments",
    "validity_months",
    "bonus_percent",
)
_MAX_PERCENT = 1000


class RulesError(ValueError):
    """A rules file or mapping is unusable; ``field`` is the offending path."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TierRule:
    """Thresholds of one tier; segments in hundredths."""

    tier: str
    upgrade_miles: int
    upgrade_segments: int
    retain_miles: int
    retain_segments: int
    validity_months: int
    bonus_percent: int


@dataclass(frozen=True)
class LifecycleRules:
    """How a member's lifecycle stage follows from their earning activity (see the
    [care.lifecycle] table of the rules file)."""

    period_months: int
    new_months: int
    decline_percent: int
    growth_percent: int


@dataclass(frozen=True)
class CareRules:
    """Numbers of the regional offices' VIP care: call intervals, welcome calls after an
    upgrade, complaint response time, value segments and lifecycle stages."""

    complaint_response_hours: int
    upgrade_call_days: int
    value_window_months: int
    value_high_percent: int
    value_medium_percent: int
    # Days between calls per elite tier name (SILVER, GOLD, PLATINUM).
    call_interval_days: Mapping[str, int] = field(hash=False)
    lifecycle: LifecycleRules = field(hash=False)
    # The most goodwill miles one credit may give, per staff role (OFFICE, BRANCH, ADMIN).
    goodwill_max_miles: Mapping[str, int] = field(hash=False, default_factory=lambda: MappingProxyType({}))

    def call_interval(self, tier: str) -> int | None:
        """Days between calls for `tier`; None for STANDARD (not a VIP)."""
        return self.call_interval_days.get(tier)


@dataclass(frozen=True)
class Rules:
    """A validated rule set. ``tiers`` is ordered lowest (STANDARD) first."""

    window_months: int
    claims_window_months: int
    minimum_distance_km: int
    credit_validity_months: int
    renewal_months: int
    at_risk_months: int
    expiring_soon_days: int
    # The most redeemable miles one partner may credit in any 24 hours (all members).
    partner_daily_miles_cap: int
    tiers: tuple[TierRule, ...]
    # Read-only view; excluded from hashing because mappings are unhashable.
    fare_classes: Mapping[str, int] = field(hash=False)
    care: CareRules = field(hash=False)

    def tier(self, name: str) -> TierRule:
        """The rule of tier ``name``; ValueError for an unknown tier."""
        return self.tiers[self.rank(name)]

    def rank(self, name: str) -> int:
        """0 for STANDARD up to 3 for PLATINUM; ValueError for an unknown tier."""
        try:
            return TIERS.index(name)
        except ValueError:
            raise ValueError(f"unknown tier {name!r}") from None


def load_rules(path: str | Path | None = None) -> Rules:
    """Read and validate a rules file (``None``: the shipped default)."""
    path = DEFAULT_RULES_PATH if path is None else Path(path)
    source = f"rules file {path}"
    try:
        with open(path, "rb") as fh:
            # Decimal keeps "0.75" segments exact instead of a binary float.
            data = tomllib.load(fh, parse_float=Decimal)
    except OSError as exc:
        raise RulesError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: invalid TOML: {exc}") from None
    return parse_rules(data, source=source)


def parse_rules(data: Mapping[str, Any], *, source: str = "rules") -> Rules:
    """Validate an already-parsed mapping (as from tomllib) into ``Rules``.

    ``source`` prefixes every error message, e.g. "rules file /x.toml".
    """
    return _Parser(source).rules(data)


class _Parser:
    """Validation with messages of the form "<source>: <field> <problem>"."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> RulesError:
        return RulesError(f"{self.source}: {path} {problem}", field=path)

    def table(self, data: Any, path: str, expected: tuple[str, ...]) -> Mapping[str, Any]:
        """A table with exactly the ``expected`` keys (unknown keys refused)."""
        if not isinstance(data, Mapping):
            raise self.fail(path or "(top level)", "must be a table")
        prefix = f"{path}." if path else ""
        unknown = [k for k in data if k not in expected]
        if unknown:
            names = ", ".join(prefix + str(k) for k in unknown)
            raise RulesError(f"{self.source}: unknown key(s) {names}", field=prefix + str(unknown[0]))
        for key in expected:
            if key not in data:
                raise self.fail(prefix + key, "is required")
        return data

    def integer(self, value: Any, path: str, minimum: int = 0, maximum: int | None = None) -> int:
        # bool is an int subclass; "true" is never a count.
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            what = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
            raise self.fail(path, f"must be {what}")
        if maximum is not None and value > maximum:
            raise self.fail(path, f"must be between {minimum} and {maximum}")
        return value

    def segments(self, value: Any, path: str) -> int:
        """Decimal segments (25, 0.75) to exact integer hundredths."""
        problem = "must be a non-negative number of segments with at most 2 decimals"
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise self.fail(path, problem)
        try:
            # repr() of a float is its shortest round-trip text: 0.75 -> "0.75".
            exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            hundredths = exact * 100
            if not exact.is_finite() or exact < 0 or hundredths != hundredths.to_integral_value():
                raise self.fail(path, problem)
        except InvalidOperation:
            raise self.fail(path, problem) from None
        return int(hundredths)

    def rules(self, data: Any) -> Rules:
        top = self.table(data, "", (*_SETTINGS, "tiers", "fare_classes", "care"))
        settings = {k: self.integer(top[k], k, minimum) for k, minimum in _SETTINGS.items()}
        tiers = self.tiers(top["tiers"])
        fares = self.fare_classes(top["fare_classes"])
        return Rules(**settings, tiers=tiers, fare_classes=MappingProxyType(fares), care=self.care(top["care"]))

    def care(self, data: Any) -> CareRules:
        keys = ("complaint_response_hours", "upgrade_call_days", "value_window_months",
                "value_high_percent", "value_medium_percent")
        t = self.table(data, "care", (*keys, "call_interval_days", "lifecycle", "goodwill_max_miles"))
        numbers = {k: self.integer(t[k], f"care.{k}", 1) for k in keys}
        for key in ("value_high_percent", "value_medium_percent"):
            self.integer(numbers[key], f"care.{key}", 1, 100)
        if numbers["value_medium_percent"] < numbers["value_high_percent"]:
            raise self.fail("care.value_medium_percent", "must not be below care.value_high_percent")
        elite = TIERS[1:]
        intervals = self.table(t["call_interval_days"], "care.call_interval_days", elite)
        days = {name: self.integer(intervals[name], f"care.call_interval_days.{name}", 1) for name in elite}
        life = self.table(t["lifecycle"], "care.lifecycle", ("period_months", "new_months", "decline_percent", "growth_percent"))
        lifecycle = LifecycleRules(
            period_months=self.integer(life["period_months"], "care.lifecycle.period_months", 1),
            new_months=self.integer(life["new_months"], "care.lifecycle.new_months"),
            decline_percent=self.integer(life["decline_percent"], "care.lifecycle.decline_percent", 1, 100),
            growth_percent=self.integer(life["growth_percent"], "care.lifecycle.growth_percent", 100, _MAX_PERCENT),
        )
        roles = ("OFFICE", "BRANCH", "ADMIN")
        caps = self.table(t["goodwill_max_miles"], "care.goodwill_max_miles", roles)
        goodwill = {role: self.integer(caps[role], f"care.goodwill_max_miles.{role}", 1) for role in roles}
        return CareRules(**numbers, call_interval_days=MappingProxyType(days), lifecycle=lifecycle,
                         goodwill_max_miles=MappingProxyType(goodwill))

    def tiers(self, data: Any) -> tuple[TierRule, ...]:
        if isinstance(data, Mapping):
            unknown = [k for k in data if k not in TIERS]
            if unknown:
                raise self.fail(f"tiers.{unknown[0]}", f"is not a tier (expected exactly {', '.join(TIERS)})")
        table = self.table(data, "tiers", TIERS)
        rules = tuple(self.tier_rule(name, table[name]) for name in TIERS)
        self.check_standard(rules[0])
        self.check_ladder(rules)
        return rules

    def tier_rule(self, name: str, data: Any) -> TierRule:
        path = f"tiers.{name}"
        t = self.table(data, path, _TIER_KEYS)
        rule = TierRule(
            tier=name,
            upgrade_miles=self.integer(t["upgrade_miles"], f"{path}.upgrade_miles"),
            upgrade_segments=self.segments(t["upgrade_segments"], f"{path}.upgrade_segments"),
            retain_miles=self.integer(t["retain_miles"], f"{path}.retain_miles"),
            retain_segments=self.segments(t["retain_segments"], f"{path}.retain_segments"),
            validity_months=self.integer(t["validity_months"], f"{path}.validity_months"),
            bonus_percent=self.integer(t["bonus_percent"], f"{path}.bonus_percent", 0, _MAX_PERCENT),
        )
        # Retention below upgrade is the point of a retain threshold; above it
        # a member could be upgraded and downgraded on the same totals.
        for kind in ("miles", "segments"):
            if getattr(rule, f"retain_{kind}") > getattr(rule, f"upgrade_{kind}"):
                raise self.fail(f"{path}.retain_{kind}", f"must not exceed {path}.upgrade_{kind}")
        if name != TIERS[0] and rule.validity_months < 1:
            raise self.fail(f"{path}.validity_months", "must be an integer >= 1")
        return rule

    def check_standard(self, rule: TierRule) -> None:
        # STANDARD is the enrolment tier: it is never earned, kept or lost.
        for key in ("upgrade_miles", "upgrade_segments", "retain_miles", "retain_segments", "validity_months"):
            if getattr(rule, key) != 0:
                raise self.fail(f"tiers.STANDARD.{key}", "must be 0 (STANDARD is the enrolment tier)")

    def check_ladder(self, rules: tuple[TierRule, ...]) -> None:
        # Strictly increasing thresholds make "the highest tier met" unique and
        # guarantee that missing a tier's retain threshold misses all above it.
        for lower, higher in zip(rules, rules[1:]):
            for key in ("upgrade_miles", "upgrade_segments", "retain_miles", "retain_segments"):
                if getattr(higher, key) <= getattr(lower, key):
                    raise self.fail(
                        f"tiers.{higher.tier}.{key}",
                        f"must be greater than tiers.{lower.tier}.{key}",
                    )

    def fare_classes(self, data: Any) -> dict[str, int]:
        if not isinstance(data, Mapping) or not data:
            raise self.fail("fare_classes", "must be a non-empty table")
        fares: dict[str, int] = {}
        for letter, percent in data.items():
            path = f"fare_classes.{letter}"
            if not (isinstance(letter, str) and len(letter) == 1 and "A" <= letter <= "Z"):
                raise self.fail(path, "is not a fare class (a single upper-case letter A-Z)")
            fares[letter] = self.integer(percent, path, 0, _MAX_PERCENT)
        return fares
