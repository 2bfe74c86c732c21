"""Bulk CSV for the operator: `loyalty import members|activities FILE` and `loyalty export
members` (OPERATIONS.md). Every row goes through the programme's own services, so a row is
taken whole or not at all and a re-run is idempotent (by card number for members, by
externalRef for activities). Members are enrolled MEMBER_BATCH rows per transaction
(members.services.MemberImport), activities posted ACTIVITY_BATCH rows per transaction
with a savepoint per row (loyalty.ledger.ActivityImport)."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any, Protocol, TextIO

from members.codes import by_code
from members.access import Caller, Role, resolve_caller
from members.errors import DomainError, ForbiddenError, invalid

MEMBER_COLUMNS = [
    "card_number", "family_name", "given_name", "birth_date", "phone", "email",
    "country", "province", "city", "line", "postal_code",
]
MEMBER_REQUIRED = ["family_name", "given_name", "country", "city"]
EXPORT_COLUMNS = MEMBER_COLUMNS + ["tier", "tier_valid_until", "redeemable_miles", "office_code", "status"]
ACTIVITY_COLUMNS = [
    "kind", "card_number", "family_name", "external_ref", "activity_date",
    "carrier", "flight_number", "origin", "destination", "distance_km", "fare_class",
    "partner_code", "miles", "description",
]
ACTIVITY_REQUIRED = ["kind", "card_number", "external_ref", "activity_date"]
EXPORT_PAGE = 500
# Rows per transaction of `import members`: each commit waits for a sync to disk, and a
# batch's lookups are `IN` lists of this many (within every database's parameter limit).
MEMBER_BATCH = 2000
# Rows per transaction of `import activities` (a savepoint each). On PostgreSQL a batch
# holds its members' rows (and, for an upgrade, the tier event lock) until it commits.
ACTIVITY_BATCH = 500
IMPORT_ACTOR = "import"


class CsvFileError(Exception):
    """The file cannot be imported at all (missing, not UTF-8, not CSV, missing columns)."""


@dataclass(frozen=True)
class SystemCaller(Caller):
    """A caller acting for an operator job: audited as `system:<subject>`."""

    @property
    def actor(self) -> str:
        return f"system:{self.subject}"


@dataclass
class ImportSummary:
    taken: int = 0
    present: int = 0
    rejected: int = 0
    rejects_path: Path | None = None


def rejects_path_for(path: Path) -> Path:
    """members.csv -> members.rejected.csv, next to the input."""
    return path.with_name(f"{path.stem}.rejected.csv")


def read_header(path: Path, required: list[str]) -> tuple[list[str], int]:
    """The header and the number of data rows, reading the whole file once so that an
    encoding or CSV error is found before anything is written."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CsvFileError(f"{path} is empty: a header row is needed")
            count = sum(1 for row in reader if row)
    except FileNotFoundError:
        raise CsvFileError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CsvFileError(f"{path} is a directory, not a CSV file") from None
    except PermissionError:
        raise CsvFileError(f"cannot read {path}: permission denied") from None
    except UnicodeDecodeError as error:
        raise CsvFileError(f"{path} is not UTF-8 text (byte {error.start}): save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise CsvFileError(f"{path} is not a readable CSV file: {error}") from None
    header = [name.strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise CsvFileError(f"{path} lacks the required column(s) {', '.join(missing)} (header: {','.join(header)})")
    return header, count


def _value(row: dict, name: str) -> str:
    return (row.get(name) or "").strip()


def _optional(row: dict, name: str) -> str | None:
    return _value(row, name) or None


def _parse_date(row: dict, name: str, required: bool) -> date | None:
    text = _value(row, name)
    if not text:
        if required:
            raise invalid(f"{name} is required")
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise invalid(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None


def _parse_int(row: dict, name: str) -> int:
    text = _value(row, name)
    try:
        return int(text)
    except ValueError:
        raise invalid(f"{name} {text!r} is not a whole number") from None


# A row's outcome: True written, False already present, or the error that rejected it.
Outcome = bool | DomainError | ForbiddenError


class BatchImport(Protocol):
    """What `import_rows` runs on each batch: `prepare` (no database: parsing and the
    checks that need none) and `write` (the batch's transaction). Each returns one item
    per row, in order; an outcome is True written, False already present, or the error
    that rejects the row."""

    def prepare(self, rows: list[dict]) -> list[Any]: ...

    async def write(self, prepared: list[Any]) -> list[Outcome]: ...


# Rows prepared between two yields to the event loop while the previous batch is written.
PREPARE_CHUNK = 100


def _reason(error: DomainError | ForbiddenError) -> str:
    if isinstance(error, DomainError):
        return f"{error.code}: {error.message}"
    return f"FORBIDDEN: {error}"


def _batches(path: Path, header: list[str], size: int) -> Iterator[list[tuple[dict, DomainError | None]]]:
    """The file's rows as {column: value} (blank lines skipped) in lists of `size`, each
    row with the error that rejects it before it reaches the service (more fields than
    the header)."""
    batch: list[tuple[dict, DomainError | None]] = []
    width = len(header)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)  # the header, read by read_header
        for values in reader:
            if not "".join(values[:width]).strip():
                continue  # a blank line
            error = invalid(f"the row has more fields than the header's {width}") if len(values) > width else None
            batch.append((dict(zip(header, values)), error))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


async def import_rows(
    path: Path,
    rejects: Path,
    required: list[str],
    importer: BatchImport,
    progress: Callable[[int, int], None],
    batch_size: int,
    checked: tuple[list[str], int] | None = None,
) -> ImportSummary:
    """Run `importer` on the file's rows, `batch_size` at a time, and write the rejected
    rows with a `reason` column as each batch is done: memory holds two batches, whatever
    the file's size.

    The next batch is read and prepared while the previous one is being written (in
    chunks of PREPARE_CHUNK rows, yielding to the event loop between them): the database
    works on one batch while Python parses the next. Batches are still written one after
    the other, in file order. `checked`: read_header's answer when the caller has it
    already (the CLI checks the file before it opens the database)."""
    header, total = checked or read_header(path, required)
    summary = ImportSummary(rejects_path=rejects)
    fieldnames = header + (["reason"] if "reason" not in header else [])
    with rejects.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=fieldnames, extrasaction="ignore", restval="")
        writer.writeheader()
        done = 0
        progress(done, total)

        def record(batch: list[tuple[dict, DomainError | None]], outcomes: list[Outcome]) -> None:
            nonlocal done
            results = iter(outcomes)
            for row, error in batch:
                outcome = error or next(results)
                if outcome is True:
                    summary.taken += 1
                elif outcome is False:
                    summary.present += 1
                else:
                    summary.rejected += 1
                    writer.writerow({**row, "reason": _reason(outcome)})
            out.flush()
            done += len(batch)
            progress(done, total)

        async def written(prepared: list[Any]) -> list[Outcome]:
            return await importer.write(prepared) if prepared else []

        pending: tuple[list, asyncio.Future] | None = None
        try:
            for batch in _batches(path, header, batch_size):
                taken = [row for row, error in batch if error is None]
                prepared: list[Any] = []
                for start in range(0, len(taken), PREPARE_CHUNK):
                    prepared += importer.prepare(taken[start:start + PREPARE_CHUNK])
                    if pending is not None:
                        await asyncio.sleep(0)  # the previous batch's write goes on
                if pending is not None:
                    record(pending[0], await pending[1])
                pending = (batch, asyncio.ensure_future(written(prepared)))
            if pending is not None:
                record(pending[0], await pending[1])
                pending = None
        finally:
            if pending is not None and not pending[1].done():
                await asyncio.gather(pending[1], return_exceptions=True)  # its transaction ends first
    return summary


# ---- members ----------------------------------------------------------------------------


def _imported_member(row: dict):
    """The row as an ImportedMember, or the DomainError that rejects it (a bad date)."""
    from members.addresses import Address
    from members.services import Enrolment, ImportedMember

    try:
        birth_date = _parse_date(row, "birth_date", required=False)
    except DomainError as error:
        return error
    # The values as read: validation strips and squeezes them (and a blank optional
    # value counts as absent).
    get = row.get
    return ImportedMember(
        Enrolment(
            get("family_name") or "", get("given_name") or "",
            Address(get("country") or "", get("city") or "", get("province"), get("line"), get("postal_code")),
            birth_date, get("phone"), get("email"),
        ),
        get("card_number"),
    )


async def import_members(
    path: Path, rejects: Path, *, today: date, progress, batch_size: int = MEMBER_BATCH,
    checked: tuple[list[str], int] | None = None,
) -> ImportSummary:
    """Enrol the file's members, `batch_size` rows per transaction (members.services.MemberImport)."""
    from members.addresses import AddressBook
    from members.services import MemberImport

    members = MemberImport(SystemCaller(Role.ADMIN, IMPORT_ACTOR), today=today, address_book=await AddressBook.load())
    return await import_rows(path, rejects, MEMBER_REQUIRED, _Rows(members, _imported_member), progress, batch_size, checked)


# ---- activities -------------------------------------------------------------------------


def _activity_row(row: dict):
    """The row as a loyalty.ledger FlightRow or PartnerRow, or the DomainError that
    rejects it (a bad kind, date or number)."""
    from loyalty.ledger import FlightDetails, FlightRow, PartnerRow

    try:
        kind = _value(row, "kind").upper()
        activity_date = _parse_date(row, "activity_date", required=True)
        if kind == "FLIGHT":
            flight = FlightDetails(
                carrier=_value(row, "carrier"), flight_number=_value(row, "flight_number"), date=activity_date,
                origin=_value(row, "origin"), destination=_value(row, "destination"),
                distance_km=_parse_int(row, "distance_km"), fare_class=_value(row, "fare_class"),
            )
            return FlightRow(_value(row, "card_number"), flight, _value(row, "external_ref"))
        if kind == "PARTNER":
            try:
                miles: int | DomainError = _parse_int(row, "miles")
            except DomainError as error:
                miles = error
            return PartnerRow(
                _value(row, "partner_code"), _value(row, "card_number"), _value(row, "family_name"), miles,
                activity_date, _optional(row, "description"), _value(row, "external_ref"),
            )
        raise invalid(f"kind {kind!r} must be FLIGHT or PARTNER")
    except DomainError as error:
        return error


async def import_activities(
    path: Path, rejects: Path, *, rules, today: date, progress, batch_size: int = ACTIVITY_BATCH,
    checked: tuple[list[str], int] | None = None,
) -> ImportSummary:
    """Post the file's flights and partner activities, `batch_size` rows per transaction
    (loyalty.ledger.ActivityImport)."""
    from loyalty.ledger import ActivityImport

    partners: dict[str, Caller] = {}

    async def partner_caller(code: str) -> Caller:
        if not code:
            raise invalid("partner_code is required for a PARTNER row")
        if code not in partners:
            resolved = await resolve_caller(Role.PARTNER, IMPORT_ACTOR, code)
            partners[code] = SystemCaller(resolved.role, resolved.subject, resolved.scope, blocked=resolved.blocked)
        if partners[code].blocked:
            raise DomainError("FORBIDDEN", f"partner {code} is not registered or not active")
        return partners[code]

    activities = ActivityImport(SystemCaller(Role.AIRLINE, IMPORT_ACTOR), partner_caller, rules=rules, today=today)
    return await import_rows(path, rejects, ACTIVITY_REQUIRED, _Rows(activities, _activity_row), progress, batch_size, checked)


@dataclass(frozen=True)
class _Rows:
    """CSV rows through a service's batch import: `parse` makes each row the service's
    input (or the error that rejects it), `service` prepares and writes."""

    service: Any  # members.services.MemberImport, loyalty.ledger.ActivityImport
    parse: Callable[[dict], Any]

    def prepare(self, rows: list[dict]) -> list[Any]:
        return self.service.prepare([self.parse(row) for row in rows])

    async def write(self, prepared: list[Any]) -> list[Outcome]:
        return await self.service.write(prepared)


# ---- export -----------------------------------------------------------------------------


async def export_members(out: TextIO, office_code: str | None, progress) -> int:
    """Members as CSV (EXPORT_COLUMNS), by id in keyset pages of EXPORT_PAGE; the count."""
    from members.models import Member, Office
    from members.services import member_email, member_phone

    codes = dict(await Office.all().values_list("id", "code"))
    filters: dict[str, Any] = {}
    if office_code is not None:
        office = await by_code(Office, office_code.strip().upper())
        if office is None:
            raise CsvFileError(f"no office {office_code}")
        filters["office_id"] = office.id
    total = await Member.filter(**filters).count()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    done, last_id = 0, 0
    progress(done, total)
    while True:
        page = await Member.filter(**filters, id__gt=last_id).order_by("id").limit(EXPORT_PAGE)
        if not page:
            break
        for m in page:
            writer.writerow([
                m.card_number, m.family_name, m.given_name, m.birth_date or "", member_phone(m) or "", member_email(m) or "",
                m.address_country, m.address_province or "", m.address_city, m.address_line or "",
                m.address_postal_code or "", m.tier.name, m.tier_valid_until or "", m.redeemable_miles,
                codes.get(m.office_id, ""), m.status.value,
            ])
        done += len(page)
        last_id = page[-1].id
        out.flush()
        progress(done, max(total, done))  # members enrolled meanwhile are exported too
    return done


STATEMENT_COLUMNS = (
    "posted_at", "activity_date", "card_number", "external_ref", "miles", "description", "reversed_by_entry",
)


async def export_statement(out: TextIO, partner_code: str, start: date, end: date, zone, progress) -> tuple[int, int]:
    """A partner's statement as CSV (STATEMENT_COLUMNS), newest first, in keyset pages;
    the (entries, miles) totals, which end the file as a last line."""
    from loyalty.statements import partner_statement, statement_rows

    caller = Caller(Role.ADMIN, "cli")
    try:
        # As of the start of the export: rows and totals hold the same entries.
        statement = await partner_statement(
            caller, partner_code, start, end, timezone=zone, as_of=datetime.now(dt_timezone.utc)
        )
    except DomainError as error:
        raise CsvFileError(error.message) from None
    entries, miles = await statement.totals()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STATEMENT_COLUMNS)
    done = 0
    progress(done, entries)
    async for rows in statement_rows(statement):
        for entry in rows:
            reversal = entry.reversed_by
            writer.writerow([
                entry.posted_at.astimezone(zone).isoformat(), entry.activity_date, entry.member.card_number,
                entry.external_ref or "", entry.redeemable_miles, entry.description or "",
                reversal.id if reversal is not None else "",
            ])
        done += len(rows)
        out.flush()
        progress(done, max(entries, done))
    writer.writerow(["total", "", "", "", miles, f"{entries} entries", ""])
    return entries, miles
