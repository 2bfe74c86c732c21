"""The rules file: the shipped defaults, and every refusal naming its field."""

from __future__ import annotations

import copy
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from loyalty.rules import DEFAULT_RULES_PATH, TIERS, Rules, RulesError, TierRule, load_rules, parse_rules


def default_data() -> dict:
    with open(DEFAULT_RULES_PATH, "rb") as fh:
        return tomllib.load(fh, parse_float=Decimal)


def refused(data: dict) -> RulesError:
    with pytest.raises(RulesError) as info:
        parse_rules(data, source="rules file /x.toml")
    return info.value


def test_default_settings():
    rules = load_rules()
    assert rules == load_rules(DEFAULT_RULES_PATH)
    assert rules.window_months == 12
    assert rules.claims_window_months == 6
    assert rules.minimum_distance_km == 500
    assert rules.credit_validity_months == 36
    assert rules.renewal_months == 12
    assert rules.at_risk_months == 6
    assert rules.expiring_soon_days == 90


def test_default_tiers_in_hundredths_of_segments():
    rules = load_rules()
    assert [t.tier for t in rules.tiers] == list(TIERS) == ["STANDARD", "SILVER", "GOLD", "PLATINUM"]
    assert rules.tier("STANDARD") == TierRule("STANDARD", 0, 0, 0, 0, 0, 0)
    assert rules.tier("SILVER") == TierRule("SILVER", 40_000, 2500, 35_000, 2300, 24, 25)
    assert rules.tier("GOLD") == TierRule("GOLD", 80_000, 4000, 70_000, 3600, 24, 30)
    assert rules.tier("PLATINUM") == TierRule("PLATINUM", 160_000, 9000, 145_000, 8000, 24, 50)
    assert [rules.rank(t) for t in TIERS] == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        rules.rank("DIAMOND")


def test_default_fare_classes():
    assert dict(load_rules().fare_classes) == {
        "J": 300, "C": 200, "D": 150, "Z": 125, "R": 110, "Y": 110, "B": 100, "M": 100, "U": 100,
        "H": 75, "Q": 75, "V": 75, "W": 50, "S": 50, "T": 50, "L": 25, "P": 25, "A": 25, "K": 25,
        "I": 0, "X": 0, "N": 0, "O": 0,
    }


def test_rules_are_immutable():
    rules = load_rules()
    with pytest.raises(AttributeError):
        rules.window_months = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        rules.fare_classes["E"] = 100  # type: ignore[index]


def test_a_changed_file_is_used(tmp_path: Path):
    text = DEFAULT_RULES_PATH.read_text().replace("window_months = 12", "window_months = 18")
    text = text.replace("upgrade_segments = 25", "upgrade_segments = 24.5")
    path = tmp_path / "rules.toml"
    path.write_text(text)
    rules = load_rules(str(path))
    assert rules.window_months == 18
    assert rules.tier("SILVER").upgrade_segments == 2450


@pytest.mark.parametrize(
    ("value", "hundredths"),
    [(25, 2500), (Decimal("0.75"), 75), (0.75, 75), (Decimal("23.10"), 2310), (Decimal("24.000"), 2400)],
)
def test_segments_convert_exactly_to_hundredths(value, hundredths):
    data = default_data()
    data["tiers"]["SILVER"]["retain_segments"] = value
    assert parse_rules(data).tier("SILVER").retain_segments == hundredths


def test_toml_syntax_error_names_the_file(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text("window_months = = 12\n")
    with pytest.raises(RulesError, match=rf"rules file {path}: invalid TOML"):
        load_rules(path)


def test_missing_file_names_the_file(tmp_path: Path):
    path = tmp_path / "absent.toml"
    with pytest.raises(RulesError, match=rf"rules file {path}: cannot be read"):
        load_rules(path)


def test_error_message_names_file_and_field(tmp_path: Path):
    path = tmp_path / "x.toml"
    path.write_text(DEFAULT_RULES_PATH.read_text().replace("upgrade_miles = 80000", "upgrade_miles = -1"))
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(info.value) == f"rules file {path}: tiers.GOLD.upgrade_miles must be a non-negative integer"
    assert info.value.field == "tiers.GOLD.upgrade_miles"


def _set(path: str, value):
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            data = data[key]
        data[last] = value
    return change


def _delete(path: str):
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            data = data[key]
        del data[last]
    return change


BAD = [
    # (change, field named, words in the message)
    (_delete("window_months"), "window_months", "is required"),
    (_delete("fare_classes"), "fare_classes", "is required"),
    (_delete("tiers.GOLD.retain_segments"), "tiers.GOLD.retain_segments", "is required"),
    (_delete("tiers.PLATINUM"), "tiers.PLATINUM", "is required"),
    (_set("claims_window_months", -6), "claims_window_months", "non-negative integer"),
    (_set("credit_validity_months", "36"), "credit_validity_months", "non-negative integer"),
    (_set("minimum_distance_km", Decimal("500.5")), "minimum_distance_km", "non-negative integer"),
    (_set("expiring_soon_days", True), "expiring_soon_days", "non-negative integer"),
    (_set("window_months", 0), "window_months", ">= 1"),
    (_set("renewal_months", 0), "renewal_months", ">= 1"),
    (_set("tiers.SILVER.validity_months", 0), "tiers.SILVER.validity_months", ">= 1"),
    (_set("tiers.GOLD.upgrade_miles", -1), "tiers.GOLD.upgrade_miles", "non-negative integer"),
    (_set("tiers.GOLD.upgrade_segments", Decimal("40.125")), "tiers.GOLD.upgrade_segments", "at most 2 decimals"),
    (_set("tiers.GOLD.upgrade_segments", -40), "tiers.GOLD.upgrade_segments", "non-negative"),
    (_set("tiers.GOLD.upgrade_segments", "40"), "tiers.GOLD.upgrade_segments", "number of segments"),
    (_set("tiers.GOLD.bonus_percent", 1001), "tiers.GOLD.bonus_percent", "between 0 and 1000"),
    (_set("tiers.GOLD", 5), "tiers.GOLD", "must be a table"),
    (_set("tiers", []), "tiers", "must be a table"),
    (_set("tiers.DIAMOND", {}), "tiers.DIAMOND", "is not a tier"),
    (_set("tiers.STANDARD.upgrade_miles", 1), "tiers.STANDARD.upgrade_miles", "must be 0"),
    (_set("tiers.STANDARD.validity_months", 24), "tiers.STANDARD.validity_months", "must be 0"),
    # thresholds strictly increasing from SILVER to PLATINUM
    (_set("tiers.SILVER.upgrade_miles", 80_000), "tiers.GOLD.upgrade_miles", "greater than tiers.SILVER.upgrade_miles"),
    (_set("tiers.GOLD.upgrade_segments", 90), "tiers.PLATINUM.upgrade_segments", "greater than tiers.GOLD"),
    (_set("tiers.GOLD.retain_miles", 35_000), "tiers.GOLD.retain_miles", "greater than tiers.SILVER.retain_miles"),
    (_set("tiers.PLATINUM.retain_segments", 36), "tiers.PLATINUM.retain_segments", "greater than tiers.GOLD"),
    # retain <= upgrade
    (_set("tiers.SILVER.retain_miles", 40_001), "tiers.SILVER.retain_miles", "must not exceed tiers.SILVER.upgrade_miles"),
    (_set("tiers.SILVER.retain_segments", 26), "tiers.SILVER.retain_segments", "must not exceed"),
    # fare classes
    (_set("fare_classes.y", 110), "fare_classes.y", "single upper-case letter"),
    (_set("fare_classes.YY", 110), "fare_classes.YY", "single upper-case letter"),
    (_set("fare_classes.1", 110), "fare_classes.1", "single upper-case letter"),
    (_set("fare_classes.E", 1001), "fare_classes.E", "between 0 and 1000"),
    (_set("fare_classes.E", -1), "fare_classes.E", "non-negative integer"),
    (_set("fare_classes.E", Decimal("1.5")), "fare_classes.E", "non-negative integer"),
    (_set("fare_classes", {}), "fare_classes", "non-empty table"),
    # unknown keys, named
    (_set("windw_months", 12), "windw_months", "unknown key(s) windw_months"),
    (_set("tiers.GOLD.bonus", 30), "tiers.GOLD.bonus", "unknown key(s) tiers.GOLD.bonus"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD, ids=[f"{b[1]}:{b[2]}" for b in BAD])
def test_bad_rules_are_refused_naming_the_field(change, field, words):
    data = copy.deepcopy(default_data())
    change(data)
    error = refused(data)
    assert error.field == field
    assert str(error).startswith("rules file /x.toml: ")
    assert field in str(error)
    assert words in str(error)


def test_limits_are_inclusive():
    data = default_data()
    data["fare_classes"]["E"] = 1000
    data["fare_classes"]["F"] = 0
    data["tiers"]["GOLD"]["retain_miles"] = 80_000  # retain == upgrade is allowed
    rules = parse_rules(data)
    assert isinstance(rules, Rules)
    assert rules.fare_classes["E"] == 1000
    assert rules.tier("GOLD").retain_miles == 80_000
