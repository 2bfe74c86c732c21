"""Card numbers: "CA" + 8 digits + a Luhn check digit over those eight."""

from __future__ import annotations

import re
import secrets

CARD_PATTERN = re.compile(r"^CA[0-9]{9}$")
# A digit doubled, as the digit that counts (a doubled digit above 9 counts its digits' sum).
_DOUBLED = str.maketrans("0123456789", "0246813579")


def luhn_digit(digits: str) -> int:
    """The Luhn check digit for a string of decimal digits."""
    # Double every second digit counting from the right of the payload, where the
    # check digit will follow (str.translate: a bulk import checks every row's card).
    return -sum(map(int, digits[::-2].translate(_DOUBLED) + digits[-2::-2])) % 10


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
