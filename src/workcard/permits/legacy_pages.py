"""The permit officer's (and administrator's) page for importing paper permits (SPEC W3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from workcard.errors import DomainError
from workcard.iam.models import StaffUser
from workcard.iam.roles import Role
from workcard.permits import legacy
from workcard.web import csrf
from workcard.web.deps import get_db, role
from workcard.web.errors import message_of
from workcard.web.forms import attempt, page
from workcard.web.vocabulary import N_

router = APIRouter(dependencies=[Depends(csrf.protect)], include_in_schema=False)
importer = role(Role.PERMIT_OFFICER, Role.ADMIN)
TEMPLATE = "permits/legacy_import.html"
# What each column holds (English msgids, marked for extraction and translated in the template).
COLUMN_HINTS = {
    "permit_number": N_("The number printed on the paper permit (6 to 20 letters and digits)."),
    "passport_name": N_("The name exactly as in the passport."),
    "chinese_name": N_("The Chinese name, if any (may be empty)."),
    "nationality": N_("ISO 3166-1 alpha-3 code, for example DEU."),
    "passport_number": N_("The passport number."),
    "passport_expiry": N_("YYYY-MM-DD; an expired passport is accepted."),
    "date_of_birth": N_("YYYY-MM-DD."),
    "sex": N_("M or F."),
    "employer_uscc": N_("The employer's unified social credit code; the employer must be registered."),
    "category": N_("A, B or C."),
    "position": N_("The position, as on the permit."),
    "work_location": N_("The work location, as on the permit."),
    "valid_from": N_("YYYY-MM-DD, before 2024-12-01."),
    "valid_until": N_("YYYY-MM-DD."),
}
assert tuple(COLUMN_HINTS) == legacy.COLUMNS


def _context() -> dict[str, Any]:
    return {
        "columns": COLUMN_HINTS,
        "header": ",".join(legacy.COLUMNS),
        "max_mb": legacy.MAX_BYTES >> 20,
        "max_rows": legacy.MAX_ROWS,
    }


def _rejected(report: legacy.ImportReport) -> list[dict[str, Any]]:
    """The rejected rows with their messages in the reader's language."""
    return [
        {"line": e.line, "field": e.field, "message": message_of(DomainError(e.message, **e.params))}
        for e in report.rejected
    ]


@router.get("/officer/legacy-import")
def legacy_form(request: Request, user: StaffUser = Depends(importer)) -> Response:
    return page(request, TEMPLATE, **_context())


@router.post("/officer/legacy-import")
def legacy_upload(
    request: Request,
    file: UploadFile = File(...),
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(importer),
) -> Response:
    # Read at most one byte more than allowed, so an oversized file is refused without reading it all.
    data = file.file.read(legacy.MAX_BYTES + 1)
    # The report is shown at once rather than after a redirect: sending the file again changes nothing.
    return attempt(
        request,
        db,
        lambda: legacy.import_csv(db, actor=user, data=data),
        template=TEMPLATE,
        on_success=lambda report: page(
            request, TEMPLATE, report=report, rejected=_rejected(report), filename=file.filename, **_context()
        ),
        **_context(),
    )
