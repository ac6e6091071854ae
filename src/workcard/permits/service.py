"""Use cases of the Work System (SPEC W1–W5). Services are the only writers: they take the acting
person, load rows through ``access``, move states through ``states``, write the audit trail and
publish events. They never commit; the request, command or job owns the transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, defer

from workcard import audit, clock, events
from workcard.config import get_settings
from workcard.errors import Conflict, Forbidden, InvalidInput, NotFound
from workcard.iam.models import StaffUser
from workcard.iam.roles import Role
from workcard.iam.service import actor_of
from workcard.images import check_jpeg
from workcard.permits import access, rules
from workcard.permits.letter import LetterData, render_letter
from workcard.permits.models import Application, Employer, Foreigner, Letter, Permit, PermitSerial
from workcard.permits.states import (
    ApplicationEvent,
    ApplicationKind,
    ApplicationState,
    Category,
    PermitEvent,
    PermitState,
    next_application_state,
    next_permit_state,
)

OPEN_STATES = (ApplicationState.DRAFT.value, ApplicationState.SUBMITTED.value)


def _require(actor: StaffUser, *roles: Role) -> None:
    if actor.role not in {r.value for r in roles}:
        raise Forbidden("Your role may not do this.")


# --- views for the audit trail ---------------------------------------------------------------------


def permit_view(p: Permit) -> dict[str, Any]:
    return {
        "number": p.number,
        "status": p.status,
        "employer_id": p.employer_id,
        "category": p.category,
        "position": p.position,
        "work_location": p.work_location,
        "valid_from": p.valid_from,
        "valid_until": p.valid_until,
        "paper": p.paper,
    }


def application_view(a: Application) -> dict[str, Any]:
    return {
        "kind": a.kind,
        "state": a.state,
        "category": a.category,
        "position": a.position,
        "work_location": a.work_location,
        "valid_from": a.valid_from,
        "valid_until": a.valid_until,
        "new_employer_id": a.new_employer_id,
        "new_passport_number": a.new_passport_number,
        "reason": a.reason,
        "decision_reason": a.decision_reason,
    }


def foreigner_view(f: Foreigner) -> dict[str, Any]:
    return {
        "passport_name": f.passport_name,
        "chinese_name": f.chinese_name,
        "nationality": f.nationality,
        "passport_number": f.passport_number,
        "passport_expiry": f.passport_expiry,
        "date_of_birth": f.date_of_birth,
        "sex": f.sex,
        "employer_id": f.employer_id,
        "has_photo": f.photo is not None,
    }


# --- employers --------------------------------------------------------------------------------------


def create_employer(
    session: Session, *, actor: StaffUser, name: str, uscc: str, province: str, city: str, address: str
) -> Employer:
    _require(actor, Role.ADMIN, Role.PERMIT_OFFICER)
    code = rules.check_uscc(uscc)
    if province not in rules.PROVINCES:
        raise InvalidInput("Please choose a province.", field="province")
    employer = Employer(
        name=rules.check_text(name, field="name", label="Employer name"),
        uscc=code,
        province=province,
        city=rules.check_text(city, field="city", label="City", max_len=80),
        address=rules.check_text(address, field="address", label="Address", max_len=300),
        created_at=clock.now(),
    )
    if session.scalar(select(Employer.id).where(Employer.uscc == code)) is not None:
        raise Conflict(
            "An employer with this unified social credit code is already registered.", field="uscc"
        )
    session.add(employer)
    session.flush()
    audit.record(
        session, actor=actor_of(actor), action="employer.create", subject_type="employer",
        subject_id=employer.id, after={"name": employer.name, "uscc": code, "province": province},
    )  # fmt: skip
    return employer


def list_employers(session: Session, actor: StaffUser) -> list[Employer]:
    stmt = select(Employer).order_by(Employer.name)
    if not access.sees_all(actor):
        stmt = stmt.where(Employer.id == actor.employer_id)
    return list(session.scalars(stmt))


def employer_by_uscc(session: Session, uscc: str) -> Employer:
    code = rules.check_uscc(uscc)
    employer = session.scalar(select(Employer).where(Employer.uscc == code))
    if employer is None:
        raise InvalidInput("No employer is registered with this unified social credit code.", field="uscc")
    return employer


# --- foreign nationals -----------------------------------------------------------------------------


@dataclass
class PersonInput:
    passport_name: str
    nationality: str
    passport_number: str
    passport_expiry: dt.date
    date_of_birth: dt.date
    sex: str
    chinese_name: str | None = None
    photo: bytes | None = None


def register_foreigner(
    session: Session, *, actor: StaffUser, data: PersonInput, employer_id: int | None = None
) -> Foreigner:
    """Employer staff register their own foreign staff; officers may register for any employer."""
    _require(actor, Role.EMPLOYER_STAFF, Role.PERMIT_OFFICER, Role.ADMIN)
    if actor.role == Role.EMPLOYER_STAFF.value:
        employer_id = actor.employer_id
    if employer_id is None:
        raise InvalidInput("Please choose the employer.", field="employer_id")
    access.load_employer(session, actor, employer_id)
    today = clock.today()
    name = rules.check_passport_name(data.passport_name)
    nationality = rules.check_nationality(data.nationality)
    passport = rules.check_passport_number(data.passport_number)
    rules.check_passport_valid(data.passport_expiry, today)
    rules.check_birth_date(data.date_of_birth, today)
    if data.sex not in ("M", "F"):
        raise InvalidInput("Please choose the sex as in the passport.", field="sex")
    settings = get_settings()
    if data.photo is not None:
        check_jpeg(data.photo, max_bytes=settings.photo_max_bytes, max_pixels=settings.photo_max_pixels)
    existing = session.scalar(
        select(Foreigner.id).where(
            Foreigner.nationality == nationality, Foreigner.passport_number == passport
        )
    )
    if existing is not None:
        raise Conflict(
            "A person with this nationality and passport number is already registered.",
            field="passport_number",
        )
    data = PersonInput(
        passport_name=name, chinese_name=rules.check_chinese_name(data.chinese_name), nationality=nationality,
        passport_number=passport, passport_expiry=data.passport_expiry, date_of_birth=data.date_of_birth,
        sex=data.sex, photo=data.photo,
    )  # fmt: skip
    return add_foreigner(
        session, actor=actor, employer_id=employer_id, data=data, action="foreigner.register"
    )


def add_foreigner(
    session: Session, *, actor: StaffUser, employer_id: int, data: PersonInput, action: str
) -> Foreigner:
    """Store a person whose data the caller has validated (registration, or an import of paper permits)."""
    person = Foreigner(
        employer_id=employer_id,
        passport_name=data.passport_name,
        chinese_name=data.chinese_name,
        nationality=data.nationality,
        passport_number=data.passport_number,
        passport_expiry=data.passport_expiry,
        date_of_birth=data.date_of_birth,
        sex=data.sex,
        photo=data.photo,
        created_at=clock.now(),
    )
    session.add(person)
    session.flush()
    audit.record(
        session, actor=actor_of(actor), action=action, subject_type="foreigner", subject_id=person.id,
        after=foreigner_view(person),
    )  # fmt: skip
    return person


def list_foreigners(session: Session, actor: StaffUser, query: str = "") -> list[Foreigner]:
    stmt = access.scoped(actor, select(Foreigner), Foreigner).order_by(Foreigner.passport_name)
    if query:
        like = f"%{query.strip()}%"
        stmt = stmt.where(or_(Foreigner.passport_name.ilike(like), Foreigner.passport_number.ilike(like)))
    return list(session.scalars(stmt.limit(500)))


def get_foreigner(session: Session, actor: StaffUser, foreigner_id: int) -> Foreigner:
    person = access.load(session, actor, Foreigner, foreigner_id)
    audit.record(
        session,
        actor=actor_of(actor),
        action="foreigner.read",
        subject_type="foreigner",
        subject_id=person.id,
    )
    return person


# --- applications (SPEC W1) ------------------------------------------------------------------------


@dataclass
class ApplicationInput:
    category: str | None = None
    position: str | None = None
    work_location: str | None = None
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    new_employer_uscc: str | None = None
    new_passport_number: str | None = None
    new_passport_expiry: dt.date | None = None
    reason: str | None = None


def _apply_input(session: Session, app: Application, data: ApplicationInput) -> None:
    """Store what the employer typed; completeness is checked at submission."""
    kind = ApplicationKind(app.kind)
    if kind == ApplicationKind.NEW:
        if data.category:
            try:
                app.category = Category(data.category).value
            except ValueError:
                raise InvalidInput("The category must be A, B or C.", field="category") from None
        app.valid_from = data.valid_from
        app.valid_until = data.valid_until
    if kind == ApplicationKind.RENEWAL:
        app.valid_until = data.valid_until
    if kind in (ApplicationKind.NEW, ApplicationKind.MODIFICATION):
        app.position = (
            rules.check_text(data.position, field="position", label="Position", max_len=120)
            if data.position
            else None
        )
        app.work_location = (
            rules.check_text(data.work_location, field="work_location", label="Work location")
            if data.work_location
            else None
        )
    if kind == ApplicationKind.MODIFICATION:
        app.new_employer_id = (
            employer_by_uscc(session, data.new_employer_uscc).id if data.new_employer_uscc else None
        )
        app.new_passport_number = (
            rules.check_passport_number(data.new_passport_number) if data.new_passport_number else None
        )
        app.new_passport_expiry = data.new_passport_expiry
    if kind == ApplicationKind.CANCELLATION:
        app.reason = rules.check_text(data.reason, field="reason", label="Reason", max_len=500) \
            if data.reason else None  # fmt: skip
    if app.valid_from and app.valid_until:
        rules.check_validity(app.valid_from, app.valid_until)


def create_application(
    session: Session,
    *,
    actor: StaffUser,
    kind: ApplicationKind,
    data: ApplicationInput,
    foreigner_id: int | None = None,
    permit_id: int | None = None,
) -> Application:
    _require(actor, Role.EMPLOYER_STAFF)
    if kind == ApplicationKind.NEW:
        if foreigner_id is None:
            raise InvalidInput("Please choose the person.", field="foreigner_id")
        person = access.load(session, actor, Foreigner, foreigner_id)
        permit = None
    else:
        if permit_id is None:
            raise InvalidInput("Please choose the permit.", field="permit_id")
        permit = access.load(session, actor, Permit, permit_id)
        person = session.get(Foreigner, permit.foreigner_id)
        assert person is not None
        next_permit_state(PermitState(permit.status), _PERMIT_EVENT[kind])  # refuse early
    app = Application(
        kind=kind.value,
        state=ApplicationState.DRAFT.value,
        employer_id=actor.employer_id,
        foreigner_id=person.id,
        permit_id=permit.id if permit else None,
        created_by=actor.id,
        created_at=clock.now(),
    )
    _apply_input(session, app, data)
    session.add(app)
    session.flush()
    audit.record(
        session, actor=actor_of(actor), action="application.create", subject_type="application",
        subject_id=app.id, after=application_view(app),
    )  # fmt: skip
    return app


def update_application(
    session: Session, *, actor: StaffUser, application_id: int, data: ApplicationInput
) -> Application:
    _require(actor, Role.EMPLOYER_STAFF)
    app = access.load(session, actor, Application, application_id, for_update=True)
    before = application_view(app)
    next_application_state(ApplicationState(app.state), ApplicationEvent.EDIT)
    _apply_input(session, app, data)
    audit.record(
        session, actor=actor_of(actor), action="application.edit", subject_type="application",
        subject_id=app.id, before=before, after=application_view(app),
    )  # fmt: skip
    return app


def _check_complete(session: Session, app: Application) -> None:
    kind = ApplicationKind(app.kind)
    missing = []
    if kind == ApplicationKind.NEW:
        missing = [
            label
            for label, value in (
                ("Category", app.category),
                ("Position", app.position),
                ("Work location", app.work_location),
                ("Valid from", app.valid_from),
                ("Valid until", app.valid_until),
            )
            if not value
        ]
    elif kind == ApplicationKind.RENEWAL and not app.valid_until:
        missing = ["Valid until"]
    elif kind == ApplicationKind.CANCELLATION and not app.reason:
        missing = ["Reason"]
    elif kind == ApplicationKind.MODIFICATION:
        if not (app.position or app.work_location or app.new_employer_id or app.new_passport_number):
            raise InvalidInput("A modification must change at least one thing.")
        if bool(app.new_passport_number) != bool(app.new_passport_expiry):
            raise InvalidInput("A new passport needs both its number and its expiry date.",
                               field="new_passport_expiry")  # fmt: skip
    if missing:
        raise InvalidInput("Please fill in: {label}.", label=missing)
    today = clock.today()
    person = session.get(Foreigner, app.foreigner_id)
    assert person is not None
    if app.new_passport_expiry:
        rules.check_passport_valid(app.new_passport_expiry, today)
    else:
        rules.check_passport_valid(person.passport_expiry, today)
    if kind == ApplicationKind.NEW:
        assert app.valid_from and app.valid_until
        rules.check_validity(app.valid_from, app.valid_until)
        if app.valid_from < today:
            raise InvalidInput("The validity cannot start in the past.", field="valid_from")
        if current_permit(session, person.id) is not None:
            raise Conflict(
                "This person already holds a valid work permit; apply for a renewal or modification."
            )
    if kind == ApplicationKind.RENEWAL:
        permit = session.get(Permit, app.permit_id)
        assert permit is not None and app.valid_until
        if app.valid_until <= permit.valid_until:
            raise InvalidInput("A renewal must end after the current end date ({date}).", field="valid_until",
                               date=permit.valid_until.isoformat())  # fmt: skip
        rules.check_validity(permit.valid_from, app.valid_until)
    open_same = select(Application.id).where(
        Application.id != app.id, Application.state == ApplicationState.SUBMITTED.value
    )
    open_same = open_same.where(
        Application.permit_id == app.permit_id
        if app.permit_id
        else Application.foreigner_id == app.foreigner_id
    )
    if session.scalar(open_same.limit(1)) is not None:
        raise Conflict("Another application for this permit or person is already waiting for a decision.")


def submit_application(session: Session, *, actor: StaffUser, application_id: int) -> Application:
    _require(actor, Role.EMPLOYER_STAFF)
    app = access.load(session, actor, Application, application_id, for_update=True)
    before = application_view(app)
    new_state = next_application_state(ApplicationState(app.state), ApplicationEvent.SUBMIT)
    _check_complete(session, app)
    app.state = new_state.value
    app.submitted_at = clock.now()
    audit.record(
        session, actor=actor_of(actor), action="application.submit", subject_type="application",
        subject_id=app.id, before=before, after=application_view(app),
    )  # fmt: skip
    events.publish(session, "application.submitted", "application", app.id, kind=app.kind)
    return app


def withdraw_application(session: Session, *, actor: StaffUser, application_id: int) -> Application:
    _require(actor, Role.EMPLOYER_STAFF)
    app = access.load(session, actor, Application, application_id, for_update=True)
    before = application_view(app)
    app.state = next_application_state(ApplicationState(app.state), ApplicationEvent.WITHDRAW).value
    audit.record(
        session, actor=actor_of(actor), action="application.withdraw", subject_type="application",
        subject_id=app.id, before=before, after=application_view(app),
    )  # fmt: skip
    return app


def reject_application(
    session: Session, *, actor: StaffUser, application_id: int, reason: str
) -> Application:
    _require(actor, Role.PERMIT_OFFICER)
    app = access.load(session, actor, Application, application_id, for_update=True)
    before = application_view(app)
    new_state = next_application_state(ApplicationState(app.state), ApplicationEvent.REJECT)
    app.decision_reason = rules.check_text(reason, field="reason", label="Reason for rejection", max_len=500)
    app.state = new_state.value
    app.decided_by = actor.id
    app.decided_at = clock.now()
    audit.record(
        session, actor=actor_of(actor), action="application.reject", subject_type="application",
        subject_id=app.id, before=before, after=application_view(app),
    )  # fmt: skip
    events.publish(session, "application.rejected", "application", app.id)
    return app


def approve_application(session: Session, *, actor: StaffUser, application_id: int) -> Permit:
    """Approve a submitted application and carry it out: a new permit, or a renewal, modification or
    cancellation of the existing one. Approving twice is an illegal transition (409)."""
    _require(actor, Role.PERMIT_OFFICER)
    app = access.load(session, actor, Application, application_id, for_update=True)
    before = application_view(app)
    new_state = next_application_state(ApplicationState(app.state), ApplicationEvent.APPROVE)
    _check_complete(session, app)
    app.state = new_state.value
    app.decided_by = actor.id
    app.decided_at = clock.now()
    kind = ApplicationKind(app.kind)
    if kind == ApplicationKind.NEW:
        permit = _issue(session, actor=actor, app=app)
        app.permit_id = permit.id
    else:
        permit = access.load(session, actor, Permit, app.permit_id or 0, for_update=True)
        if kind == ApplicationKind.RENEWAL:
            assert app.valid_until
            renew_permit(session, actor=actor, permit_id=permit.id, valid_until=app.valid_until)
        elif kind == ApplicationKind.MODIFICATION:
            modify_permit(
                session, actor=actor, permit_id=permit.id,
                changes=PermitChanges(
                    position=app.position, work_location=app.work_location, employer_id=app.new_employer_id,
                    passport_number=app.new_passport_number, passport_expiry=app.new_passport_expiry,
                ),
            )  # fmt: skip
        else:
            cancel_permit(session, actor=actor, permit_id=permit.id, reason=app.reason or "")
    audit.record(
        session, actor=actor_of(actor), action="application.approve", subject_type="application",
        subject_id=app.id, before=before, after={**application_view(app), "permit": permit.number},
    )  # fmt: skip
    events.publish(session, "application.approved", "application", app.id, permit=permit.number)
    return permit


def list_applications(
    session: Session, actor: StaffUser, *, state: str | None = None, limit: int = 200
) -> list[Application]:
    stmt = access.scoped(actor, select(Application), Application)
    if state:
        stmt = stmt.where(Application.state == state)
    order = Application.submitted_at.asc() if state == ApplicationState.SUBMITTED else Application.id.desc()
    return list(session.scalars(stmt.order_by(order).limit(limit)))


def get_application(session: Session, actor: StaffUser, application_id: int) -> Application:
    return access.load(session, actor, Application, application_id)


# --- permits (SPEC W1, W3, W4) ---------------------------------------------------------------------

_PERMIT_EVENT = {
    ApplicationKind.RENEWAL: PermitEvent.RENEW,
    ApplicationKind.MODIFICATION: PermitEvent.MODIFY,
    ApplicationKind.CANCELLATION: PermitEvent.CANCEL,
}


def _next_serial(session: Session, province: str, year: int) -> int:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(PermitSerial)
        .values(province=province, year=year, last=1)
        .on_conflict_do_update(
            index_elements=[PermitSerial.province, PermitSerial.year], set_={"last": PermitSerial.last + 1}
        )
        .returning(PermitSerial.last)
    )
    return int(session.execute(stmt).scalar_one())


def current_permit(session: Session, foreigner_id: int) -> Permit | None:
    return session.scalar(
        select(Permit).where(Permit.foreigner_id == foreigner_id, Permit.status == PermitState.VALID.value)
    )


def _issue(session: Session, *, actor: StaffUser, app: Application) -> Permit:
    employer = session.get(Employer, app.employer_id)
    assert employer is not None and app.category and app.position and app.work_location
    assert app.valid_from and app.valid_until
    now = clock.now()
    permit = Permit(
        number=rules.make_permit_number(
            employer.province, now.year, _next_serial(session, employer.province, now.year)
        ),
        foreigner_id=app.foreigner_id,
        employer_id=employer.id,
        category=app.category,
        position=app.position,
        work_location=app.work_location,
        valid_from=app.valid_from,
        valid_until=app.valid_until,
        status=PermitState.VALID.value,
        issued_at=now,
    )
    session.add(permit)
    session.flush()
    audit.record(
        session, actor=actor_of(actor), action="permit.issue", subject_type="permit", subject_id=permit.id,
        after=permit_view(permit),
    )  # fmt: skip
    issue_letter(session, permit)
    events.publish(session, "permit.issued", "permit", permit.id, number=permit.number)
    return permit


def renew_permit(session: Session, *, actor: StaffUser, permit_id: int, valid_until: dt.date) -> Permit:
    _require(actor, Role.PERMIT_OFFICER)
    permit = access.load(session, actor, Permit, permit_id, for_update=True)
    before = permit_view(permit)
    permit.status = next_permit_state(
        PermitState(permit.status), PermitEvent.RENEW
    ).value  # VALID stays VALID
    if valid_until <= permit.valid_until:
        raise InvalidInput("A renewal must end after the current end date ({date}).", field="valid_until",
                           date=permit.valid_until.isoformat())  # fmt: skip
    rules.check_validity(permit.valid_from, valid_until)
    permit.valid_until = valid_until
    return _changed(session, actor, permit, before, "renew")


@dataclass
class PermitChanges:
    position: str | None = None
    work_location: str | None = None
    employer_id: int | None = None
    passport_number: str | None = None
    passport_expiry: dt.date | None = None


def modify_permit(session: Session, *, actor: StaffUser, permit_id: int, changes: PermitChanges) -> Permit:
    _require(actor, Role.PERMIT_OFFICER)
    permit = access.load(session, actor, Permit, permit_id, for_update=True)
    before = permit_view(permit)
    permit.status = next_permit_state(PermitState(permit.status), PermitEvent.MODIFY).value
    if changes.position:
        permit.position = rules.check_text(changes.position, field="position", label="Position", max_len=120)
    if changes.work_location:
        permit.work_location = rules.check_text(
            changes.work_location, field="work_location", label="Work location"
        )
    person = session.get(Foreigner, permit.foreigner_id)
    assert person is not None
    if changes.employer_id and changes.employer_id != permit.employer_id:
        if session.get(Employer, changes.employer_id) is None:
            raise InvalidInput("No such employer.", field="employer_id")
        permit.employer_id = changes.employer_id
        person.employer_id = changes.employer_id
    if changes.passport_number:
        if not changes.passport_expiry:
            raise InvalidInput("A new passport needs both its number and its expiry date.",
                               field="new_passport_expiry")  # fmt: skip
        rules.check_passport_valid(changes.passport_expiry, clock.today())
        person_before = foreigner_view(person)
        person.passport_number = rules.check_passport_number(changes.passport_number)
        person.passport_expiry = changes.passport_expiry
        audit.record(
            session, actor=actor_of(actor), action="foreigner.passport_change", subject_type="foreigner",
            subject_id=person.id, before=person_before, after=foreigner_view(person),
        )  # fmt: skip
    return _changed(session, actor, permit, before, "modify")


def cancel_permit(session: Session, *, actor: StaffUser, permit_id: int, reason: str) -> Permit:
    _require(actor, Role.PERMIT_OFFICER)
    permit = access.load(session, actor, Permit, permit_id, for_update=True)
    before = permit_view(permit)
    new_state = next_permit_state(PermitState(permit.status), PermitEvent.CANCEL)
    permit.cancel_reason = rules.check_text(reason, field="reason", label="Reason", max_len=500)
    permit.status = new_state.value
    permit.cancelled_at = clock.now()
    permit.version += 1
    audit.record(
        session, actor=actor_of(actor), action="permit.cancel", subject_type="permit", subject_id=permit.id,
        before=before, after=permit_view(permit),
    )  # fmt: skip
    events.publish(session, "permit.cancelled", "permit", permit.id, number=permit.number)
    return permit


def _changed(session: Session, actor: StaffUser, permit: Permit, before: dict[str, Any], verb: str) -> Permit:
    """A renewal or modification: a paper permit moves to the new process (SPEC W3) and every change
    gets a new version of the notification letter (SPEC W2)."""
    permit.paper = False
    permit.version += 1
    audit.record(
        session, actor=actor_of(actor), action=f"permit.{verb}", subject_type="permit", subject_id=permit.id,
        before=before, after=permit_view(permit),
    )  # fmt: skip
    issue_letter(session, permit)
    events.publish(session, f"permit.{verb}ed" if verb == "renew" else "permit.modified", "permit", permit.id,
                   number=permit.number)  # fmt: skip
    return permit


def list_permits(
    session: Session, actor: StaffUser, *, query: str = "", status: str | None = None, limit: int = 200
) -> list[Permit]:
    stmt = access.scoped(actor, select(Permit), Permit)
    if status:
        stmt = stmt.where(Permit.status == status)
    if query:
        q = query.strip()
        person_ids = select(Foreigner.id).where(
            or_(Foreigner.passport_name.ilike(f"%{q}%"), Foreigner.passport_number == q.upper())
        )
        stmt = stmt.where(
            or_(Permit.number == rules.clean_permit_number(q), Permit.foreigner_id.in_(person_ids))
        )
    return list(session.scalars(stmt.order_by(Permit.valid_until).limit(limit)))


def get_permit(session: Session, actor: StaffUser, permit_id: int) -> Permit:
    permit = access.load(session, actor, Permit, permit_id)
    audit.record(
        session, actor=actor_of(actor), action="permit.read", subject_type="permit", subject_id=permit.id
    )
    return permit


HISTORY_ACTIONS = {
    "permit.issue": "Permit issued",
    "permit.import_paper": "Paper permit imported",
    "permit.renew": "Permit renewed",
    "permit.modify": "Permit modified",
    "permit.cancel": "Permit cancelled",
    "permit.expire": "Permit expired",
    "letter.issue": "Notification letter issued",
}


def permit_history(session: Session, permit: Permit) -> list[audit.AuditRecord]:
    """The permit's changes (not its reads), oldest first; ``HISTORY_ACTIONS`` names them."""
    return list(
        session.scalars(
            select(audit.AuditRecord)
            .where(audit.AuditRecord.subject_type == "permit", audit.AuditRecord.subject_id == str(permit.id),
                   audit.AuditRecord.action.in_(HISTORY_ACTIONS))
            .order_by(audit.AuditRecord.id)
        )
    )  # fmt: skip


# --- the notification letter (SPEC W2) -------------------------------------------------------------


def letter_data(session: Session, permit: Permit, version: int) -> LetterData:
    person = session.get(Foreigner, permit.foreigner_id)
    employer = session.get(Employer, permit.employer_id)
    assert person is not None and employer is not None
    nat_en, nat_zh = rules.nationality_names(person.nationality)
    return LetterData(
        permit_number=permit.number,
        holder_name=person.passport_name,
        chinese_name=person.chinese_name,
        nationality_code=person.nationality,
        nationality_en=nat_en,
        nationality_zh=nat_zh,
        sex=person.sex,
        date_of_birth=person.date_of_birth,
        passport_number=person.passport_number,
        employer_name=employer.name,
        employer_uscc=employer.uscc,
        position=permit.position,
        work_location=permit.work_location,
        category=permit.category,
        valid_from=permit.valid_from,
        valid_until=permit.valid_until,
        issued_on=clock.today(),
        letter_version=version,
        qr_text=_letter_code(session, permit),
        qr_caption=permit.number,
    )


def _letter_code(session: Session, permit: Permit) -> str:
    """The letter's QR code: a signed permit code that verifiers check offline or online
    (``workcard.credentials``, SPEC P1). Imported here, not at the top, because that domain reads
    permits through this module."""
    from workcard.credentials import service as credentials

    return credentials.letter_code(session, permit)


def issue_letter(session: Session, permit: Permit) -> Letter:
    version = (session.scalar(select(func.max(Letter.version)).where(Letter.permit_id == permit.id)) or 0) + 1
    pdf = render_letter(letter_data(session, permit, version))
    letter = Letter(
        permit_id=permit.id,
        version=version,
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
        created_at=clock.now(),
    )
    session.add(letter)
    session.flush()
    audit.record(
        session, actor="system", action="letter.issue", subject_type="permit", subject_id=permit.id,
        after={"version": version, "sha256": letter.sha256},
    )  # fmt: skip
    return letter


def list_letters(session: Session, actor: StaffUser, permit_id: int) -> list[Letter]:
    permit = access.load(session, actor, Permit, permit_id)
    stmt = select(Letter).where(Letter.permit_id == permit.id).order_by(Letter.version.desc())
    return list(session.scalars(stmt.options(defer(Letter.pdf))))


def get_letter(session: Session, actor: StaffUser, permit_id: int, version: int | None = None) -> Letter:
    permit = access.load(session, actor, Permit, permit_id)
    stmt = select(Letter).where(Letter.permit_id == permit.id)
    stmt = stmt.where(Letter.version == version) if version else stmt.order_by(Letter.version.desc())
    letter = session.scalar(stmt.limit(1))
    if letter is None:
        raise NotFound(
            "This permit has no notification letter (paper permits get one on their first change)."
        )
    audit.record(
        session, actor=actor_of(actor), action="letter.read", subject_type="permit", subject_id=permit.id,
        after={"version": letter.version},
    )  # fmt: skip
    return letter


# --- verification (SPEC W5) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    result: str  # valid, not_yet_valid, expired, cancelled, not_found
    permit: Permit | None = None
    holder: Foreigner | None = None
    employer: Employer | None = None


def live_status(permit: Permit, today: dt.date) -> str:
    """The status as of today, even before the expiry job has run."""
    if permit.status == PermitState.VALID.value:
        if permit.valid_until < today:
            return PermitState.EXPIRED.value
        if permit.valid_from > today:
            return "not_yet_valid"
    return permit.status


PermitRows = dict[str, tuple[Permit, Foreigner, Employer]]
# Built once: partner verification reads these for every group of calls (see ``workcard.groupcommit``).
_NUMBERS = bindparam("numbers", expanding=True)
_PERMITS_BY_NUMBER = (
    select(Permit, Foreigner)
    .join(Foreigner, Foreigner.id == Permit.foreigner_id)
    .where(Permit.number.in_(_NUMBERS))
)
_PERMITS_FOR_VERIFICATION = (
    select(Permit, Foreigner, Employer)
    .join(Foreigner, Foreigner.id == Permit.foreigner_id)
    .join(Employer, Employer.id == Permit.employer_id)
    .where(Permit.number.in_(_NUMBERS))
)


def clean_numbers(numbers: Iterable[str]) -> list[str]:
    """Permit numbers as typed, cleaned and without repeats: what a group of verifications reads."""
    return list({rules.clean_permit_number(n) for n in numbers})


def permits_for_verification(session: Session, numbers: Iterable[str]) -> PermitRows:
    """The permits with these numbers (as typed: cleaned first), with holder and employer, in one read:
    what ``verify_permit`` needs for a group of calls."""
    rows = session.execute(_PERMITS_FOR_VERIFICATION, {"numbers": clean_numbers(numbers)}).all()
    return {row[0].number: (row[0], row[1], row[2]) for row in rows}


# The same read on the driver (PostgreSQL; ``web.partner``). Its flat rows carry every attribute that
# ``verify_permit`` and the partner route read of the permit, its holder and its employer (``name``), so
# one row stands for all three (``permit_rows``).
PG_PERMITS_FOR_VERIFICATION = (
    "SELECT p.id, p.number, p.status, p.valid_from, p.valid_until, f.passport_name, f.passport_number, "
    "f.nationality, f.date_of_birth, f.sex, e.name FROM permit p JOIN foreigner f ON f.id = p.foreigner_id "
    "JOIN employer e ON e.id = p.employer_id WHERE p.number = ANY(%(numbers)s::text[])"
)


def permit_rows(rows: Iterable[Any]) -> PermitRows:
    """``PermitRows`` of the rows of ``PG_PERMITS_FOR_VERIFICATION``."""
    return {row.number: (row, row, row) for row in rows}


def verify_permit(
    session: Session | audit.Records,
    *,
    actor: str,
    number: str,
    holder_name: str,
    passport_number: str | None = None,
    found: PermitRows | None = None,
) -> Verification:
    """Match a permit number with the holder's name (and passport number). A wrong name and an unknown
    number give the same answer, so numbers cannot be probed for names. ``found``: the permits read
    beforehand with ``permits_for_verification`` (for a group of calls), else read now."""
    clean = rules.clean_permit_number(number)
    name = unicodedata.normalize("NFC", holder_name or "")
    row = (found if found is not None else permits_for_verification(session, [clean])).get(clean)
    match = (
        row is not None
        and hmac.compare_digest(row[1].passport_name.encode(), name.encode())
        and (not passport_number or rules.clean_permit_number(passport_number) == row[1].passport_number)
    )
    if not match:
        outcome = Verification(result="not_found")
    else:
        assert row is not None
        outcome = Verification(result=live_status(row[0], clock.today()), permit=row[0], holder=row[1],
                               employer=row[2])  # fmt: skip
    audit.record(
        session, actor=actor, action="permit.verify", subject_type="permit",
        subject_id=outcome.permit.id if outcome.permit else clean[:64] or "-", after={"result": outcome.result},
    )  # fmt: skip
    return outcome


# --- for other domains (the signed permit QR codes of ``workcard.credentials``) -----------------------


def find_permits(session: Session, numbers: Iterable[str]) -> dict[str, tuple[Permit, Foreigner]]:
    """The permits with these exact numbers and their holders, in one read (a number not found is
    absent). No access check and no audit record: the calling domain decides who may see what and
    records it."""
    rows = session.execute(_PERMITS_BY_NUMBER, {"numbers": list(set(numbers))}).all()
    return {row[0].number: (row[0], row[1]) for row in rows}


def find_permit(session: Session, number: str) -> tuple[Permit, Foreigner] | None:
    """The permit with this exact number and its holder, or None (see ``find_permits``)."""
    return find_permits(session, [number]).get(number)


def ended_permit_numbers(session: Session, *, ended_since: dt.date) -> list[str]:
    """Numbers of the permits that are cancelled or expired (by status, or by date before the expiry job
    ran) and whose validity ends on or after ``ended_since``."""
    today = clock.today()
    stmt = select(Permit.number).where(
        Permit.valid_until >= ended_since,
        or_(
            Permit.status.in_((PermitState.CANCELLED.value, PermitState.EXPIRED.value)),
            (Permit.status == PermitState.VALID.value) & (Permit.valid_until < today),
        ),
    )
    return list(session.scalars(stmt))


def latest_validity_end(session: Session) -> dt.date | None:
    """The latest end date of any permit (bounds how long a signed letter code can live)."""
    return session.scalar(select(func.max(Permit.valid_until)))


def person(session: Session, foreigner_id: int) -> Foreigner:
    """A person by id, for another domain that holds a right to them (the e-card account of that person)."""
    found = session.get(Foreigner, foreigner_id)
    if found is None:
        raise NotFound("No such person.")
    return found


def holder_photo(session: Session, foreigner_id: int) -> bytes | None:
    """A person's photo for another domain that decided the reader may see it (and records the read)."""
    return session.scalar(select(Foreigner.photo).where(Foreigner.id == foreigner_id))


def numbers_of(session: Session, permit_ids: Iterable[int]) -> dict[int, str]:
    """The public numbers of these permits, by id (for another domain's lists)."""
    ids = {i for i in permit_ids if i is not None}
    return dict(session.execute(select(Permit.id, Permit.number).where(Permit.id.in_(ids))).tuples().all())
