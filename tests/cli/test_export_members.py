"""`loyalty export members [--office CODE]`: CSV on stdout in keyset pages, progress on
stderr; an export imported into an empty database reproduces the members."""

from __future__ import annotations

import io

from api import bulk
from members.cards import card_number
from tests.api.loyalty_factories import loyalty_cli
from tests.cli.conftest import one_line_error, read_csv, run, write_csv

IMPORT_HEADER = ["card_number", "family_name", "given_name", "birth_date", "phone", "email",
                 "country", "province", "city", "line", "postal_code"]
ROWS = [
    [card_number(10_000_001), "王", "芳", "1980-05-01", "13800000001", "wf@example.com", "CN", "Beijing", "Beijing", "1 Chang'an Ave", "100000"],
    [card_number(10_000_002), "Li", "Lei", "", "+8613800000002", "", "CN", "", "Shanghai", "", ""],
    [card_number(10_000_003), "Smith", "Anna", "1975-02-28", "", "anna@example.com", "US", "", "Nowhere Town", "", ""],
    [card_number(10_000_004), "Zhao", "Yun, Jr.", "", "", "", "CN", "", "Beijing", "Apt \"7\"", ""],
    ["", "Chen", "Wu", "", "13800000005", "", "CN", "", "Beijing", "", ""],
]


def _import(db, tmp_path) -> None:
    source = write_csv(tmp_path / "members.csv", IMPORT_HEADER, ROWS)
    assert run(db, tmp_path, "import", "members", str(source)).stdout.startswith("import members: 5 taken")


async def test_export_lists_every_member_with_tier_miles_office_and_status(db, tmp_path):
    _import(db, tmp_path)
    done = run(db, tmp_path, "export", "members")
    assert done.returncode == 0, done.stderr
    rows = read_csv(done.stdout)
    assert done.stdout.splitlines()[0] == ",".join(bulk.EXPORT_COLUMNS)
    assert len(rows) == 5
    assert [r["family_name"] for r in rows] == ["王", "Li", "Smith", "Zhao", "Chen"]  # enrolment order
    assert rows[0] == dict(zip(bulk.EXPORT_COLUMNS, ROWS[0] + ["STANDARD", "", "0", "PEK01", "ACTIVE"]))
    assert rows[3]["given_name"] == "Yun, Jr." and rows[3]["line"] == 'Apt "7"'
    assert [r["office_code"] for r in rows[1:3]] == ["PVG01", rows[2]["office_code"]]
    assert done.stderr.splitlines()[-2:] == ["export members: [####################] 5/5 (100%)", "export members: 5 members"]

    pek = read_csv(run(db, tmp_path, "export", "members", "--office", "PEK01").stdout)
    assert [r["family_name"] for r in pek] == ["王", "Zhao", "Chen"]
    assert one_line_error(run(db, tmp_path, "export", "members", "--office", "NOPE1"), 1) == "loyalty: no office NOPE1"


async def test_export_reads_keyset_pages(db, tmp_path, monkeypatch):
    _import(db, tmp_path)
    monkeypatch.setattr(bulk, "EXPORT_PAGE", 2)
    calls: list[tuple[int, int]] = []
    out = io.StringIO()
    assert await bulk.export_members(out, None, lambda done, total: calls.append((done, total))) == 5
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]  # three pages of at most 2
    assert [r["card_number"] for r in read_csv(out.getvalue())][:4] == [r[0] for r in ROWS[:4]]


async def test_an_export_imported_into_an_empty_database_reproduces_the_members(db, tmp_path):
    _import(db, tmp_path)
    exported = run(db, tmp_path, "export", "members").stdout
    copy = tmp_path / "copy"
    copy.mkdir()
    url = f"sqlite://{copy / 'empty.db'}"
    assert loyalty_cli(["migrate"], copy, url).returncode == 0
    (copy / "export.csv").write_text(exported, encoding="utf-8")
    imported = loyalty_cli(["import", "members", str(copy / "export.csv")], copy, url)
    assert imported.stdout == "import members: 5 taken, 0 already present, 0 rejected\n", imported.stderr
    again = loyalty_cli(["export", "members"], copy, url)
    assert again.stdout == exported
    assert len(read_csv(again.stdout)) == 5
