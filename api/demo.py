"""Reproducible demo data for `loyalty demo` (OPERATIONS.md): N invented members over
every office and tier, with ledgers the programme's own jobs agree with.

- Member i is the same invented person for every N and every run (its own random
  stream, seeded by SEED and i): names (Chinese or Latin), card number, phone, email,
  birth date, address. A run creates the members 0..N-1 whose card number is not in
  the database yet: running it again adds nothing, a larger N tops up.
- Addresses come from the address rules and are checked once per office with the
  enrolment lookup (members.addresses.office_for_address), so a member's office is
  the one its address gives. Members 0..141 take the offices one each, the others go
  mostly to the big cities.
- Ledgers are the programme's own: each member's activities (flights, partner credits,
  redemptions) are applied in date order to a loyalty.book.MemberBook, the code that
  decides what the posting services, the tier review and the expiry job write (entries
  with their descriptions, externalRefs and request fingerprints, lots, the running
  balance, tier events with their notes), with the daily jobs run on every day one is
  due up to today. So `loyalty ledger reconcile` finds no difference, `loyalty tiers
  review` / `loyalty miles expire` for today find nothing due, and an API replay of a
  demo externalRef is a replay, not a conflict (tests/loyalty/test_book.py posts demo
  members' activities through the services and compares every row). Each member
  follows a scenario: dormant or occasional flyers, steady SILVER/GOLD/PLATINUM flyers,
  elites upgraded 18 to 20 months ago who have flown little since (at risk of
  downgrade), and former elites who were downgraded. Credits of 34 to 36 months ago
  expire within 90 days. Entries are posted on their activity day (noon, local time).
- Speed: everything is written in ONE transaction (a failed run leaves nothing
  behind), with the posting services' bulk inserts (loyalty.ledger.write_book_rows,
  members.bulk_insert: multi-row INSERT statements of plain tuples) per table and chunk
  of members, with the ids of members and entries given here (PostgreSQL's sequences
  are moved past them). Tortoise's bulk_create builds and validates a model object per
  row: about five times slower for the ~70 rows per member written here.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import random
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Max
from tortoise.transactions import in_transaction

from api.auth import mint_token
from api.demo_care import build_demo_care
from api.settings import Settings
from loyalty import calendar as cal
from loyalty import engine
from loyalty.book import FlightDetails, MemberBook
from loyalty.changes import at_risk, refresh_members
from loyalty.ledger import MEMBER_SOURCE, BookOffice, book_rows, write_book_rows
from loyalty.models import CreditLot, LedgerEntry
from loyalty.rules import TIERS, Rules
from members import partners
from members.access import Role
from members.addresses import Address, office_for_address
from members.bulk_insert import BulkInsert
from members.cards import card_number
from members.enums import MemberStatus, Tier
from members.errors import DomainError
from members.models import Member, Office, RegionAssignment
from members.regions import rebuild_tier_counts, region_data, tier_counts
from members import contacts
from members.services import email_hash, phone_hash

__all__ = ["SEED", "build_demo", "demo_card_number", "demo_phone_digits"]

SEED = "loyalty-demo-1"
TOKEN_TTL_SECONDS = 24 * 3600
DEMO_ACTOR = "admin:demo"  # who "enrolled" the demo members
FLIGHT_ACTOR = "airline:demo"  # the airline system that posted their flights
CHUNK = 500  # members simulated and written per step
PARTNERS = (("HOTEL1", "Demo Hotels (invented)"), ("BANK1", "Demo Bank credit card (invented)"), ("CAR1", "Demo Car Rental (invented)"))
PARTNER_WHAT = {"HOTEL1": "Hotel stay", "BANK1": "Credit card spend", "CAR1": "Car rental"}
# Card serials are a fixed permutation of the 90 million 8-digit serials: the stride is
# coprime with 90,000,000 (odd, not a multiple of 3 or 5), so member i's card is unique.
_CARD_STRIDE, _CARD_OFFSET, _CARD_SPACE = 48_271_391, 31_415_926, 90_000_000
# Phone numbers likewise: a permutation of 9-digit numbers (stride coprime with 10).
_PHONE_STRIDE, _PHONE_OFFSET, _PHONE_SPACE = 7_654_321, 12_345_678, 1_000_000_000

# ---- invented people -------------------------------------------------------------------

_CN_FAMILY = [
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"), ("黄", "Huang"),
    ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun"), ("马", "Ma"), ("朱", "Zhu"),
    ("胡", "Hu"), ("郭", "Guo"), ("何", "He"), ("林", "Lin"), ("高", "Gao"), ("罗", "Luo"), ("郑", "Zheng"),
    ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song"), ("唐", "Tang"), ("韩", "Han"), ("冯", "Feng"), ("邓", "Deng"),
    ("曹", "Cao"), ("彭", "Peng"), ("曾", "Zeng"), ("田", "Tian"), ("董", "Dong"), ("袁", "Yuan"), ("潘", "Pan"),
    ("蒋", "Jiang"), ("蔡", "Cai"), ("欧阳", "Ouyang"), ("司马", "Sima"), ("诸葛", "Zhuge"),
]
_CN_GIVEN = [
    ("伟", "Wei"), ("芳", "Fang"), ("娜", "Na"), ("秀英", "Xiuying"), ("敏", "Min"), ("静", "Jing"), ("丽", "Li"),
    ("强", "Qiang"), ("磊", "Lei"), ("军", "Jun"), ("洋", "Yang"), ("勇", "Yong"), ("艳", "Yan"), ("杰", "Jie"),
    ("娟", "Juan"), ("涛", "Tao"), ("明", "Ming"), ("超", "Chao"), ("秀兰", "Xiulan"), ("霞", "Xia"), ("平", "Ping"),
    ("刚", "Gang"), ("建华", "Jianhua"), ("志强", "Zhiqiang"), ("晓东", "Xiaodong"), ("海燕", "Haiyan"),
    ("子涵", "Zihan"), ("欣怡", "Xinyi"), ("浩然", "Haoran"), ("雨桐", "Yutong"), ("梓轩", "Zixuan"),
    ("思远", "Siyuan"), ("嘉怡", "Jiayi"), ("俊杰", "Junjie"), ("文博", "Wenbo"), ("佳琪", "Jiaqi"), ("宇航", "Yuhang"),
]
_LATIN_FAMILY = [
    "Smith", "Johnson", "Brown", "Garcia", "Müller", "Schmidt", "Martin", "Bernard", "Rossi", "Tanaka", "Suzuki",
    "Sato", "Kim", "Park", "Nguyen", "Tan", "Lim", "Kumar", "Silva", "Novak", "Ivanova", "Andersson", "Dubois",
    "Cohen", "O'Brien", "Wilson", "Taylor", "Kowalski", "Jensen", "Fernández",
]
_LATIN_GIVEN = [
    "James", "Mary", "Anna", "Hans", "Sophie", "Luca", "Yuki", "Hiroshi", "Min-jun", "Ji-woo", "Arjun", "Priya",
    "Lucas", "Emma", "Olivia", "Noah", "Elena", "Mateo", "Chloé", "Ahmed", "Fatima", "Oliver", "Mia", "Zoë",
]
_STREETS = ["Jianguo", "Zhongshan", "Renmin", "Jiefang", "Heping", "Changan", "Xinhua", "Wenhua", "Huaihai", "Binhe"]
_WORLD_STREETS = ["Park", "Station", "Harbour", "Market", "Garden", "Church", "Lake", "Hill", "Mill", "King"]
_CALLING_CODES = {"CN": "86", "JP": "81", "KR": "82", "SG": "65", "TH": "66", "MY": "60", "US": "1", "CA": "1",
                  "GB": "44", "DE": "49", "FR": "33", "AU": "61", "IT": "39", "ES": "34", "RU": "7", "AE": "971"}
_HUB_WEIGHTS = {"PEK01": 40, "PVG01": 20, "CAN01": 15, "CTU01": 10, "SZX01": 10}


@dataclass(frozen=True)
class _Office:
    id: int
    code: str
    branch_id: int
    branch_code: str
    country: str
    addresses: tuple[Address, ...]  # each one maps to this office

    @functools.cached_property
    def book_office(self) -> BookOffice:
        return BookOffice(self.id, self.code, self.branch_id, self.branch_code)


@dataclass(frozen=True)
class _Person:
    index: int
    card_number: str
    family_name: str
    given_name: str
    birth_date: date
    phone: str
    email: str
    office: _Office
    address: Address
    rng: random.Random  # the member's stream, continued by the ledger plan


def demo_card_number(index: int) -> str:
    """The card number of demo member `index` (0-based): unique per index, Luhn-valid."""
    return card_number(10_000_000 + (index * _CARD_STRIDE + _CARD_OFFSET) % _CARD_SPACE)


def demo_phone_digits(index: int) -> str:
    """The 9 digits that end demo member `index`'s phone: unique per index."""
    return f"{(index * _PHONE_STRIDE + _PHONE_OFFSET) % _PHONE_SPACE:09d}"


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if c.isascii() and c.isalnum()).lower()


def _person(index: int, offices: Sequence[_Office], weights: Sequence[float]) -> _Person:
    rng = random.Random(f"{SEED}:{index}")
    office = offices[index] if index < len(offices) else rng.choices(offices, cum_weights=weights)[0]
    chinese = rng.random() < (0.85 if office.country == "CN" else 0.35)
    if chinese:
        (family_cn, family_py), (given_cn, given_py) = rng.choice(_CN_FAMILY), rng.choice(_CN_GIVEN)
        # Some members write their name in pinyin.
        family, given = (family_py, given_py) if rng.random() < 0.15 else (family_cn, given_cn)
        slug = f"{given_py}.{family_py}".lower()
    else:
        family, given = rng.choice(_LATIN_FAMILY), rng.choice(_LATIN_GIVEN)
        slug = f"{_slug(given)}.{_slug(family)}"
    year = rng.randint(1950, 2004)
    birth = date(year, 1, 1) + timedelta(days=rng.randrange(366 if year % 4 == 0 else 365))
    digits = demo_phone_digits(index)
    if office.country == "CN":
        phone = f"+86 1{rng.choice('3589')}{digits[0]} {digits[1:5]} {digits[5:]}"
    else:
        phone = f"+{_CALLING_CODES.get(office.country, '44')} {digits[:3]} {digits[3:6]} {digits[6:]}"
    email = f"{slug}.{index}@{rng.choice(['example.com', 'example.org', 'example.net'])}"
    template = rng.choice(office.addresses)
    if office.country == "CN":
        line, postal = f"No. {rng.randint(1, 399)} {rng.choice(_STREETS)} Road", f"{rng.randint(100000, 999999)}"
    else:
        line, postal = f"{rng.randint(1, 250)} {rng.choice(_WORLD_STREETS)} Street", f"{rng.randint(10000, 99999)}"
    address = Address(country=template.country, city=template.city, province=template.province, line=line, postal_code=postal)
    return _Person(index, demo_card_number(index), family, given, birth, phone, email, office, address, rng)


async def _offices() -> list[_Office]:
    """Every office with the addresses (from the shipped address rules, else the office's
    own city) that the enrolment lookup really maps to it."""
    data = region_data()
    rules_by_office: dict[str, list[dict[str, Any]]] = {}
    for rule in data["address_rules"]:
        rules_by_office.setdefault(rule["office"], []).append(rule)
    rows = await Office.all().select_related("branch").order_by("code")
    offices = []
    for office in rows:
        candidates = [
            Address(country=rule["country"], city=rule.get("city") or office.city, province=rule.get("province"))
            for rule in rules_by_office.get(office.code, [])
        ]
        candidates.append(Address(country=office.country, city=office.city, province=office.province))
        found: list[Address] = []
        for address in candidates:
            if address not in found and (await office_for_address(address)).id == office.id:
                found.append(address)
        if not found:
            raise LookupError(f"no address maps to office {office.code}: check the address rules")
        offices.append(_Office(office.id, office.code, office.branch_id, office.branch.code, office.country, tuple(found)))
    return offices


def _cumulative(*weights: float) -> list[float]:
    """Cumulative weights, for random.choices(cum_weights=...) and _pick."""
    out, total = [], 0.0
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _office_weights(offices: Sequence[_Office]) -> list[float]:
    """The hubs get most members, then the mainland offices."""
    return _cumulative(*(_HUB_WEIGHTS.get(o.code, 3.0 if o.country == "CN" else 1.5) for o in offices))


# The rules' earning, cached: a flight's depends on its distance and fare class only.
_accrual = functools.lru_cache(maxsize=None)(engine.flight_accrual)


# ---- flights ---------------------------------------------------------------------------

# (origin, destination, distance km, flight number of the outbound leg; the return is +1)
_DOMESTIC = [
    ("PEK", "SHA", 1088, 1501), ("PEK", "PVG", 1178, 1831), ("PEK", "CAN", 1967, 1301), ("PEK", "CTU", 1697, 1405),
    ("PEK", "SZX", 2077, 1303), ("PEK", "XIY", 914, 1201), ("PEK", "KMG", 2266, 1401), ("PEK", "HGH", 1240, 1701),
    ("PEK", "CKG", 1464, 1431), ("PEK", "URC", 2410, 1901), ("PEK", "HAK", 2480, 1359), ("PEK", "DLC", 460, 1601),
    ("PEK", "TAO", 550, 1531), ("PEK", "HRB", 1050, 1623), ("CTU", "PVG", 1782, 4501), ("CAN", "CTU", 1290, 3403),
    ("SHA", "SZX", 1400, 1857), ("PVG", "XMN", 890, 1811), ("CTU", "LXA", 1250, 4401), ("PEK", "WUH", 1050, 1351),
]
_REGIONAL = [
    ("PEK", "HKG", 1980, 101), ("PEK", "ICN", 955, 123), ("PEK", "NRT", 2100, 925), ("PEK", "BKK", 3300, 959),
    ("PEK", "SIN", 4480, 975), ("PVG", "KIX", 1370, 923), ("CAN", "KUL", 2600, 971), ("PEK", "TPE", 1720, 185),
]
_LONG_HAUL = [
    ("PEK", "FRA", 7800, 931), ("PEK", "LHR", 8150, 937), ("PEK", "CDG", 8220, 933), ("PEK", "JFK", 11000, 981),
    ("PEK", "LAX", 10030, 983), ("PEK", "SFO", 9500, 985), ("PEK", "SYD", 8950, 173), ("PEK", "YVR", 8500, 991),
    ("PEK", "MUC", 7700, 961), ("PVG", "MXP", 9100, 967),
]
_GROUPS = (_DOMESTIC, _REGIONAL, _LONG_HAUL)


# How travellers fly: the weights of domestic, regional and long-haul routes, and of
# fare classes.
_STYLE_WEIGHTS = {
    "leisure": ((94, 6, 0), dict(Y=8, B=8, M=10, H=14, Q=12, V=12, W=10, S=8, T=8, L=5, K=5)),
    "business": ((50, 32, 18), dict(Y=35, B=15, M=10, H=12, C=12, D=5, J=4, Z=7)),
    "frequent": ((35, 30, 35), dict(Y=30, B=12, M=8, H=8, C=20, D=8, J=6, Z=8)),
    "premium": ((25, 20, 55), dict(Y=20, B=10, C=30, D=10, J=18, Z=12)),
}


@dataclass(frozen=True)
class _Style:
    groups: list[float]  # cumulative weights of _GROUPS
    fares: tuple[str, ...]
    fare_weights: list[float]  # cumulative, one per fare class


@functools.lru_cache(maxsize=4)
def _styles(rules: Rules) -> dict[str, _Style]:
    """The styles with the fare classes that earn miles under these rules (a rules file
    may chart other classes: then every earning class is equally likely)."""
    earning = [fare for fare, percent in rules.fare_classes.items() if percent > 0]
    if not earning:
        raise ValueError("the rules chart no fare class that earns miles: nobody can fly in the demo")
    styles = {}
    for name, (groups, fares) in _STYLE_WEIGHTS.items():
        known = [(fare, weight) for fare, weight in fares.items() if fare in earning] or [(fare, 1) for fare in earning]
        styles[name] = _Style(_cumulative(*groups), tuple(f for f, _ in known), _cumulative(*(w for _, w in known)))
    return styles

# The style a tier's members fly in; a downgraded member flew in the style of the tier above.
_TIER_STYLE = {"SILVER": "business", "GOLD": "frequent", "PLATINUM": "premium"}


def _pick(rng: random.Random, items: Sequence[Any], cumulative: Sequence[float]) -> Any:
    return items[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]


@dataclass(frozen=True)
class _Period:
    """Flying about `miles` qualifying miles a year from `start` to `end`, in a style."""

    start: date
    end: date
    miles: int
    style: str


@dataclass(frozen=True)
class _Plan:
    enrolled: date
    periods: tuple[_Period, ...] = ()
    partner_credits: int = 0
    redemptions: int = 0


def _history_months(rules: Rules) -> int:
    """How far back ledgers start: far enough for credits that have expired (and some
    that expire within the next months), and for an elite tier won, held to its
    validUntil and lost at the review (38 months with the default rules)."""
    validity = max(tier.validity_months for tier in rules.tiers)
    return max(rules.credit_validity_months + 2, validity + rules.window_months + 2)


def _month(today: date, months: int) -> date:
    """The first day of the month `months` away from today's."""
    return cal.add_months(cal.month_start(today), months)


def _day_between(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange(max(1, (end - start).days + 1)))


def _plan(rng: random.Random, rules: Rules, today: date) -> _Plan:
    """A member's scenario; tier shares come out at roughly 70 / 18 / 9 / 3 %."""
    long_ago, recent = today - timedelta(days=12 * 365), today - timedelta(days=30)
    history = _month(today, -_history_months(rules))
    roll, kind = rng.random(), rng.random()
    if roll < 0.70:
        if kind < 0.35:  # dormant
            return _Plan(_day_between(rng, long_ago, recent), partner_credits=rng.randint(0, 2))
        if kind < 0.91:  # occasional leisure flyer
            enrolled = _day_between(rng, long_ago, recent)
            period = _Period(max(enrolled, history), today, int(rng.triangular(500, 12_000, 1_500)), "leisure")
            return _Plan(enrolled, (period,), rng.randint(0, 4), rng.randint(0, 1))
        return _lapsed(rng, rules, today, "SILVER", None)
    tier = "SILVER" if roll < 0.88 else "GOLD" if roll < 0.97 else "PLATINUM"
    if kind < 0.10 and tier != "PLATINUM":
        return _lapsed(rng, rules, today, TIERS[TIERS.index(tier) + 1], tier)
    upgrade_miles = rules.tier(tier).upgrade_miles
    if kind < 0.32:
        # At risk: upgraded 18-20 months ago (default rules), so validUntil is within the
        # next months, and has flown too little since to keep the tier.
        upgrade_month = _month(today, -(rules.tier(tier).validity_months - rng.randint(4, 6)))
        enrolled = _day_between(rng, long_ago, cal.add_months(upgrade_month, -rules.window_months))
        ramp = cal.add_months(upgrade_month, -11)
        since = cal.month_end(upgrade_month) + timedelta(days=1)
        periods = (
            _Period(max(enrolled, history), ramp - timedelta(days=1), rng.randint(0, 8_000), "leisure"),
            _Period(ramp, since - timedelta(days=1), int(upgrade_miles * rng.uniform(1.03, 1.1)), _TIER_STYLE[tier]),
            _Period(since, today, int(rules.tier(tier).retain_miles * rng.uniform(0.1, 0.45)), _TIER_STYLE[tier]),
        )
        return _Plan(enrolled, periods, rng.randint(1, 6), rng.randint(0, 2))
    # Steady: has flown at the tier's pace for 16 to 38 months (default rules).
    latest = _month(today, -(rules.window_months + 4))
    enrolled = _day_between(rng, long_ago, latest)
    start = max(enrolled, _day_between(rng, history, latest))
    period = _Period(start, today, int(upgrade_miles * rng.uniform(1.12, 1.6)), _TIER_STYLE[tier])
    return _Plan(enrolled, (period,), rng.randint(1, 6), rng.randint(0, 3))


def _lapsed(rng: random.Random, rules: Rules, today: date, top: str, then: str | None) -> _Plan:
    """Flew at `top`'s pace until 26-28 months ago (default rules; upgraded then), since
    then at the pace of `then` (None: hardly at all), so the review of that validUntil
    downgraded them."""
    history = _month(today, -_history_months(rules))
    enrolled = _day_between(rng, today - timedelta(days=12 * 365), history)
    turn = _month(today, -(rules.tier(top).validity_months + rng.randint(2, 4)))
    before = _Period(history, turn - timedelta(days=1), int(rules.tier(top).upgrade_miles * rng.uniform(1.15, 1.35)), _TIER_STYLE[top])
    if then is None:
        after = _Period(turn, today, rng.randint(3_000, 15_000), "leisure")
    else:
        after = _Period(turn, today, int(rules.tier(then).upgrade_miles * rng.uniform(1.15, 1.5)), _TIER_STYLE[then])
    return _Plan(enrolled, (before, after), rng.randint(1, 6), rng.randint(0, 3))


def _flights(rng: random.Random, rules: Rules, periods: Sequence[_Period]) -> list[tuple[date, FlightDetails, engine.FlightEarning]]:
    """Flights of random routes, fares and days until each period's miles are flown."""
    flights = []
    for period in periods:
        days = (period.end - period.start).days + 1
        if days <= 0 or period.miles <= 0:
            continue
        style = _styles(rules)[period.style]
        target = period.miles * days / 365 * rng.uniform(0.95, 1.05)
        # Hardly a flight worth more than a fifth of a year's pace: windows stay near it.
        cap = max(period.miles // 5, 3_000)
        legs, earned = [], 0
        while earned < target:
            for _ in range(20):
                origin, destination, km, number = rng.choice(_pick(rng, _GROUPS, style.groups))
                fare = _pick(rng, style.fares, style.fare_weights)
                earning = _accrual(rules, km, fare)
                if earning.qualifying_miles <= cap:
                    break
            if rng.random() < 0.5:
                origin, destination, number = destination, origin, number + 1
            legs.append((origin, destination, km, number, fare, earning))
            earned += earning.qualifying_miles
        # Spread evenly over the period (one flight in each equal slice, on a random day
        # of it), so every 12-month window holds about the period's pace.
        for k, (origin, destination, km, number, fare, earning) in enumerate(legs):
            day = period.start + timedelta(days=int((k + rng.random()) * days / len(legs)))
            flights.append((day, FlightDetails("CA", str(number), day, origin, destination, km, fare), earning))
    return flights


# ---- the ledger, replayed with the programme's rules ----------------------------------

_REDEMPTIONS = (("Award ticket PEK-SHA", 12_000), ("Award ticket PEK-CAN", 15_000), ("Cabin upgrade", 8_000),
                ("Award ticket PEK-NRT", 25_000), ("Lounge pass", 3_000), ("Award ticket PEK-LHR", 45_000))


def _activities(person: _Person, plan: _Plan, rules: Rules, today: date, start: date) -> list[tuple]:
    """The member's activities in date order (flights, then partner credits, then
    redemptions within a day): ("flight", flight, earning, externalRef), ("partner",
    code, day, miles, description, externalRef), ("redeem", day, miles, description)."""
    rng = person.rng
    # (day, order within the day, what)
    activities: list[tuple[date, int, Any]] = [(f[0], 0, f) for f in _flights(rng, rules, plan.periods)]
    for n in range(plan.partner_credits):
        code = rng.choice(PARTNERS)[0]
        activities.append((_day_between(rng, start, today), 1, (code, rng.randint(4, 60) * 50, f"{code}-{person.card_number}-{n + 1}")))
    for _ in range(plan.redemptions):
        activities.append((_day_between(rng, start + timedelta(days=60), today), 2, rng.choice(_REDEMPTIONS)))
    activities.sort(key=lambda a: (a[0], a[1]))
    out: list[tuple] = []
    refs: set[str] = set()
    for day, order, what in activities:
        if order == 0:
            _, flight, earning = what
            ref = f"{flight.carrier}{flight.flight_number}-{day:%Y%m%d}-{person.card_number}"
            while ref in refs:  # the same flight twice on a day: a second booking
                ref += "+"
            refs.add(ref)
            out.append(("flight", flight, earning, ref))
        elif order == 1:
            code, miles, ref = what
            out.append(("partner", code, day, miles, f"{PARTNER_WHAT[code]} (demo)", ref))
        else:
            out.append(("redeem", day, what[1], what[0]))
    return out


def _history(person: _Person, rules: Rules, today: date) -> tuple[_Plan, date, list[tuple]]:
    """The member's plan, the first day of its ledger and its activities (_activities):
    what happened to the member, before any rule applies to it."""
    plan = _plan(person.rng, rules, today)
    start = max(plan.enrolled, _month(today, -_history_months(rules)))
    return plan, start, _activities(person, plan, rules, today, start)


def _simulate(person: _Person, rules: Rules, today: date, posted_at: Callable[[date], datetime]) -> tuple[_Plan, MemberBook]:
    """The member's plan and book: its activities applied as the services and the daily
    jobs (run on every day up to today) apply them (loyalty.book)."""
    plan, start, activities = _history(person, rules, today)
    book = MemberBook(rules, person.card_number, person.family_name, since=plan.enrolled, start=start)
    for activity in activities:
        if activity[0] == "flight":
            _, flight, earning, ref = activity
            book.run_jobs(flight.date)
            book.flight(flight, earning, ref, actor=FLIGHT_ACTOR, posted_at=posted_at)
        elif activity[0] == "partner":
            _, code, day, miles, text, ref = activity
            book.run_jobs(day)
            book.partner(code, day, miles, text, ref)
        else:
            _, day, miles, text = activity
            book.run_jobs(day)
            book.redeem(MEMBER_SOURCE, day, miles, text)
    book.run_jobs(today)
    return plan, book


# ---- writing ---------------------------------------------------------------------------

_MEMBER_COLUMNS = (
    "id", "card_number", "family_name", "given_name", "status", "birth_date", "phone_cipher", "email_cipher",
    "phone_hash", "email_hash", "address_country", "address_province", "address_city", "address_line", "address_postal_code",
    "office_id", "branch_id", "enrolled_at", "tier", "tier_since", "tier_valid_until", "redeemable_miles",
)
_ASSIGNMENT_COLUMNS = ("member_id", "office_id", "assigned_at", "reason", "actor")


@functools.cache
def _inserts() -> tuple[BulkInsert, BulkInsert]:
    """Built on first use: the models' field maps exist once Tortoise is initialised."""
    return BulkInsert(Member, _MEMBER_COLUMNS), BulkInsert(RegionAssignment, _ASSIGNMENT_COLUMNS)


@dataclass
class _Batch:
    """Rows of a chunk of members, ready to write."""

    members: list[tuple] = field(default_factory=list)
    assignments: list[tuple] = field(default_factory=list)
    entries: list[tuple] = field(default_factory=list)
    lots: list[tuple] = field(default_factory=list)


def _rows(batch: _Batch, events: list[tuple], person: _Person, plan: _Plan, book: MemberBook, member_id: int,
          first_entry_id: int, contacts_taken: set[str], posted_at: Callable[[date], datetime]) -> int:
    """Add the member's rows to the batch (its tier events to `events`); the next free entry id."""
    office = person.office
    # A phone or email some other member holds already is left out (DUPLICATE otherwise).
    # Both sealed and hashed (members.contacts) like an enrolment's.
    keys = contacts.current()
    phone, phone_k = keys.seal(person.phone, "phone"), phone_hash(person.phone)
    if phone_k in contacts_taken:
        phone = phone_k = None
    mail, mail_k = keys.seal(person.email, "email"), email_hash(person.email)
    if mail_k in contacts_taken:
        mail = mail_k = None
    enrolled_at = posted_at(plan.enrolled) - timedelta(hours=2)
    address = person.address
    batch.members.append((
        member_id, person.card_number, person.family_name, person.given_name, MemberStatus.ACTIVE,
        person.birth_date, phone, mail, phone_k, mail_k, address.country, address.province, address.city,
        address.line, address.postal_code, office.id, office.branch_id, enrolled_at, Tier[book.tier],
        book.since, book.valid_until, book.balance,
    ))
    batch.assignments.append((member_id, office.id, enrolled_at, "enrolment", DEMO_ACTOR))
    return book_rows(member_id, person.card_number, office.book_office, book, first_entry_id, posted_at,
                     batch.entries, batch.lots, events)


async def _write(connection: BaseDBAsyncClient, batch: _Batch) -> int:
    """Write a chunk's rows; the number of members written."""
    members, assignments = _inserts()
    await members.run(connection, batch.members)
    await assignments.run(connection, batch.assignments)
    await write_book_rows(connection, batch.entries, batch.lots)
    return len(batch.members)


async def _next_id(model: type, connection: BaseDBAsyncClient) -> int:
    row = await model.all().using_db(connection).annotate(top=Max("id")).first().values("top")
    return int((row or {}).get("top") or 0) + 1


async def _advance_sequences(connection: BaseDBAsyncClient) -> None:
    """PostgreSQL: move the id sequences past the ids given here, so later inserts
    (enrolments, postings) do not collide with them. SQLite needs nothing."""
    if connection.capabilities.dialect != "postgres":
        return
    for model in (Member, LedgerEntry):
        table = model._meta.db_table
        await connection.execute_query(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT MAX(id) FROM \"{table}\"))"
        )


async def _existing(column: str, values: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), CHUNK):
        found.update(await Member.filter(**{f"{column}__in": values[start:start + CHUNK]}).values_list(column, flat=True))
    return found


# ---- the demo ------------------------------------------------------------------------------

# SQLite's page cache (KiB) the build wants: the ledger's indexes it writes outgrow less.
DEMO_CACHE_KIB = 128 * 1024


@contextlib.asynccontextmanager
async def _page_cache_at_least(connection: BaseDBAsyncClient, kib: int) -> AsyncIterator[None]:
    """SQLite: a page cache of at least ``kib`` KiB during the block, and the
    connection's own setting (api.db's default, or DATABASE_URL's, which wins) back
    after it: PRAGMA cache_size holds for the connection, which outlives the build (a
    server's, the tests' session), and a larger setting is never lowered."""
    if connection.capabilities.dialect != "sqlite":
        yield
        return
    _, rows = await connection.execute_query("PRAGMA cache_size")
    before = int(list(rows[0])[0])
    if before > 0:  # in pages, not KiB
        _, rows = await connection.execute_query("PRAGMA page_size")
        current_kib = before * int(list(rows[0])[0]) // 1024
    else:
        current_kib = -before
    if current_kib >= kib:
        yield
        return
    await connection.execute_query(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        await connection.execute_query(f"PRAGMA cache_size = {before}")


async def build_demo(
    settings: Settings, members: int, *, rules: Rules, today: date, progress: Callable[[int, int], None],
    care_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Create the demo members 0..members-1 that are missing (see the module docstring),
    register the demo partners, and return {"summary": text, "tokens": {role: token}}.
    Needs an initialised, migrated ORM with the region data loaded."""
    if members < 0:
        from api.cli import OperatorError

        raise OperatorError("--members must be 0 or more")
    for code, name in PARTNERS:
        try:
            await partners.add_partner(code, name)
        except DomainError:
            pass  # registered under another name by an operator: keep theirs
    offices = await _offices()
    weights = _office_weights(offices)
    cards = [demo_card_number(i) for i in range(members)]
    present = await _existing("card_number", cards)
    missing = [i for i, card in enumerate(cards) if card not in present]
    done = members - len(missing)
    progress(done, members)
    if missing:
        people = [_person(i, offices, weights) for i in missing]
        taken = await _existing("phone_hash", [phone_hash(p.phone) for p in people])
        taken |= await _existing("email_hash", [email_hash(p.email) for p in people])
        tz, noon = settings.tz, time(12)
        stamps: dict[date, datetime] = {}

        def posted_at(day: date) -> datetime:
            if (stamp := stamps.get(day)) is None:
                stamp = stamps[day] = datetime.combine(day, noon, tzinfo=tz).astimezone(timezone.utc)
            return stamp

        events: list[tuple] = []

        def simulate(chunk: list[_Person], member_id: int, entry_id: int) -> tuple[_Batch, int, int]:
            batch = _Batch()
            for person in chunk:
                plan, book = _simulate(person, rules, today, posted_at)
                entry_id = _rows(batch, events, person, plan, book, member_id, entry_id, taken, posted_at)
                member_id += 1
            return batch, member_id, entry_id

        async with in_transaction() as connection, _page_cache_at_least(connection, DEMO_CACHE_KIB):
            member_id, entry_id = await _next_id(Member, connection), await _next_id(LedgerEntry, connection)
            first_member_id = member_id
            for start in range(0, len(people), CHUNK):
                batch, member_id, entry_id = simulate(people[start:start + CHUNK], member_id, entry_id)
                done += await _write(connection, batch)
                progress(done, members)
            # The event log in time order: positions increase with effective_at.
            events.sort(key=lambda row: (row[5], row[0]))
            for start in range(0, len(events), 5 * CHUNK):
                await write_book_rows(connection, events=events[start:start + 5 * CHUNK])
            await _advance_sequences(connection)
            # Members were written beside the services: count them into the office x tier rollup.
            await rebuild_tier_counts(connection)
    care = await build_demo_care(rules, today, settings.tz, care_progress or (lambda done, total: None))
    # What the services keep on the member row from tiers, ledgers and calls (retention
    # totals, the care worklist's state): STANDARD members keep the defaults.
    if missing:
        elite = await Member.filter(id__gte=first_member_id, tier__gt=Tier.STANDARD).order_by("id").values_list("id", flat=True)
        await refresh_members(elite, rules, today)
    summary = await _summary(rules, today, created=len(missing))
    return {"summary": summary + "\n" + care, "tokens": await _tokens(settings, cards)}


async def _summary(rules: Rules, today: date, *, created: int) -> str:
    counts = (await tier_counts(Member.all())).get(None, {tier: 0 for tier in Tier})
    total = sum(counts.values())
    offices = len(await Member.all().distinct().values_list("office_id", flat=True))
    at_risk_count = await Member.filter(at_risk(rules, today)).count()
    until = today + timedelta(days=rules.expiring_soon_days)
    expiring = len(await CreditLot.filter(remaining__gt=0, expires_on__gte=today, expires_on__lte=until)
                   .distinct().values_list("member_id", flat=True))
    tiers = ", ".join(f"{tier.name} {counts.get(tier, 0):,}" for tier in Tier)
    return "\n".join([
        f"demo data: {total:,} members ({created:,} created now) in {offices} of {await Office.all().count()} offices: {tiers}",
        f"  {at_risk_count:,} at risk of downgrade (validUntil within {rules.at_risk_months} months), "
        f"{expiring:,} with miles expiring within {rules.expiring_soon_days} days (today {today})",
        "  GraphiQL: http://127.0.0.1:8000/graphql (or your --host/--port); "
        'set the header {"Authorization": "Bearer <token>"} with a token below',
        "  VIP board: http://127.0.0.1:8000/board (sign in with the office or branch token)",
    ])


async def _tokens(settings: Settings, cards: list[str]) -> dict[str, str]:
    """One token per role, valid 24 h: a GOLD demo member (else the highest tier), the
    HOTEL1 partner, the office with most VIPs (PEK01 on a tie) and its branch."""
    member = None
    for start in range(0, len(cards), CHUNK):
        candidates = Member.filter(card_number__in=cards[start:start + CHUNK])
        member = await candidates.filter(tier=Tier.GOLD).order_by("id").first()
        member = member or await candidates.order_by("-tier", "id").first()
        if member is not None and member.tier is Tier.GOLD:
            break
    vips = {
        office_id: sum(n for tier, n in counts.items() if tier.is_vip)
        for office_id, counts in (await tier_counts(Member.all(), "office_id")).items()
    }
    offices = await Office.all().select_related("branch")
    office = max(offices, key=lambda o: (vips.get(o.id, 0), o.code == "PEK01", [-ord(c) for c in o.code]))
    ttl = TOKEN_TTL_SECONDS
    tokens = {}
    if member is not None:
        tokens["member"] = mint_token(settings, Role.MEMBER, str(member.id), None, ttl)
    tokens["partner"] = mint_token(settings, Role.PARTNER, "hotel1-desk", PARTNERS[0][0], ttl)
    tokens["office"] = mint_token(settings, Role.OFFICE, f"desk-{office.code.lower()}", office.code, ttl)
    tokens["branch"] = mint_token(settings, Role.BRANCH, f"manager-{office.branch.code.lower()}", office.branch.code, ttl)
    tokens["airline"] = mint_token(settings, Role.AIRLINE, "airline-demo", None, ttl)
    tokens["admin"] = mint_token(settings, Role.ADMIN, "admin-demo", None, ttl)
    return tokens
