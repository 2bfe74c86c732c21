"""bench.dataset: the copies of a demo pool get card numbers, phones and emails of their
own (valid, unique across copies and against the pool), without a database."""

from __future__ import annotations

from api.demo import demo_card_number, demo_phone_digits
from bench.dataset import member_map_rows
from members.cards import is_valid_card_number
from members import contacts
from members.services import email_hash, phone_hash

POOL = 100
COPIES = 3


def _pool() -> list[dict]:
    """Pool members 1..100 with phones and emails in the demo's formats (CN and abroad)."""
    rows = []
    for member_id in range(1, POOL + 1):
        digits = demo_phone_digits(member_id - 1)
        phone = f"+86 13{digits[0]} {digits[1:5]} {digits[5:]}" if member_id % 2 else f"+44 {digits[:3]} {digits[3:6]} {digits[6:]}"
        rows.append({
            "id": member_id, "phone": phone if member_id % 10 else None, "email": f"wei.wang.{member_id - 1}@example.com",
            "family_name": f"F{member_id}", "given_name": f"G{member_id}",
        })
    return rows


def test_copies_have_valid_unique_cards_phones_and_emails():
    pool = _pool()
    rows = [row for copy in range(1, COPIES + 1) for row in member_map_rows(pool, copy)]
    assert len(rows) == 300
    assert [row[0] for row in rows] == list(range(101, 401))  # ids continue the pool's
    cards = [row[1] for row in rows] + [demo_card_number(i) for i in range(POOL)]
    assert all(is_valid_card_number(card) for card in cards)
    assert len(set(cards)) == 400
    # The demo's own numbering continued: copy 1's first member is demo member 100.
    assert rows[0][1] == demo_card_number(100)
    keys = contacts.current()
    phone_hashes = [row[3] for row in rows if row[3]] + [phone_hash(p["phone"]) for p in pool if p["phone"]]
    assert len(phone_hashes) == 360 and len(set(phone_hashes)) == 360
    # Sealed as an enrolment seals them, hashed from the opened phone.
    assert all(row[3] == phone_hash(keys.open(row[2], "phone")) for row in rows if row[2])
    emails = [row[5] for row in rows] + [email_hash(p["email"]) for p in pool]
    assert len(set(emails)) == 400
    assert keys.open(rows[0][4], "email") == "wei.wang.100@example.com"
    # A member without a phone stays without one; names come from another pool member.
    assert rows[9][2] is None and rows[9][3] is None
    assert {row[6] for row in rows} <= {p["family_name"] for p in pool}
    assert sum(row[6] == pool[(row[0] - 1) % POOL]["family_name"] for row in rows) < 10
