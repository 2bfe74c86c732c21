"""The documentation ships with the code: every relative link of README.md and docs/*.md
names a file of the repository (tracked, so a fresh clone has it), no file points outside
it to the spec folder the project was written from, every document a docstring names
exists, docs/RULES.md shows the shipped rules file's numbers, and the package
configuration lists every data folder and file (setuptools warns about the others)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = ["api", "schema", "loyalty", "members", "care", "privacy", "migrations"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _tracked() -> set[str] | None:
    if shutil.which("git") is None:
        return None
    done = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    return set(done.stdout.splitlines()) if done.returncode == 0 else None


def test_the_docs_are_there():
    assert {p.name for p in DOCS} >= {"README.md", "RULES.md", "AUTH.md", "OPERATIONS.md", "DEPLOYMENT.md"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_inside_the_repository(doc):
    tracked = _tracked()
    links = [target for target in LINK.findall(doc.read_text(encoding="utf-8"))
             if not re.match(r"[a-z]+:", target) and not target.startswith("#")]
    for target in links:
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name}: {target} points outside the repository"
        assert path.exists(), f"{doc.name}: {target} does not exist"
        if tracked is not None and path.is_file():
            assert path.relative_to(ROOT).as_posix() in tracked, f"{doc.name}: {target} is not committed"


def _text_files():
    for folder in [*PACKAGES, "docs", "tests", "bench", "scripts"]:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".md", ".toml", ".js", ".html"} and "__pycache__" not in path.parts:
                yield path
    yield from (ROOT / name for name in ("README.md", "pyproject.toml", "Makefile"))


def test_nothing_points_to_the_spec_folder_outside_the_repository():
    outside = "shared" + "/spec"  # spelt apart so this file does not name it
    offenders = [p.relative_to(ROOT).as_posix() for p in _text_files() if outside in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_every_document_a_docstring_names_exists():
    named: dict[str, set[str]] = {}
    for path in _text_files():
        if path.suffix in {".py", ".toml"}:
            for name in re.findall(r"\b([A-Z][A-Z_]+\.md)\b", path.read_text(encoding="utf-8")):
                named.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    assert named, "no document named at all: the pattern is wrong"
    shipped = {path.name for path in _text_files()}  # a document beside the code it describes
    missing = {name: sorted(files) for name, files in named.items()
               if not any((ROOT / folder / name).is_file() for folder in ("", "docs", "bench")) and name not in shipped}
    assert missing == {}


def test_the_rules_document_shows_the_shipped_numbers():
    rules = tomllib.loads((ROOT / "loyalty" / "default_rules.toml").read_text(encoding="utf-8"))
    text = (ROOT / "docs" / "RULES.md").read_text(encoding="utf-8")
    expected = [f"| `{key}` | {value:,} |" for key, value in rules.items() if not isinstance(value, dict)]
    for tier, numbers in rules["tiers"].items():
        (row,) = [line for line in text.splitlines() if line.startswith(f"| {tier} |")]
        shown = [cell.strip() for cell in row.strip("|").split("|")][-6:]
        assert shown == [f"{numbers[key]:,}" for key in ("upgrade_miles", "upgrade_segments", "retain_miles",
                                                         "retain_segments", "validity_months", "bonus_percent")], tier
    expected.append(", ".join(f"{letter} {percent} %" for letter, percent in rules["fare_classes"].items()))

    def care(prefix: str, table: dict) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                care(f"{prefix}.{key}", value)
            else:
                expected.append(f"| `{prefix}.{key}` | {value} |")

    care("care", rules["care"])
    missing = [line for line in expected if line not in text]
    assert missing == []


def test_the_package_configuration_lists_every_data_folder_and_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages, data = set(config["packages"]), config["package-data"]
    for top in PACKAGES:
        for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts:
                continue
            name = folder.relative_to(ROOT).as_posix().replace("/", ".")
            files = [f for f in folder.iterdir() if f.is_file() and f.suffix not in {".py", ".pyc"}]
            if not any(folder.iterdir()):
                continue
            assert name in packages, f"{name} is not in [tool.setuptools] packages"
            for file in files:
                assert any(fnmatch.fnmatch(file.name, pattern) for pattern in data.get(name, [])), (
                    f"{file.relative_to(ROOT)} matches no package-data pattern of {name}"
                )
