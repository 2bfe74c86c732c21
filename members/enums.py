"""Enumerations the member row is built from."""

from enum import Enum, IntEnum


class Tier(IntEnum):
    """Membership tiers, stored as their rank so that ordering by tier is a plain ORDER BY."""

    STANDARD = 0
    SILVER = 1
    GOLD = 2
    PLATINUM = 3

    @property
    def is_vip(self) -> bool:
        return self >= Tier.SILVER


class MemberStatus(str, Enum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"


class LifecycleStage(str, Enum):
    """Stage of the member's relationship with the programme (考察, 形成, 稳定, 退化, and dormant)."""

    NEW = "NEW"
    GROWING = "GROWING"
    STABLE = "STABLE"
    DECLINING = "DECLINING"
    DORMANT = "DORMANT"


class ValueSegment(str, Enum):
    """Rank of the member's trailing qualifying miles within their office."""

    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
