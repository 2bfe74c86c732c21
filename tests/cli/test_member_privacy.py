"""`loyalty member export CARD_OR_ID` (JSON on stdout) and `loyalty member erase CARD_OR_ID
--reason R`, as an admin ("admin:cli"); operator mistakes are one line."""

from __future__ import annotations

import json
from datetime import date

from members.access import Caller, Role
from members.addresses import Address
from members.models import Member, MemberErasure
from members.services import Enrolment, enroll
from tests.cli.conftest import one_line_error, run


async def enrolled() -> Member:
    enrolment = Enrolment("Zhou", "Min", Address("CN", "Beijing", line="8 Road"), email="zm@example.com")
    return await enroll(Caller(Role.ADMIN, "t"), enrolment, today=date(2026, 11, 20))


async def test_export_by_card_or_id_and_erase_with_a_reason(db, tmp_path):
    member = await enrolled()
    by_card = run(db, tmp_path, "member", "export", member.card_number.lower())
    assert by_card.returncode == 0, by_card.stderr
    document = json.loads(by_card.stdout)
    assert (document["member"]["familyName"], document["member"]["email"], document["ledger"]) == ("Zhou", "zm@example.com", [])
    assert by_card.stderr.splitlines()[-1] == f"member export: {member.card_number}, 0 ledger entries"
    by_id = json.loads(run(db, tmp_path, "member", "export", str(member.id)).stdout)
    assert by_id["member"] == document["member"]

    erased = run(db, tmp_path, "member", "erase", member.card_number, "--reason", "ticket PRV-7")
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.startswith(f"erased: {member.card_number} (at ") and erased.stdout.rstrip().endswith("by admin:cli)")
    again = run(db, tmp_path, "member", "erase", str(member.id), "--reason", "ticket PRV-8")
    assert again.stdout.startswith(f"already erased: {member.card_number}")
    audit = await MemberErasure.get(member_id=member.id)
    assert (audit.actor, audit.reason) == ("admin:cli", "ticket PRV-7")
    after = json.loads(run(db, tmp_path, "member", "export", member.card_number).stdout)
    assert "Zhou" not in json.dumps(after) and "zm@example.com" not in json.dumps(after)


async def test_operator_mistakes_are_one_line(db, tmp_path):
    member = await enrolled()
    assert one_line_error(run(db, tmp_path, "member", "export", "CA1234"), 1).startswith("loyalty: cardNumber is not a valid")
    assert one_line_error(run(db, tmp_path, "member", "export", "99999999"), 1) == "loyalty: no member 99999999"
    assert one_line_error(run(db, tmp_path, "member", "erase", member.card_number, "--reason", " "), 1) == (
        "loyalty: a reason is required")
    assert "--reason" in one_line_error(run(db, tmp_path, "member", "erase", member.card_number), 2)
    assert (await Member.get(id=member.id)).erased_at is None
