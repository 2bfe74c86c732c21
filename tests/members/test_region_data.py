"""The shipped region data set (members/data/regions.json): shape and consistency.

Plain checks on the JSON file; no database is needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DATA_FILE = Path(__file__).resolve().parents[2] / "members" / "data" / "regions.json"

OFFICE_CODE = re.compile(r"^[A-Z]{3}[0-9]{2}$")
BRANCH_CODE = re.compile(r"^[A-Z]{3}$")
COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")

# Every province-level division of mainland China, as spelled in the data set.
MAINLAND_PROVINCES = {
    "Beijing", "Tianjin", "Shanghai", "Chongqing",
    "Hebei", "Shanxi", "Liaoning", "Jilin", "Heilongjiang", "Jiangsu", "Zhejiang",
    "Anhui", "Fujian", "Jiangxi", "Shandong", "Henan", "Hubei", "Hunan", "Guangdong",
    "Hainan", "Sichuan", "Guizhou", "Yunnan", "Shaanxi", "Gansu", "Qinghai",
    "Inner Mongolia", "Guangxi", "Tibet", "Ningxia", "Xinjiang",
}


def _norm(value: str | None) -> str:
    """Same normalisation as the address-rule lookup: spacing- and case-insensitive."""
    return " ".join((value or "").split()).casefold()


def _key(item: dict) -> tuple[str, str, str]:
    return (item["country"], _norm(item["province"]), _norm(item["city"]))


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def offices(data) -> list[dict]:
    return [office for branch in data["branches"] for office in branch["offices"]]


@pytest.fixture(scope="module")
def office_codes(offices) -> set[str]:
    return {office["code"] for office in offices}


def test_top_level_shape(data):
    assert set(data) == {"note", "default_office", "branches", "address_rules"}


def test_note_says_names_are_invented(data):
    assert "invented" in data["note"].lower()


def test_six_branches_with_unique_codes(data):
    codes = [branch["code"] for branch in data["branches"]]
    assert len(codes) == 6
    assert len(set(codes)) == 6
    for branch in data["branches"]:
        assert BRANCH_CODE.match(branch["code"]), branch["code"]
        assert branch["name"].strip() and branch["name"].isascii(), branch
        assert branch["offices"], f"branch {branch['code']} has no offices"


def test_142_offices_with_unique_well_formed_codes(offices):
    codes = [office["code"] for office in offices]
    assert len(codes) == 142
    assert len(set(codes)) == 142
    bad = [code for code in codes if not OFFICE_CODE.match(code)]
    assert not bad


def test_office_fields(offices):
    for office in offices:
        assert set(office) == {"code", "name", "city", "province", "country"}, office
        assert COUNTRY_CODE.match(office["country"]), office
        assert office["name"].strip() and office["name"].isascii(), office
        assert office["city"].strip() and office["city"].isascii(), office
        assert office["province"] is None or (office["province"].strip() and office["province"].isascii()), office
        if office["country"] == "CN":
            assert office["province"] in MAINLAND_PROVINCES, office


def test_every_office_in_a_distinct_city(offices):
    keys = [_key(office) for office in offices]
    duplicates = {key for key in keys if keys.count(key) > 1}
    assert not duplicates


def test_every_mainland_province_has_an_office(offices):
    covered = {office["province"] for office in offices if office["country"] == "CN"}
    assert covered == MAINLAND_PROVINCES


def test_default_office_exists(data, office_codes):
    assert data["default_office"] == "PEK01"
    assert data["default_office"] in office_codes


def test_rule_keys_unique_and_offices_exist(data, office_codes):
    keys = [_key(rule) for rule in data["address_rules"]]
    duplicates = {key for key in keys if keys.count(key) > 1}
    assert not duplicates
    for rule in data["address_rules"]:
        assert set(rule) == {"country", "province", "city", "office"}, rule
        assert COUNTRY_CODE.match(rule["country"]), rule  # '' is reserved for the default rule
        assert rule["office"] in office_codes, rule
        if rule["city"] is not None:
            assert rule["province"] is not None or rule["country"] != "CN", rule


def test_every_office_has_a_city_rule_pointing_to_itself(data, offices):
    city_rules = {_key(rule): rule["office"] for rule in data["address_rules"] if rule["city"] is not None}
    for office in offices:
        assert city_rules.get(_key(office)) == office["code"], office


def test_every_chinese_province_with_an_office_has_a_province_rule(data, offices):
    province_rules = {
        rule["province"]: rule["office"]
        for rule in data["address_rules"]
        if rule["country"] == "CN" and rule["province"] is not None and rule["city"] is None
    }
    by_code = {office["code"]: office for office in offices}
    for province in {office["province"] for office in offices if office["country"] == "CN"}:
        assert province in province_rules, province
        target = by_code[province_rules[province]]
        assert (target["country"], target["province"]) == ("CN", province), province


def test_country_rules(data, offices):
    country_rules = {
        rule["country"]: rule["office"]
        for rule in data["address_rules"]
        if rule["province"] is None and rule["city"] is None
    }
    by_code = {office["code"]: office for office in offices}
    # China has no country rule: an unmatched Chinese address falls through to the default office.
    assert "CN" not in country_rules
    for country in {office["country"] for office in offices} - {"CN"}:
        assert country in country_rules, country
        assert by_code[country_rules[country]]["country"] == country, country
