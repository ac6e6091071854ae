"""Demo data: one of each role and permits in every state. Running it again changes nothing, except
that the demo partner system gets a fresh secret (secrets are shown once, so it is printed anew)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from workcard import clock
from workcard.banks import service as banks
from workcard.credentials import keys
from workcard.iam import service as iam
from workcard.iam.models import PartnerClient, StaffUser
from workcard.iam.roles import Role, Scope
from workcard.permits import jobs, service
from workcard.permits.models import Employer
from workcard.permits.states import ApplicationKind

PASSWORD = "workcard-demo-1"  # noqa: S105 - the documented demo password
SYSTEM = "system:demo"
PHOTO = Path(__file__).resolve().parent / "web" / "static" / "demo-photo.jpg"

PEOPLE = [
    # name, nationality, passport, born, sex, permit starts (days from today), length (days), then
    ("Jane Elizabeth Doe", "GBR", "P1234567", dt.date(1988, 4, 12), "F", -200, 730, "valid"),
    ("José Müller-Ødegård", "ESP", "PAB998877", dt.date(1979, 11, 3), "M", -340, 360, "expiring"),
    ("Nguyễn Thị Minh Khai", "VNM", "C4455667", dt.date(1992, 2, 29), "F", -800, 700, "expired"),
    ("Jean-Luc O'Connor", "FRA", "19AB12345", dt.date(1985, 7, 1), "M", -100, 730, "cancelled"),
    ("Aleksandr Ivanovich Petrov·Smith", "RUS", "751234567", dt.date(1990, 9, 9), "M", None, None, "draft"),
]
# The first person's bank card, in the demo bank's account records: with it a tester completes an e-card
# registration whose facial recognition is closed (the demo photo has no face to compare with).
BANK_CARD = ("Bank of Tianjin (demo)", "6222021234567894", "13912345678")
CANCELLED_AFTER_DAYS = 60  # the cancelled permit was cancelled this long after it began


def _china(day: dt.date, time: dt.time) -> dt.datetime:
    """A moment of the demo's past, given in China's time."""
    return dt.datetime.combine(day, time, tzinfo=clock.CHINA).astimezone(dt.UTC)


def _staff(session: Session, username: str) -> StaffUser | None:
    return session.scalar(select(StaffUser).where(StaffUser.username == username))


def _ensure_staff(session: Session, username: str, name: str, role: Role, **kw: object) -> StaffUser:
    user = _staff(session, username)
    if user is None:
        user = iam.create_staff(session, actor=SYSTEM, username=username, display_name=name, password=PASSWORD,
                                role=role, **kw)  # type: ignore[arg-type]  # fmt: skip
    return user


def _ensure_employer(session: Session, officer: StaffUser, name: str, uscc: str, city: str) -> Employer:
    employer = session.scalar(select(Employer).where(Employer.uscc == uscc))
    if employer is None:
        employer = service.create_employer(session, actor=officer, name=name, uscc=uscc, province="12", city=city,
                                           address="No. 1 Demo Road, Binhai New Area")  # fmt: skip
    return employer


def _person_with_permit(session: Session, staff: StaffUser, officer: StaffUser, spec: tuple) -> None:  # type: ignore[type-arg]
    name, nat, passport, born, sex, start_days, length, state = spec
    if service.list_foreigners(session, staff, passport):
        return
    today = clock.today()
    photo = PHOTO.read_bytes() if PHOTO.exists() else None
    person = service.register_foreigner(session, actor=staff, data=service.PersonInput(
        passport_name=name, nationality=nat, passport_number=passport, passport_expiry=today + dt.timedelta(days=2000),
        date_of_birth=born, sex=sex, photo=photo))  # fmt: skip
    data = service.ApplicationInput(category="B", position="Software engineer", work_location="Tianjin")
    if state == "draft":
        service.create_application(
            session, actor=staff, kind=ApplicationKind.NEW, data=data, foreigner_id=person.id
        )
        return
    start = today + dt.timedelta(days=start_days)
    data.valid_from, data.valid_until = start, start + dt.timedelta(days=length)
    # What happened in the past happens at its time, so the same rules apply as today and the permit's
    # history, letters and verdicts tell one consistent story.
    with clock.frozen(_china(start, dt.time(10, 0))):
        app = service.create_application(session, actor=staff, kind=ApplicationKind.NEW, data=data,
                                         foreigner_id=person.id)  # fmt: skip
        service.submit_application(session, actor=staff, application_id=app.id)
        permit = service.approve_application(session, actor=officer, application_id=app.id)
    if state == "cancelled":
        with clock.frozen(_china(start + dt.timedelta(days=CANCELLED_AFTER_DAYS), dt.time(15, 0))):
            service.cancel_permit(
                session, actor=officer, permit_id=permit.id, reason="Employment ended (demo)"
            )
    elif state == "expired":  # the daily expiry job, run just after midnight after the last valid day
        with clock.frozen(_china(permit.valid_until + dt.timedelta(days=1), dt.time(0, 30))):
            while jobs.expire_due(session):
                pass


def load_demo(session: Session) -> list[str]:
    # Plain names, the same in both languages; the pages name roles, translated, where they matter.
    _ensure_staff(session, "admin", "Zhou Min", Role.ADMIN)
    officer = _ensure_staff(session, "officer", "Wang Fang", Role.PERMIT_OFFICER)
    employer = _ensure_employer(session, officer, "Tianjin Harbour Technology Co., Ltd.", "91120116MA05JX3X33",
                                "Tianjin")  # fmt: skip
    other = _ensure_employer(session, officer, "Binhai Precision Instruments Co., Ltd.", "91120116MA06ABCD12",
                             "Tianjin")  # fmt: skip
    staff = _ensure_staff(
        session, "hr", "Li Na", Role.EMPLOYER_STAFF, employer_id=employer.id, designated=True
    )
    _ensure_staff(session, "hr2", "Zhao Lei", Role.EMPLOYER_STAFF, employer_id=other.id)
    _ensure_staff(session, "police", "Chen Gang", Role.POLICE_VERIFIER)
    # The demo's permits are issued in the past (see _person_with_permit); the signing key of their
    # letters' QR codes must already have existed then.
    earliest = clock.today() + dt.timedelta(days=min(p[5] for p in PEOPLE if p[5] is not None) - 1)
    with clock.frozen(dt.datetime.combine(earliest, dt.time(0, 0), tzinfo=dt.UTC)):
        keys.ensure_signing_key(session, actor=SYSTEM)
    for spec in PEOPLE:
        _person_with_permit(session, staff, officer, spec)
    while jobs.expire_due(session):  # on a later run, what has come due since
        pass
    from workcard.permits import legacy

    legacy.import_csv(session, actor=officer, data=legacy.DEMO_CSV.encode())
    partner = session.scalar(select(PartnerClient).where(PartnerClient.name == "Tianjin Exit-Entry (demo)"))
    if partner is None:
        issued = iam.create_partner(session, actor=SYSTEM, name="Tianjin Exit-Entry (demo)",
                                    scopes=[Scope.PERMITS_VERIFY.value])  # fmt: skip
    else:
        issued = iam.rotate_partner(session, actor=SYSTEM, client_id=partner.client_id)
    holder = service.list_foreigners(session, staff, PEOPLE[0][2])[0]
    permit = service.current_permit(session, holder.id)
    bank, card, phone = BANK_CARD
    if banks.find_card(session, card) is None:
        banks.open_account(session, bank=bank, card_number=card, holder_name=holder.passport_name,
                           passport_number=holder.passport_number, phone=phone)  # fmt: skip
    return [
        f"administrator      admin    / {PASSWORD}",
        f"permit officer     officer  / {PASSWORD}",
        f"employer staff     hr       / {PASSWORD}   (Tianjin Harbour Technology)",
        f"employer staff     hr2      / {PASSWORD}   (Binhai Precision Instruments)",
        f"police verifier    police   / {PASSWORD}",
        f"partner system     {issued.client.client_id} / {issued.secret}   (HTTP Basic, scope permits:verify)",
        f"foreigner (e-card) register at /ecard as “{holder.passport_name}”, permit {permit.number if permit else '-'};",
        f"                   the demo photo has no face, so the bank card finishes it: {card}, phone {phone},",
        f"                   passport {holder.passport_number}; read the text message with `workcard sms`",
    ]
