"""Import of paper permits issued before 2024-12-01 (SPEC W3, X2, X3)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from tests.conftest import csrf_of, sign_in
from workcard import audit, clock, events
from workcard.errors import Forbidden, InvalidInput
from workcard.iam.roles import Role
from workcard.permits import legacy, service
from workcard.permits.models import Foreigner, Letter, Permit

TODAY = dt.date(2026, 6, 1)


@pytest.fixture(autouse=True)
def _today(frozen: Any) -> None:
    frozen.date(TODAY)


@pytest.fixture
def employer(make_employer: Any) -> Any:
    return make_employer()


@pytest.fixture
def officer(make_staff: Any) -> Any:
    return make_staff(Role.PERMIT_OFFICER)


def row(employer: Any, **overrides: str) -> dict[str, str]:
    values = {
        "permit_number": "P1200023000457",
        "passport_name": "Hans Peter Schmidt",
        "chinese_name": "",
        "nationality": "DEU",
        "passport_number": "C01X00T47",
        "passport_expiry": "2031-01-01",
        "date_of_birth": "1975-05-20",
        "sex": "M",
        "employer_uscc": employer.uscc,
        "category": "B",
        "position": "Chief engineer",
        "work_location": "Tianjin",
        "valid_from": "2023-03-01",
        "valid_until": "2027-02-28",
    }
    values.update(overrides)
    return values


def csv_text(*rows: dict[str, str], header: tuple[str, ...] = legacy.COLUMNS) -> str:
    def cell(value: str) -> str:
        return f'"{value}"' if any(c in value for c in ',"\n') else value

    lines = [",".join(header)] + [",".join(cell(r[c]) for c in header) for r in rows]
    return "\r\n".join(lines) + "\r\n"


def run(db: Session, actor: Any, text: str | bytes) -> legacy.ImportReport:
    data = text.encode() if isinstance(text, str) else text
    return legacy.import_csv(db, actor=actor, data=data)


def count(db: Session, model: Any, *where: Any) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where)) or 0


def snapshot(db: Session) -> tuple[int, int, int, int]:
    return (
        count(db, Permit),
        count(db, Foreigner),
        count(db, audit.AuditRecord),
        count(db, events.DomainEvent),
    )


def rejected(report: legacy.ImportReport) -> list[tuple[int, str | None]]:
    return [(e.line, e.field) for e in report.rejected]


# --- importing -----------------------------------------------------------------------------------------


def test_good_rows_are_imported_valid_as_they_are(db, officer, employer):  # SPEC W3
    second = row(
        employer, permit_number="TJ2019000123", passport_name="Jean-Luc O'Connor", nationality="FRA",
        passport_number="19AB12345", passport_expiry="2025-01-31",  # an expired passport: still imported
        chinese_name="安杰", sex="M", category="A", valid_from="2019-05-01", valid_until="2024-04-30",
    )  # fmt: skip
    data = (
        b"\xef\xbb\xbf" + csv_text(row(employer), second).encode()
    )  # UTF-8 with a BOM (Excel's "CSV UTF-8")
    report = legacy.import_csv(db, actor=officer, data=data)
    assert (report.imported, report.unchanged, report.rejected) == (2, 0, [])
    hans = db.scalar(select(Permit).where(Permit.number == "P1200023000457"))
    assert hans is not None and hans.paper and hans.status == "valid"
    assert (hans.valid_from, hans.valid_until, hans.category) == (
        dt.date(2023, 3, 1),
        dt.date(2027, 2, 28),
        "B",
    )
    assert hans.issued_at == dt.datetime(2023, 3, 1, tzinfo=dt.UTC)
    assert hans.employer_id == employer.id
    old = db.scalar(select(Permit).where(Permit.number == "TJ2019000123"))
    assert old is not None and old.paper and old.status == "expired"
    person = db.get(Foreigner, old.foreigner_id)
    assert person is not None
    assert (person.passport_name, person.chinese_name, person.passport_expiry) == (
        "Jean-Luc O'Connor", "安杰", dt.date(2025, 1, 31))  # fmt: skip
    assert count(db, Letter) == 0  # no change, no replacement: no notification letter
    actions = db.scalars(select(audit.AuditRecord.action).order_by(audit.AuditRecord.id)).all()
    assert actions.count("permit.import_paper") == 2 and actions.count("foreigner.import_paper") == 2
    assert count(db, events.DomainEvent, events.DomainEvent.type == "permit.imported") == 2
    assert audit.verify(db).ok


def test_importing_the_same_file_again_changes_nothing(db, officer, employer):  # SPEC W3, X3
    text = csv_text(row(employer), row(employer, permit_number="P1200023000458", passport_number="C01X00T48",
                                       passport_name="Anna Schmidt", sex="F"))  # fmt: skip
    first = run(db, officer, text)
    assert first.imported == 2
    before = snapshot(db)
    again = run(db, officer, text)
    assert (again.imported, again.unchanged, again.rejected) == (0, 2, [])
    assert snapshot(db) == before  # no permit, person, audit record or event added


def test_same_number_with_other_data_is_rejected(db, officer, employer):  # SPEC X3
    run(db, officer, csv_text(row(employer)))
    before = snapshot(db)
    report = run(db, officer, csv_text(row(employer, valid_until="2027-12-31")))
    assert report.imported == report.unchanged == 0
    assert rejected(report) == [(2, "permit_number")]
    assert "different data" in report.rejected[0].message
    assert snapshot(db) == before


def test_duplicate_number_in_one_file_second_is_rejected(db, officer, employer):  # SPEC X3
    report = run(db, officer, csv_text(row(employer), row(employer, passport_number="X9999999")))
    assert report.imported == 1
    assert rejected(report) == [(3, "permit_number")]
    assert report.rejected[0].params == {"first": 2}
    assert count(db, Permit) == 1


def test_person_registered_with_another_name_is_rejected(db, officer, employer):  # SPEC X2
    run(db, officer, csv_text(row(employer)))
    other = row(employer, permit_number="P2000000001", passport_name="Hans Schmidt", valid_until="2024-01-31")
    report = run(db, officer, csv_text(other))
    assert rejected(report) == [(2, "passport_name")]
    assert "another name" in report.rejected[0].message


# --- bad rows (reported, the good rows still imported) -------------------------------------------------


def test_formula_cells_are_rejected_per_row(db, officer, employer):  # SPEC X2
    good = {"permit_number": "GOOD000001", "passport_name": "Jean-Luc Picard", "passport_number": "F1000001"}
    rows = [
        row(employer, **good),
        row(employer, permit_number="BAD0000001", passport_number="F1000002", position="=SUM(1)"),
        row(employer, permit_number="BAD0000002", passport_number="+1"),
        row(employer, permit_number="BAD0000003", passport_number="F1000004", work_location="@x"),
        row(employer, permit_number="BAD0000004", passport_number="F1000005", category="-1"),
        row(employer, permit_number="BAD0000005", passport_number="F1000006", position="\tcmd"),
        row(
            employer,
            permit_number="GOOD000002",
            passport_name="Anne-Marie Dubois",
            passport_number="F1000007",
        ),
    ]
    report = run(db, officer, csv_text(*rows))
    assert report.imported == 2
    assert rejected(report) == [
        (3, "position"), (4, "passport_number"), (5, "work_location"), (6, "category"), (7, "position"),
    ]  # fmt: skip
    assert [e.params["char"] for e in report.rejected] == ["=", "+", "@", "-", "TAB"]
    assert all("formula" in e.message for e in report.rejected)
    imported = set(db.scalars(select(Permit.number)))
    assert imported == {"GOOD000001", "GOOD000002"}


@pytest.mark.parametrize(
    ("overrides", "field", "param"),
    [
        ({"nationality": "XXX"}, "nationality", {"code": "XXX"}),
        ({"passport_name": "Hans\u200bPeter Schmidt"}, "passport_name", {"code": "200B"}),  # zero-width space
        ({"passport_name": "Hans\u202ePeter"}, "passport_name", {"code": "202E"}),  # bidi override
        ({"valid_from": "2024-12-01"}, "valid_from", {"start": "2024-12-01"}),  # SPEC W3: new process
        ({"valid_from": "2023-02-30"}, "valid_from", {"value": "2023-02-30"}),
        ({"passport_expiry": "31/01/2031"}, "passport_expiry", {"value": "31/01/2031"}),
        ({"date_of_birth": "20-05-1975"}, "date_of_birth", {}),
        ({"sex": "X"}, "sex", {}),
        ({"category": "D"}, "category", {}),
        ({"permit_number": "AB1"}, "permit_number", {}),
        ({"passport_number": "C0 1"}, "passport_number", {}),
        ({"employer_uscc": "91120116MA05JX3X34"}, "employer_uscc", {}),  # wrong check character
        ({"employer_uscc": "91120116MA05JX3X33"}, "employer_uscc", {}),  # valid, but no such employer
        ({"valid_until": "2022-01-01"}, "valid_until", {}),
        ({"position": ""}, "position", {"label": "Position"}),
    ],
)
def test_invalid_cell_is_reported_with_its_column(db, officer, employer, overrides, field, param):  # SPEC X2
    bad = row(employer, **{"permit_number": "BAD0000001", "passport_number": "B0000001", **overrides})
    report = run(db, officer, csv_text(bad, row(employer)))
    assert report.imported == 1
    assert rejected(report) == [(2, field)]
    assert param.items() <= report.rejected[0].params.items()
    assert db.scalar(select(Permit.number)) == "P1200023000457"


def test_wrong_column_count_is_reported(db, officer, employer):  # SPEC X2
    text = csv_text(row(employer)) + "SHORT0001,Hans,\r\n"
    report = run(db, officer, text)
    assert report.imported == 1
    assert rejected(report) == [(3, None)]
    assert report.rejected[0].params == {"found": 3, "expected": 14}


def test_database_error_on_one_row_keeps_the_others(db, officer, employer, monkeypatch):  # SPEC X3
    real = legacy._find_or_register

    def racing(session: Session, actor: Any, parsed: Any) -> Foreigner:
        """Another import saves the same permit number between our check and our insert."""
        person = real(session, actor, parsed)
        if parsed.number == "RACE000001":
            session.execute(insert(Permit).values(
                number=parsed.number, foreigner_id=person.id, employer_id=employer.id, category="B",
                position="x", work_location="y", valid_from=dt.date(2020, 1, 1),
                valid_until=dt.date(2021, 1, 1), status="expired", paper=True, issued_at=clock.now(),
            ))  # fmt: skip
        return person

    monkeypatch.setattr(legacy, "_find_or_register", racing)
    rows = [row(employer, permit_number="RACE000001", passport_number="R0000001"), row(employer)]
    report = run(db, officer, csv_text(*rows))
    assert report.imported == 1
    assert rejected(report) == [(2, None)]
    assert set(db.scalars(select(Permit.number))) == {"P1200023000457"}
    assert count(db, Foreigner, Foreigner.passport_number == "R0000001") == 0  # the savepoint was undone
    assert audit.verify(db).ok


# --- bad files (refused whole, nothing changed) --------------------------------------------------------


def test_wrong_header_is_refused(db, officer, employer):  # SPEC X2
    header = tuple(c for c in legacy.COLUMNS if c != "sex") + ("gender",)
    before = snapshot(db)
    with pytest.raises(InvalidInput) as err:
        run(db, officer, csv_text(row(employer, gender="M"), header=header))
    assert err.value.params == {"missing": "sex", "unexpected": "“gender”"}
    assert snapshot(db) == before


def test_columns_in_another_order_are_refused(db, officer, employer):  # SPEC X2
    header = tuple(reversed(legacy.COLUMNS))
    with pytest.raises(InvalidInput, match="order"):
        run(db, officer, csv_text(row(employer), header=header))


def test_gbk_file_is_refused_with_advice(db, officer, employer):  # SPEC X2
    before = snapshot(db)
    data = csv_text(row(employer, chinese_name="李明")).encode("gbk")
    with pytest.raises(InvalidInput, match="UTF-8") as err:
        run(db, officer, data)
    assert err.value.field == "file"
    assert snapshot(db) == before


def test_latin1_file_is_refused(db, officer, employer):  # SPEC X2
    with pytest.raises(InvalidInput, match="UTF-8"):
        run(db, officer, csv_text(row(employer, passport_name="José Müller")).encode("latin-1"))


def test_too_large_and_too_many_rows_are_refused(db, officer, employer):  # SPEC X2
    with pytest.raises(InvalidInput, match="larger"):
        run(db, officer, b"x" * (legacy.MAX_BYTES + 1))
    line = ",".join(row(employer).values())
    text = ",".join(legacy.COLUMNS) + "\n" + (line + "\n") * (legacy.MAX_ROWS + 1)
    before = snapshot(db)
    with pytest.raises(InvalidInput, match="rows") as err:
        run(db, officer, text)
    assert err.value.params["n"] == legacy.MAX_ROWS + 1
    assert snapshot(db) == before


def test_empty_file_is_refused(db, officer):  # SPEC X2
    with pytest.raises(InvalidInput, match="empty"):
        run(db, officer, b"\xef\xbb\xbf\r\n")


def test_only_officers_and_administrators_may_import(db, make_staff, employer):  # SPEC X4
    staff = make_staff(Role.EMPLOYER_STAFF, employer)
    with pytest.raises(Forbidden):
        run(db, staff, csv_text(row(employer)))
    assert run(db, make_staff(Role.ADMIN), csv_text(row(employer))).imported == 1


# --- the new process on the first change ---------------------------------------------------------------


def test_first_renewal_moves_a_paper_permit_to_the_new_process(db, officer, employer):  # SPEC W3
    run(db, officer, csv_text(row(employer)))
    permit = db.scalar(select(Permit).where(Permit.number == "P1200023000457"))
    assert permit is not None and permit.paper
    renewed = service.renew_permit(db, actor=officer, permit_id=permit.id, valid_until=dt.date(2028, 2, 28))
    assert not renewed.paper and renewed.number == "P1200023000457"  # the number printed on paper is kept
    assert db.scalars(select(Letter.version).where(Letter.permit_id == permit.id)).all() == [1]
    # Importing the old file again does not turn it back into a paper permit.
    report = run(db, officer, csv_text(row(employer)))
    assert rejected(report) == [(2, "permit_number")]
    assert not db.get(Permit, permit.id).paper


def test_demo_csv_is_valid(db, officer, make_employer):  # SPEC W3
    make_employer(uscc="91120116MA05JX3X33")
    report = run(db, officer, legacy.DEMO_CSV)
    assert (report.imported, report.rejected) == (1, [])


# --- the page ------------------------------------------------------------------------------------------


def _upload(client: Any, data: bytes) -> Any:
    token = csrf_of(client, "/officer/legacy-import")
    return client.post("/officer/legacy-import", data={"csrf_token": token},
                       files={"file": ("permits.csv", data, "text/csv")})  # fmt: skip


def test_page_imports_and_shows_the_report(client, officer, employer, db):  # SPEC W3, X1, X2
    sign_in(client, officer.username)
    client.cookies.set("wc_lang", "en")
    form = client.get("/officer/legacy-import")
    assert form.status_code == 200
    assert all(c in form.text for c in legacy.COLUMNS)
    text = csv_text(row(employer), row(employer, permit_number="BAD0000001", nationality="XXX"))
    resp = _upload(client, text.encode())
    assert resp.status_code == 200
    assert re.search(r'id="imported">1<', resp.text) and re.search(r'id="rejected">1<', resp.text)
    assert "“XXX” is not an ISO 3166-1 alpha-3 country code" in resp.text
    assert "<code>nationality</code>" in resp.text
    assert db.scalar(select(Permit.paper).where(Permit.number == "P1200023000457")) is True


def test_page_refuses_a_bad_file_with_422(client, officer, employer, db):  # SPEC X2
    sign_in(client, officer.username)
    resp = _upload(client, csv_text(row(employer, chinese_name="李明")).encode("gbk"))
    assert resp.status_code == 422
    assert "UTF-8" in resp.text
    assert count(db, Permit) == 0


def test_page_is_for_officers_only(client, make_staff, employer):  # SPEC X4
    sign_in(client, make_staff(Role.EMPLOYER_STAFF, employer).username)
    assert client.get("/officer/legacy-import").status_code == 403
