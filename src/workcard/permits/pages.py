"""Pages of the Work System: the employer portal, the permit officer's console, the administrator's
employer register, and the public page the letter's QR code opens."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from workcard import clock
from workcard.errors import InvalidInput, NotFound
from workcard.iam.models import StaffUser
from workcard.iam.roles import Role
from workcard.permits import jobs, rules, service
from workcard.permits.models import Employer, Foreigner, Permit
from workcard.permits.states import ApplicationKind, ApplicationState, Category, PermitState
from workcard.web import csrf
from workcard.web.deps import get_db, role
from workcard.web.forms import attempt, page, parse_date, redirect
from workcard.web.i18n import gettext
from workcard.web.templating import ENV

# A permit's status as of today, as lists show it: "not yet valid" before its start, "expired" after its
# end even before the expiry job has run (the same as its own page).
ENV.filters["live_status"] = lambda permit: service.live_status(permit, clock.today())

router = APIRouter(dependencies=[Depends(csrf.protect)], include_in_schema=False)
employer_staff = role(Role.EMPLOYER_STAFF)
officer = role(Role.PERMIT_OFFICER)
registrar = role(Role.ADMIN, Role.PERMIT_OFFICER)
reader = role(Role.EMPLOYER_STAFF, Role.PERMIT_OFFICER, Role.ADMIN)

KIND_LABELS = {
    ApplicationKind.NEW: "New permit",
    ApplicationKind.RENEWAL: "Renewal",
    ApplicationKind.MODIFICATION: "Modification",
    ApplicationKind.CANCELLATION: "Cancellation",
}


def _province_options() -> list[tuple[str, str]]:
    zh = gettext("Province") == "省份"
    return [("", "—")] + [(code, names[0] if zh else names[1]) for code, names in rules.PROVINCES.items()]


def _common() -> dict[str, object]:
    return {
        "kind_labels": {k.value: v for k, v in KIND_LABELS.items()},
        "categories": [c.value for c in Category],
    }


# --- employers (administrator, permit officer) ------------------------------------------------------


@router.get("/admin/employers")
@router.get("/officer/employers")
def employers(
    request: Request, db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(registrar)
) -> Response:
    return page(request, "permits/employers.html", employers=service.list_employers(db, user),
                provinces=_province_options())  # fmt: skip


@router.post("/admin/employers")
@router.post("/officer/employers")
def employer_create(
    request: Request,
    name: str = Form(""),
    uscc: str = Form(""),
    province: str = Form(""),
    city: str = Form(""),
    address: str = Form(""),
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(registrar),
) -> Response:
    return attempt(
        request, db,
        lambda: service.create_employer(db, actor=user, name=name, uscc=uscc, province=province, city=city,
                                        address=address),
        template="permits/employers.html", on_success=lambda _e: redirect(request.url.path),
        employers=service.list_employers(db, user), provinces=_province_options(),
    )  # fmt: skip


# --- foreign staff (employer) -----------------------------------------------------------------------


@router.get("/employer/foreigners")
def foreigners(
    request: Request,
    q: str = "",
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(employer_staff),
) -> Response:
    return page(request, "permits/foreigners.html", people=service.list_foreigners(db, user, q), q=q)


@router.get("/employer/foreigners/new")
def foreigner_form(request: Request, user: StaffUser = Depends(employer_staff)) -> Response:
    return page(request, "permits/foreigner_new.html")


@router.post("/employer/foreigners/new")
def foreigner_create(
    request: Request,
    passport_name: str = Form(""),
    chinese_name: str = Form(""),
    nationality: str = Form(""),
    passport_number: str = Form(""),
    passport_expiry: str = Form(""),
    date_of_birth: str = Form(""),
    sex: str = Form(""),
    photo: UploadFile | None = File(None),
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(employer_staff),
) -> Response:
    limit = request.app.state.settings.photo_max_bytes
    # Read at most one byte more than allowed, so an oversized upload is refused without reading it all.
    data = photo.file.read(limit + 1) if photo is not None and photo.filename else None
    return attempt(
        request, db,
        lambda: service.register_foreigner(db, actor=user, data=service.PersonInput(
            passport_name=passport_name, chinese_name=chinese_name or None, nationality=nationality,
            passport_number=passport_number,
            passport_expiry=parse_date(passport_expiry, field="passport_expiry"),  # type: ignore[arg-type]
            date_of_birth=parse_date(date_of_birth, field="date_of_birth"),  # type: ignore[arg-type]
            sex=sex, photo=data,
        )),
        template="permits/foreigner_new.html",
        on_success=lambda person: redirect(f"/employer/foreigners/{person.id}"),
    )  # fmt: skip


@router.get("/employer/foreigners/{foreigner_id}")
def foreigner_detail(
    request: Request,
    foreigner_id: int,
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(reader),
) -> Response:
    person = service.get_foreigner(db, user, foreigner_id)
    permits = [p for p in service.list_permits(db, user, query=person.passport_number)
               if p.foreigner_id == person.id]  # fmt: skip
    return page(request, "permits/foreigner.html", person=person, permits=permits,
                nationality=rules.nationality_names(person.nationality), **_common())  # fmt: skip


@router.get("/employer/foreigners/{foreigner_id}/photo")
def foreigner_photo(
    foreigner_id: int, db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(reader)
) -> Response:
    person = service.get_foreigner(db, user, foreigner_id)
    if person.photo is None:
        raise NotFound("No photo.")
    return Response(person.photo, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


# --- applications (employer) ------------------------------------------------------------------------


@router.get("/employer/applications")
def applications(
    request: Request,
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(employer_staff),
) -> Response:
    return page(request, "permits/applications.html", applications=service.list_applications(db, user),
                people={p.id: p for p in service.list_foreigners(db, user)}, **_common())  # fmt: skip


def _kind(value: str) -> ApplicationKind:
    try:
        return ApplicationKind(value)
    except ValueError:
        raise InvalidInput("Please choose the kind of application.", field="kind") from None


def _new_context(db: Session, user: StaffUser, kind: ApplicationKind) -> dict[str, object]:
    people = service.list_foreigners(db, user)
    permits = service.list_permits(db, user, status=PermitState.VALID.value)
    names = {p.id: p.passport_name for p in people}
    return {
        "kind": kind.value,
        "people_options": [("", "—")] + [(p.id, f"{p.passport_name} ({p.nationality} {p.passport_number})")
                                         for p in people],
        "permit_options": [("", "—")] + [(p.id, f"{p.number} · {names.get(p.foreigner_id, '')}") for p in permits],
        **_common(),
    }  # fmt: skip


@router.get("/employer/applications/new")
def application_form(
    request: Request, kind: str = "new", foreigner_id: str = "", permit_id: str = "",
    db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(employer_staff),
) -> Response:  # fmt: skip
    return page(
        request,
        "permits/application_form.html",
        form={"foreigner_id": foreigner_id, "permit_id": permit_id},
        **_new_context(db, user, _kind(kind)),
    )


def _input(form: dict[str, str]) -> service.ApplicationInput:
    return service.ApplicationInput(
        category=form.get("category") or None,
        position=form.get("position") or None,
        work_location=form.get("work_location") or None,
        valid_from=parse_date(form.get("valid_from"), field="valid_from", required=False),
        valid_until=parse_date(form.get("valid_until"), field="valid_until", required=False),
        new_employer_uscc=form.get("new_employer_uscc") or None,
        new_passport_number=form.get("new_passport_number") or None,
        new_passport_expiry=parse_date(
            form.get("new_passport_expiry"), field="new_passport_expiry", required=False
        ),
        reason=form.get("reason") or None,
    )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/employer/applications/new")
def application_create(
    request: Request, form: dict[str, str] = Depends(_form),
    db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(employer_staff),
) -> Response:  # fmt: skip
    kind = _kind(form.get("kind", ""))

    def action():  # type: ignore[no-untyped-def]
        def ident(name: str) -> int | None:
            value = form.get(name, "")
            return int(value) if value.isdigit() else None

        app = service.create_application(
            db,
            actor=user,
            kind=kind,
            data=_input(form),
            foreigner_id=ident("foreigner_id"),
            permit_id=ident("permit_id"),
        )
        if form.get("submit") == "1":
            service.submit_application(db, actor=user, application_id=app.id)
        return app

    return attempt(request, db, action, template="permits/application_form.html",
                   on_success=lambda app: redirect(f"/employer/applications/{app.id}"),
                   **_new_context(db, user, kind))  # fmt: skip


@router.get("/employer/applications/{application_id}")
@router.get("/officer/applications/{application_id}")
def application_detail(
    request: Request,
    application_id: int,
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(reader),
) -> Response:
    return page(request, "permits/application.html", **_application_context(db, user, application_id))


def _application_context(db: Session, user: StaffUser, application_id: int) -> dict[str, object]:
    app = service.get_application(db, user, application_id)
    person = (
        service.get_foreigner(db, user, app.foreigner_id)
        if user.role != Role.EMPLOYER_STAFF.value
        else service.get_foreigner(db, user, app.foreigner_id)
    )
    permit = service.get_permit(db, user, app.permit_id) if app.permit_id else None
    return {"app": app, "person": person, "permit": permit, "form": {
        "category": app.category or "", "position": app.position or "", "work_location": app.work_location or "",
        "valid_from": app.valid_from or "", "valid_until": app.valid_until or "", "reason": app.reason or "",
        "new_passport_number": app.new_passport_number or "", "new_passport_expiry": app.new_passport_expiry or "",
    }, "is_officer": user.role == Role.PERMIT_OFFICER.value, **_common()}  # fmt: skip


@router.post("/employer/applications/{application_id}")
def application_act(
    request: Request, application_id: int, form: dict[str, str] = Depends(_form),
    db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(employer_staff),
) -> Response:  # fmt: skip
    op = form.get("op", "")

    def action():  # type: ignore[no-untyped-def]
        if op == "withdraw":
            return service.withdraw_application(db, actor=user, application_id=application_id)
        service.update_application(db, actor=user, application_id=application_id, data=_input(form))
        if op == "submit":
            return service.submit_application(db, actor=user, application_id=application_id)
        return None

    ctx = _application_context(db, user, application_id)
    ctx.pop("form")
    return attempt(
        request,
        db,
        action,
        template="permits/application.html",
        on_success=lambda _a: redirect(f"/employer/applications/{application_id}"),
        **ctx,
    )


# --- the permit officer's console --------------------------------------------------------------------


@router.get("/officer/queue")
def queue(
    request: Request, db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(officer)
) -> Response:
    apps = service.list_applications(db, user, state=ApplicationState.SUBMITTED.value)
    ids = {a.foreigner_id for a in apps if a.foreigner_id}
    people = {f.id: f for f in db.scalars(select(Foreigner).where(Foreigner.id.in_(ids)))} if ids else {}
    return page(request, "permits/queue.html", applications=apps, people=people, **_common())


@router.post("/officer/applications/{application_id}")
def decide(
    request: Request, application_id: int, decision: str = Form(""), reason: str = Form(""),
    db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(officer),
) -> Response:  # fmt: skip
    def action():  # type: ignore[no-untyped-def]
        if decision == "approve":
            return service.approve_application(db, actor=user, application_id=application_id)
        if decision == "reject":
            return service.reject_application(db, actor=user, application_id=application_id, reason=reason)
        raise InvalidInput("Please choose approve or reject.", field="decision")

    ctx = _application_context(db, user, application_id)
    ctx.pop("form")
    return attempt(
        request,
        db,
        action,
        template="permits/application.html",
        on_success=lambda _r: redirect(f"/officer/applications/{application_id}"),
        **ctx,
    )


# --- permits (employer and officer) -------------------------------------------------------------------


@router.get("/employer/permits")
@router.get("/officer/permits")
def permits(
    request: Request,
    q: str = "",
    status: str = "",
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(reader),
) -> Response:
    status = status if status in {s.value for s in PermitState} else ""
    rows = service.list_permits(db, user, query=q, status=status or None)
    return page(
        request,
        "permits/permits.html",
        permits=rows,
        q=q,
        status=status,
        holders=_holders(db, rows),
        base=request.url.path,
        statuses=[s.value for s in PermitState],
    )


def _holders(db: Session, rows: list[Permit]) -> dict[int, Foreigner]:
    ids = {p.foreigner_id for p in rows}
    return {f.id: f for f in db.scalars(select(Foreigner).where(Foreigner.id.in_(ids)))} if ids else {}


def _ended_on(permit: Permit, status: str) -> dt.date | None:
    """The day a cancelled or expired permit ended, as verifiers are told (``credentials.service``)."""
    if status == PermitState.CANCELLED.value and permit.cancelled_at is not None:
        return permit.cancelled_at.astimezone(clock.CHINA).date()
    if status == PermitState.EXPIRED.value:
        return permit.valid_until
    return None


def _permit_context(db: Session, user: StaffUser, permit_id: int) -> dict[str, object]:
    permit = service.get_permit(db, user, permit_id)
    status = service.live_status(permit, clock.today())
    expiry = jobs.expiry_record(db, permit)
    person = db.get(Foreigner, permit.foreigner_id)
    assert person is not None
    return {
        "permit": permit,
        "person": person,
        "nationality": rules.nationality_names(person.nationality),
        "employer": db.get(Employer, permit.employer_id),
        "letters": service.list_letters(db, user, permit.id),
        "history": service.permit_history(db, permit) + ([expiry] if expiry else []),
        "history_labels": service.HISTORY_ACTIONS,
        "live_status": status,
        "ended_on": _ended_on(permit, status),
        "is_officer": user.role == Role.PERMIT_OFFICER.value,
        "is_employer": user.role == Role.EMPLOYER_STAFF.value,
        "base": "/officer" if user.role != Role.EMPLOYER_STAFF.value else "/employer",
    }


@router.get("/employer/permits/{permit_id}")
@router.get("/officer/permits/{permit_id}")
def permit_detail(
    request: Request,
    permit_id: int,
    db: Session = Depends(get_db, scope="function"),
    user: StaffUser = Depends(reader),
) -> Response:
    return page(request, "permits/permit.html", **_permit_context(db, user, permit_id))


PERMIT_NOTICES = {"renew": "permit_renewed", "modify": "permit_modified", "cancel": "permit_cancelled"}


@router.post("/officer/permits/{permit_id}")
def permit_act(
    request: Request, permit_id: int, form: dict[str, str] = Depends(_form),
    db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(officer),
) -> Response:  # fmt: skip
    op = form.get("op", "")

    def action():  # type: ignore[no-untyped-def]
        if op == "renew":
            until = parse_date(form.get("valid_until"), field="valid_until")
            return service.renew_permit(db, actor=user, permit_id=permit_id, valid_until=until)  # type: ignore[arg-type]
        if op == "modify":
            employer_id = (
                service.employer_by_uscc(db, form["new_employer_uscc"]).id
                if form.get("new_employer_uscc")
                else None
            )
            return service.modify_permit(db, actor=user, permit_id=permit_id, changes=service.PermitChanges(
                position=form.get("position") or None, work_location=form.get("work_location") or None,
                employer_id=employer_id, passport_number=form.get("new_passport_number") or None,
                passport_expiry=parse_date(form.get("new_passport_expiry"), field="new_passport_expiry",
                                           required=False),
            ))  # fmt: skip
        if op == "cancel":
            return service.cancel_permit(db, actor=user, permit_id=permit_id, reason=form.get("reason", ""))
        raise InvalidInput("Please choose an action.", field="op")

    ctx = _permit_context(db, user, permit_id)
    return attempt(
        request,
        db,
        action,
        template="permits/permit.html",
        on_success=lambda _p: redirect(f"/officer/permits/{permit_id}", notice=PERMIT_NOTICES[op]),
        **ctx,
    )


@router.get("/employer/permits/{permit_id}/letter.pdf")
@router.get("/officer/permits/{permit_id}/letter.pdf")
def letter(
    permit_id: int, version: int | None = None, download: bool = False,
    db: Session = Depends(get_db, scope="function"), user: StaffUser = Depends(reader),
) -> Response:  # fmt: skip
    found = service.get_letter(db, user, permit_id, version)
    permit = service.get_permit(db, user, permit_id)
    disposition = "attachment" if download else "inline"
    # The letter of an ended permit is still served, as a record; its file name says the permit ended.
    status = service.live_status(permit, clock.today())
    ended = f"-{status}" if _ended_on(permit, status) else ""
    return Response(found.pdf, media_type="application/pdf", headers={
        "Content-Disposition":
            f'{disposition}; filename="work-permit-{permit.number}-v{found.version}{ended}.pdf"',
        "Cache-Control": "private, no-store",
    })  # fmt: skip
