"""Card numbers: "CA" + 8 digits + a Luhn check digit over those eight."""

from __future__ import annotations

import re
import secrets

CARD_PATTERN = re.compile(r"^CA[0-9]{9}$")
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_digit(digits: str) -> int:
    """The Luhn check digit for a string of decimal digits."""
    # Double every second digit counting from the right of the payload, where the
    # check digit will follow (a doubled digit above 9 counts its digits' sum).
    total = sum(map(_DOUBLED.__getitem__, map(int, digits[::-2]))) + sum(map(int, digits[-2::-2]))
    return (10 - total % 10) % 10


def card_number(serial: int) -> str:
    """The card number for an 8-digit serial."""
    if not 0 <= serial < 10**8:
        raise ValueError("card serial must have at most 8 digits")
    body = f"{serial:08d}"
    return f"CA{body}{luhn_digit(body)}"


def random_card_number(randbelow=secrets.randbelow) -> str:
    """An unguessable card number; uniqueness is left to the database's unique index.
    Serials start at 10,000,000 so every card has a non-zero leading digit."""
    return card_number(10_000_000 + randbelow(90_000_000))


def is_valid_card_number(value: str) -> bool:
    """Format and check digit; a failing check digit is INVALID, not NOT_FOUND."""
    return bool(CARD_PATTERN.match(value)) and luhn_digit(value[2:10]) == int(value[10])
