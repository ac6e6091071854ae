"""Import of work permits issued on paper before 2024-12-01 (SPEC W3).

Such permits stay valid as they are ("no change, no replacement"): they are imported with
``paper=True`` and no notification letter. Their first renewal or modification moves them to the new
process (``service._changed``).

The file is CSV, UTF-8 (a BOM is accepted), comma-separated, with exactly the header ``COLUMNS``.
A problem with the whole file (encoding, size, row count, header) refuses it and changes nothing
(SPEC X2); a problem with a row is reported by line and column and the other rows are imported. Each
row is written in its own savepoint, so a database error on one row loses no other (SPEC X3), and
importing the same file again changes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workcard import audit, clock, events
from workcard.errors import Conflict, DomainError, InvalidInput
from workcard.iam.models import StaffUser
from workcard.iam.roles import Role
from workcard.iam.service import actor_of
from workcard.permits import rules, service
from workcard.permits.models import Foreigner, Permit
from workcard.permits.states import Category, PermitState

COLUMNS: tuple[str, ...] = (
    "permit_number", "passport_name", "chinese_name", "nationality", "passport_number", "passport_expiry",
    "date_of_birth", "sex", "employer_uscc", "category", "position", "work_location", "valid_from",
    "valid_until",
)  # fmt: skip
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
# A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection). Only
# the first character counts ("Jean-Luc" is fine); no column holds a negative number.
FORMULA_STARTS = {"=": "=", "+": "+", "-": "-", "@": "@", "\t": "TAB", "\r": "CR"}
# Field names of ``rules`` and ``service`` that differ from the file's column names.
_FIELD_TO_COLUMN = {"number": "permit_number", "uscc": "employer_uscc"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# What must match when a row names a person already registered with the same passport.
_PERSON_KEYS = ("passport_name", "date_of_birth", "sex")
_PERMIT_KEYS = ("employer_id", "category", "position", "work_location", "valid_from", "valid_until")

DEMO_CSV = (
    ",".join(COLUMNS) + "\n"
    "P1200023000457,Hans Peter Schmidt,,DEU,C01X00T47,2031-01-01,1975-05-20,M,91120116MA05JX3X33,B,"
    "Chief engineer,Tianjin,2023-03-01,2027-02-28\n"
)


@dataclass
class RowError:
    line: int  # the line of the file the row starts on (the header is line 1)
    field: str | None  # the column, when the problem is in one cell
    message: str  # an English msgid with str.format placeholders, translated when shown
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportReport:
    imported: int = 0
    unchanged: int = 0
    rejected: list[RowError] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    """One row, parsed and validated."""

    number: str
    person: service.PersonInput
    employer_id: int
    category: str
    position: str
    work_location: str
    valid_from: dt.date
    valid_until: dt.date

    def permit_fields(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _PERMIT_KEYS}


# --- the file ----------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise InvalidInput(
            "The file is larger than {mb} MB; please split it into smaller files.",
            field="file",
            mb=MAX_BYTES >> 20,
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            "The file is not UTF-8 text (it may be GBK or Latin-1). Please save it as “CSV UTF-8” and "
            "upload it again.",
            field="file",
        ) from None
    if not text.strip():
        raise InvalidInput("The file is empty.", field="file")
    return text


def _check_header(header: list[str]) -> None:
    if tuple(header) == COLUMNS:
        return
    missing = [c for c in COLUMNS if c not in header]
    unexpected = [c for c in header if c not in COLUMNS]
    if missing or unexpected:
        raise InvalidInput(
            "The first line must hold the column names. Missing columns: {missing}. Unexpected columns: "
            "{unexpected}.",
            field="file",
            missing=", ".join(missing) or "—",
            unexpected=", ".join(f"“{c}”" for c in unexpected) or "—",
        )
    raise InvalidInput(
        "The columns must be in this order, each once: {columns}.", field="file", columns=",".join(COLUMNS)
    )


def _records(text: str) -> list[tuple[int, list[str]]]:
    """(line, cells) of each non-blank row after the header, which is checked here."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out: list[tuple[int, list[str]]] = []
    try:
        _check_header(next(reader, []))
        line = reader.line_num + 1
        for cells in reader:
            if any(c.strip() for c in cells):
                out.append((line, cells))
            line = reader.line_num + 1
    except csv.Error:
        raise InvalidInput(
            "The file is not valid CSV near line {line}.", field="file", line=reader.line_num
        ) from None
    if len(out) > MAX_ROWS:
        raise InvalidInput(
            "The file has {n} rows; at most {max} can be imported at once. Please split it.",
            field="file",
            n=len(out),
            max=MAX_ROWS,
        )
    return out


# --- one row -----------------------------------------------------------------------------------------


def _date(value: str, column: str) -> dt.date:
    value = value.strip()
    if _DATE_RE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidInput("“{value}” is not a date; please use YYYY-MM-DD.", field=column, value=value[:20])


def _parse_row(session: Session, cells: list[str], today: dt.date) -> _Row:
    """Validate one row with the Work System's rules; raises ``InvalidInput`` for the first problem."""
    if len(cells) != len(COLUMNS):
        raise InvalidInput(
            "This line has {found} columns; {expected} are expected.", found=len(cells), expected=len(COLUMNS)
        )
    v = dict(zip(COLUMNS, cells, strict=True))
    for column, cell in v.items():
        if cell[:1] in FORMULA_STARTS:
            raise InvalidInput(
                "The cell starts with “{char}”, which spreadsheet programs run as a formula, so the row was "
                "not imported. Please remove that character.",
                field=column,
                char=FORMULA_STARTS[cell[:1]],
            )
    # In column order, so that the problem reported is the first one in the row.
    number = rules.check_legacy_number(v["permit_number"])
    person = service.PersonInput(
        passport_name=rules.check_passport_name(v["passport_name"]),
        chinese_name=rules.check_chinese_name(v["chinese_name"]),
        nationality=rules.check_nationality(v["nationality"]),
        passport_number=rules.check_passport_number(v["passport_number"]),
        passport_expiry=_date(v["passport_expiry"], "passport_expiry"),  # expired is no reason to refuse
        date_of_birth=_date(v["date_of_birth"], "date_of_birth"),
        sex=v["sex"].strip().upper(),
    )
    rules.check_birth_date(person.date_of_birth, today)
    if person.sex not in ("M", "F"):
        raise InvalidInput("The sex must be M or F, as in the passport.", field="sex")
    employer = service.employer_by_uscc(session, v["employer_uscc"])
    category = v["category"].strip().upper()
    if category not in {c.value for c in Category}:
        raise InvalidInput("The category must be A, B or C.", field="category")
    position = rules.check_text(v["position"], field="position", label="Position", max_len=120)
    work_location = rules.check_text(v["work_location"], field="work_location", label="Work location")
    valid_from = _date(v["valid_from"], "valid_from")
    valid_until = _date(v["valid_until"], "valid_until")
    if valid_from >= rules.NEW_PROCESS_START:
        raise InvalidInput(
            "Only permits issued on paper before {date} can be imported; this one starts on {start}.",
            field="valid_from",
            date=rules.NEW_PROCESS_START.isoformat(),
            start=valid_from.isoformat(),
        )
    rules.check_validity(valid_from, valid_until)
    return _Row(
        number=number, person=person, employer_id=employer.id, category=category, position=position,
        work_location=work_location, valid_from=valid_from, valid_until=valid_until,
    )  # fmt: skip


def _check_same_person(person: Foreigner, row: _Row) -> None:
    if person.passport_name != row.person.passport_name:
        raise Conflict(
            "A person with this nationality and passport number is registered with another name.",
            field="passport_name",
        )
    if person.date_of_birth != row.person.date_of_birth:
        raise Conflict(
            "A person with this nationality and passport number is registered with another date of birth.",
            field="date_of_birth",
        )
    if person.sex != row.person.sex:
        raise Conflict(
            "A person with this nationality and passport number is registered with another sex.", field="sex"
        )


def _check_same_import(session: Session, permit: Permit, row: _Row) -> None:
    """A permit number already in the Work System is fine (nothing to do) only when it was imported
    from the same data and is still a paper permit."""
    if not permit.paper:
        raise Conflict(
            "This permit has moved to the new process (renewed or modified); it is not imported again.",
            field="permit_number",
        )
    person = session.get(Foreigner, permit.foreigner_id)
    assert person is not None
    same = (
        (person.nationality, person.passport_number) == (row.person.nationality, row.person.passport_number)
        and all(getattr(permit, key) == value for key, value in row.permit_fields().items())
        and all(getattr(person, key) == getattr(row.person, key) for key in _PERSON_KEYS)
    )
    if not same:
        raise Conflict("This permit number was already imported with different data.", field="permit_number")


def _find_or_register(session: Session, actor: StaffUser, row: _Row) -> Foreigner:
    """The person with the row's passport, registered here if new. Unlike ``service.register_foreigner``
    an expired passport is accepted: the paper permit stays as it is."""
    data = row.person
    person = session.scalar(
        select(Foreigner).where(
            Foreigner.nationality == data.nationality, Foreigner.passport_number == data.passport_number
        )
    )
    if person is not None:
        _check_same_person(person, row)
        return person
    return service.add_foreigner(session, actor=actor, employer_id=row.employer_id, data=data,
                                 action="foreigner.import_paper")  # fmt: skip


def _import_row(session: Session, actor: StaffUser, row: _Row, today: dt.date) -> Permit:
    person = _find_or_register(session, actor, row)
    expired = row.valid_until < today
    current = None if expired else service.current_permit(session, person.id)
    if current is not None:
        raise Conflict(
            "This person already holds a valid work permit ({number}).",
            field="permit_number",
            number=current.number,
        )
    permit = Permit(
        number=row.number,
        foreigner_id=person.id,
        status=(PermitState.EXPIRED if expired else PermitState.VALID).value,
        paper=True,
        issued_at=dt.datetime.combine(row.valid_from, dt.time(0), tzinfo=dt.UTC),
        **row.permit_fields(),
    )
    session.add(permit)
    session.flush()
    audit.record(
        session, actor=actor_of(actor), action="permit.import_paper", subject_type="permit",
        subject_id=permit.id, after=service.permit_view(permit),
    )  # fmt: skip
    return permit


# --- the use case ------------------------------------------------------------------------------------


def import_csv(session: Session, *, actor: StaffUser, data: bytes) -> ImportReport:
    """Import a file of paper permits (SPEC W3). Does not commit: the request or command owns the
    transaction; each row is written in its own savepoint inside it."""
    service._require(actor, Role.PERMIT_OFFICER, Role.ADMIN)
    records = _records(_decode(data))
    today = clock.today()
    report = ImportReport()
    first_line: dict[str, int] = {}
    for line, cells in records:
        try:
            row = _parse_row(session, cells, today)
            if row.number in first_line:
                raise Conflict(
                    "This permit number is already on line {first} of the file.",
                    field="permit_number",
                    first=first_line[row.number],
                )
            first_line[row.number] = line
            existing = session.scalar(select(Permit).where(Permit.number == row.number))
            if existing is not None:
                _check_same_import(session, existing, row)
                report.unchanged += 1
                continue
            with session.begin_nested():
                permit = _import_row(session, actor, row, today)
        except DomainError as exc:
            column = _FIELD_TO_COLUMN.get(exc.field or "", exc.field)
            report.rejected.append(RowError(line, column, exc.message, exc.params))
            continue
        except IntegrityError:  # e.g. the same permit or person imported at this moment by another request
            report.rejected.append(
                RowError(
                    line, None, "The row conflicts with a record saved at the same time; please import again."
                )
            )
            continue
        # After the savepoint: an event is handed to subscribers only for a row that was saved.
        events.publish(session, "permit.imported", "permit", permit.id, number=permit.number)
        report.imported += 1
    return report
