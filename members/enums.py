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
