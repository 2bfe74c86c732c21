"""`loyalty import members FILE`: enrolment through the members service (validation,
office by address, DUPLICATE), idempotent by card number, rejected rows with reasons."""

from __future__ import annotations

from members.cards import card_number
from members.models import Member, RegionAssignment
from members.services import member_phone, phone_hash
from tests.cli.conftest import one_line_error, read_csv, run, write_csv

HEADER = ["card_number", "family_name", "given_name", "birth_date", "phone", "email",
          "country", "province", "city", "line", "postal_code"]
GIVEN_CARD = card_number(12_345_678)  # passes the check digit
BAD_CHECK = GIVEN_CARD[:-1] + str((int(GIVEN_CARD[-1]) + 1) % 10)

ROWS = [
    [GIVEN_CARD, "王", "芳", "1980-05-01", "138 0000 0001", "wf@example.com", "CN", "Beijing", "Beijing", "1 Chang'an Ave", "100000"],
    ["", "Li", "Lei", "", "+8613800000002", "", "CN", "", "Shanghai", "", ""],
    ["", "Smith", "Anna", "1975-02-28", "", "anna@example.com", "US", "", "Nowhere Town", "", ""],
    [BAD_CHECK, "Zhang", "San", "", "", "", "CN", "", "Beijing", "", ""],
    ["", "Dup", "Phone", "", "13800000001", "", "CN", "", "Beijing", "", ""],  # 王芳's phone
]


async def test_five_rows_with_two_bad_take_three_and_a_rerun_takes_none(db, tmp_path):
    source = write_csv(tmp_path / "members.csv", HEADER, ROWS)
    done = run(db, tmp_path, "import", "members", str(source))
    assert done.returncode == 0, done.stderr
    rejects = tmp_path / "members.rejected.csv"
    assert done.stdout == f"import members: 3 taken, 0 already present, 2 rejected (see {rejects})\n"
    assert done.stderr.splitlines()[-1] == "import members: [####################] 5/5 (100%)"

    rejected = read_csv(rejects)
    assert [r["family_name"] for r in rejected] == ["Zhang", "Dup"]
    assert list(rejected[0]) == HEADER + ["reason"]
    assert rejected[0]["card_number"] == BAD_CHECK
    assert rejected[0]["reason"] == "INVALID: cardNumber must be CA followed by 9 digits with a valid check digit"
    assert rejected[1]["reason"] == "DUPLICATE: a member with this phone is already enrolled"

    members = {m.family_name: m for m in await Member.all().prefetch_related("office")}
    assert sorted(members) == ["Li", "Smith", "王"]
    wang = members["王"]
    assert (wang.card_number, wang.given_name, str(wang.birth_date), member_phone(wang), wang.office.code) == (
        GIVEN_CARD, "芳", "1980-05-01", "138 0000 0001", "PEK01")
    assert wang.phone_hash == phone_hash("13800000001")  # the DUPLICATE key: sealed and hashed
    assert members["Li"].office.code == "PVG01"
    assert members["Li"].card_number not in (GIVEN_CARD, "") and len(members["Li"].card_number) == 11
    assert [a.actor for a in await RegionAssignment.filter(member_id=wang.id)] == ["system:import"]

    again = run(db, tmp_path, "import", "members", str(source))
    assert again.stdout == f"import members: 0 taken, 3 already present, 2 rejected (see {rejects})\n"
    assert await Member.all().count() == 3


async def test_a_given_card_number_held_by_someone_else_is_rejected(db, tmp_path):
    first = write_csv(tmp_path / "a.csv", HEADER, [ROWS[0]])
    assert run(db, tmp_path, "import", "members", str(first)).returncode == 0
    other = [GIVEN_CARD, "Zhao", "Yun", "", "", "", "CN", "", "Beijing", "", ""]
    second = write_csv(tmp_path / "b.csv", HEADER, [other])
    rejects = tmp_path / "out" / "why.csv"
    rejects.parent.mkdir()
    done = run(db, tmp_path, "import", "members", str(second), "--rejects", str(rejects))
    assert done.stdout == f"import members: 0 taken, 0 already present, 1 rejected (see {rejects})\n"
    assert read_csv(rejects)[0]["reason"] == "DUPLICATE: this card number belongs to another member"
    assert (await Member.get(card_number=GIVEN_CARD)).family_name == "王"


async def test_extra_columns_are_ignored_and_kept_in_the_rejects(db, tmp_path):
    source = write_csv(tmp_path / "m.csv", ["family_name", "given_name", "country", "city", "note"], [
        ["Wu", "Di", "CN", "Beijing", "vip"], ["", "NoFamily", "CN", "Beijing", "x"], ["Ok", "Bad", "ZZ", "Beijing", "y"],
    ])
    done = run(db, tmp_path, "import", "members", str(source))
    assert done.stdout.startswith("import members: 1 taken, 0 already present, 2 rejected")
    rejected = read_csv(tmp_path / "m.rejected.csv")
    assert [(r["note"], r["reason"]) for r in rejected] == [
        ("x", "INVALID: familyName is required"),
        ("y", "INVALID: country must be an ISO 3166-1 alpha-2 code, e.g. CN"),
    ]


async def test_operator_errors_are_one_line(db, tmp_path):
    def refused(path) -> str:
        return one_line_error(run(db, tmp_path, "import", "members", str(path)), 1)

    assert refused(tmp_path / "missing.csv") == f"loyalty: no such file: {tmp_path / 'missing.csv'}"
    no_city = write_csv(tmp_path / "h.csv", ["family_name", "given_name", "country"], [["A", "B", "CN"]])
    assert refused(no_city) == f"loyalty: {no_city} lacks the required column(s) city (header: family_name,given_name,country)"
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert refused(binary).startswith(f"loyalty: {binary} is not UTF-8 text")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert refused(empty) == f"loyalty: {empty} is empty: a header row is needed"
    assert await Member.all().count() == 0


async def test_a_crash_mid_file_leaves_whole_rows_and_a_rerun_continues(db, tmp_path, monkeypatch):
    from datetime import date

    import pytest

    from api import bulk
    from members.bulk_insert import BulkInsert

    source = write_csv(tmp_path / "members.csv", HEADER, ROWS[:3])
    real = BulkInsert.run
    calls = 0

    async def crashing(self, connection, rows, **options):  # the 2nd batch fails after its member rows were inserted
        nonlocal calls
        if self.model is RegionAssignment:
            calls += 1
            if calls == 2:
                raise RuntimeError("the database went away")
        return await real(self, connection, rows, **options)

    monkeypatch.setattr(BulkInsert, "run", crashing)
    with pytest.raises(RuntimeError):  # batches of one row: 王's batch committed, Li's not
        await bulk.import_members(source, tmp_path / "r.csv", today=date(2026, 11, 20), progress=lambda *_: None,
                                  batch_size=1)
    assert [m.family_name for m in await Member.all().order_by("id")] == ["王"]  # Li's member row rolled back
    assert await RegionAssignment.all().count() == 1

    monkeypatch.setattr(BulkInsert, "run", real)
    summary = await bulk.import_members(source, tmp_path / "r.csv", today=date(2026, 11, 20), progress=lambda *_: None)
    assert (summary.taken, summary.present, summary.rejected) == (2, 1, 0)
    assert await Member.all().count() == 3
