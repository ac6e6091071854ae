"""The Work System's use cases through the services (SPEC W1–W4, X2–X5)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image, ImageFile
from sqlalchemy import func, select

from tests.conftest import person_input
from workcard import audit, clock, events
from workcard.errors import Conflict, Forbidden, IllegalTransition, InvalidInput, NotFound
from workcard.permits import jobs, rules, service
from workcard.permits.models import Application, Foreigner, Letter, Permit
from workcard.permits.states import ApplicationKind


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def _new_application(db, world, holder, **data):
    values = {"category": "A", "position": "Engineer", "work_location": "Tianjin",
              "valid_from": clock.today(), "valid_until": clock.today() + dt.timedelta(days=365)}  # fmt: skip
    values.update(data)
    return service.create_application(db, actor=world.staff, kind=ApplicationKind.NEW, foreigner_id=holder.id,
                                      data=service.ApplicationInput(**values))  # fmt: skip


def test_new_permit_flow(db, world, make_foreigner):  # SPEC W1, W2
    holder = make_foreigner(world.staff, passport_name="José Müller-Ødegård")
    app = _new_application(db, world, holder)
    assert app.state == "draft"
    service.submit_application(db, actor=world.staff, application_id=app.id)
    permit = service.approve_application(db, actor=world.officer, application_id=app.id)
    assert permit.status == "valid" and rules.is_valid_permit_number(permit.number)
    assert permit.number.startswith("12")  # the employer's province
    assert app.state == "approved" and app.permit_id == permit.id
    letters = db.scalars(select(Letter).where(Letter.permit_id == permit.id)).all()
    assert [letter.version for letter in letters] == [1]
    assert letters[0].pdf.startswith(b"%PDF")
    actions = db.scalars(select(audit.AuditRecord.action).order_by(audit.AuditRecord.id)).all()
    assert {
        "application.create",
        "application.submit",
        "permit.issue",
        "letter.issue",
        "application.approve",
    } <= set(actions)


def test_rejection_needs_a_reason(db, world, make_foreigner):  # SPEC W1, X2
    app = _new_application(db, world, make_foreigner(world.staff))
    service.submit_application(db, actor=world.staff, application_id=app.id)
    with pytest.raises(InvalidInput, match="Please fill in"):
        service.reject_application(db, actor=world.officer, application_id=app.id, reason="  ")
    service.reject_application(db, actor=world.officer, application_id=app.id, reason="Missing diploma")
    assert app.state == "rejected" and app.decision_reason == "Missing diploma"


def test_approving_twice_is_refused(db, world, make_foreigner):  # SPEC X2, X3
    app = _new_application(db, world, make_foreigner(world.staff))
    service.submit_application(db, actor=world.staff, application_id=app.id)
    service.approve_application(db, actor=world.officer, application_id=app.id)
    permits_before = _count(db, Permit)
    with pytest.raises(IllegalTransition) as info:
        service.approve_application(db, actor=world.officer, application_id=app.id)
    assert info.value.status == 409
    assert _count(db, Permit) == permits_before


def test_cancelling_a_cancelled_permit_is_refused(db, world, make_permit):  # SPEC W4, X2
    permit = make_permit()
    service.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="Left the company")
    with pytest.raises(IllegalTransition):
        service.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="again")
    assert permit.cancel_reason == "Left the company"


def test_other_employer_sees_404_like_missing(db, world, make_foreigner):  # SPEC X4
    app = _new_application(db, world, make_foreigner(world.staff))
    with pytest.raises(NotFound) as theirs:
        service.get_application(db, world.other_staff, app.id)
    with pytest.raises(NotFound) as missing:
        service.get_application(db, world.other_staff, 999_999)
    assert str(theirs.value) == str(missing.value)
    assert service.list_applications(db, world.other_staff) == []


def test_employer_cannot_approve(db, world, make_foreigner):  # SPEC X4
    app = _new_application(db, world, make_foreigner(world.staff))
    service.submit_application(db, actor=world.staff, application_id=app.id)
    with pytest.raises(Forbidden):
        service.approve_application(db, actor=world.staff, application_id=app.id)


def test_validity_end_before_start_refused_and_nothing_changes(db, world, make_foreigner):  # SPEC X2
    holder = make_foreigner(world.staff)
    before = _count(db, Application)
    with pytest.raises(InvalidInput, match="end after it starts"):
        _new_application(db, world, holder, valid_until=clock.today() - dt.timedelta(days=1))
    db.rollback()
    assert _count(db, Application) == before


def test_expired_passport_refused(db, world):  # SPEC X2
    with pytest.raises(InvalidInput, match="expired"):
        service.register_foreigner(db, actor=world.staff, data=person_input(passport_expiry=clock.today()))


def test_unknown_nationality_and_bidi_name_refused(db, world):  # SPEC X2
    with pytest.raises(InvalidInput, match="alpha-3"):
        service.register_foreigner(db, actor=world.staff, data=person_input(nationality="XXX"))
    with pytest.raises(InvalidInput, match="invisible"):
        service.register_foreigner(db, actor=world.staff, data=person_input(passport_name="Jane\u202eDoe"))


def test_same_passport_twice_refused(db, world, make_foreigner):  # SPEC X3
    make_foreigner(world.staff, passport_number="E1234567")
    with pytest.raises(Conflict):
        make_foreigner(world.other_staff, passport_number="E1234567")


def _jpeg(size=(358, 441), quality=85) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "white").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_photo_checks(db, world):  # SPEC X2
    png = io.BytesIO()
    Image.new("RGB", (50, 50)).save(png, "PNG")
    with pytest.raises(InvalidInput, match="JPEG"):
        service.register_foreigner(db, actor=world.staff, data=person_input(photo=png.getvalue()))
    with pytest.raises(InvalidInput, match="limit"):
        service.register_foreigner(
            db, actor=world.staff, data=person_input(photo=b"\xff\xd8\xff" + b"0" * 3_000_000)
        )
    with pytest.raises(InvalidInput, match="damaged"):
        service.register_foreigner(db, actor=world.staff, data=person_input(photo=b"\xff\xd8\xff\xe0garbage"))
    person = service.register_foreigner(db, actor=world.staff, data=person_input(photo=_jpeg()))
    assert person.photo is not None


def test_decompression_bomb_refused_before_decoding(db, world, monkeypatch):  # SPEC X2
    # A small JPEG whose frame header declares 10000 x 10000 pixels: refused from its header.
    small = bytearray(_jpeg(size=(16, 16)))
    sof = small.index(b"\xff\xc0")
    small[sof + 5 : sof + 9] = (10000).to_bytes(2, "big") * 2
    bomb = bytes(small)
    assert Image.open(io.BytesIO(bomb)).size == (10000, 10000)
    loaded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loaded.append(1))
    with pytest.raises(InvalidInput, match="pixels"):
        service.register_foreigner(db, actor=world.staff, data=person_input(photo=bomb))
    assert loaded == []


def test_renewal_application_makes_a_new_letter_version(db, world, make_permit):  # SPEC W1, W2
    permit = make_permit(days=200)
    new_end = permit.valid_until + dt.timedelta(days=365)
    app = service.create_application(db, actor=world.staff, kind=ApplicationKind.RENEWAL, permit_id=permit.id,
                                     data=service.ApplicationInput(valid_until=new_end))  # fmt: skip
    service.submit_application(db, actor=world.staff, application_id=app.id)
    service.approve_application(db, actor=world.officer, application_id=app.id)
    assert permit.valid_until == new_end
    versions = db.scalars(
        select(Letter.version).where(Letter.permit_id == permit.id).order_by(Letter.version)
    ).all()
    assert versions == [1, 2]
    assert service.get_letter(db, world.staff, permit.id, 1).version == 1  # the old one is kept


def test_renewal_must_extend(db, world, make_permit):  # SPEC X2
    permit = make_permit(days=200)
    with pytest.raises(InvalidInput, match="after the current end date"):
        service.renew_permit(db, actor=world.officer, permit_id=permit.id, valid_until=permit.valid_until)


def test_modification_changes_employer_and_passport(db, world, make_permit):  # SPEC W1
    permit = make_permit()
    app = service.create_application(
        db, actor=world.staff, kind=ApplicationKind.MODIFICATION, permit_id=permit.id,
        data=service.ApplicationInput(new_employer_uscc=world.other_employer.uscc, position="Lead engineer",
                                      new_passport_number="N7654321",
                                      new_passport_expiry=clock.today() + dt.timedelta(days=3000)),
    )  # fmt: skip
    service.submit_application(db, actor=world.staff, application_id=app.id)
    service.approve_application(db, actor=world.officer, application_id=app.id)
    holder = db.get(Foreigner, permit.foreigner_id)
    assert permit.employer_id == world.other_employer.id and permit.position == "Lead engineer"
    assert holder.passport_number == "N7654321" and holder.employer_id == world.other_employer.id
    # The old employer no longer sees the permit; the new one does (SPEC X4).
    with pytest.raises(NotFound):
        service.get_permit(db, world.staff, permit.id)
    assert service.get_permit(db, world.other_staff, permit.id).id == permit.id


def test_cancellation_application(db, world, make_permit):  # SPEC W1, W4
    permit = make_permit()
    app = service.create_application(db, actor=world.staff, kind=ApplicationKind.CANCELLATION, permit_id=permit.id,
                                     data=service.ApplicationInput(reason="Contract ended"))  # fmt: skip
    service.submit_application(db, actor=world.staff, application_id=app.id)
    service.approve_application(db, actor=world.officer, application_id=app.id)
    assert permit.status == "cancelled"
    with pytest.raises(IllegalTransition):
        service.create_application(db, actor=world.staff, kind=ApplicationKind.RENEWAL, permit_id=permit.id,
                                   data=service.ApplicationInput())  # fmt: skip


def test_second_new_permit_while_one_is_valid_refused(db, world, make_permit):  # SPEC X3
    permit = make_permit()
    holder = db.get(Foreigner, permit.foreigner_id)
    app = _new_application(db, world, holder)
    with pytest.raises(Conflict, match="already holds"):
        service.submit_application(db, actor=world.staff, application_id=app.id)


def test_events_published_after_commit(db, world, make_permit):  # SPEC W4
    seen = []
    events.subscribe("permit.cancelled", lambda ev: seen.append(ev.payload["number"]))
    permit = make_permit()
    service.cancel_permit(db, actor=world.officer, permit_id=permit.id, reason="x y")
    assert seen == []  # not before the commit
    db.commit()
    assert seen == [permit.number]


def test_expiry_job_is_idempotent_and_only_touches_due_rows(db, world, make_permit, frozen):  # SPEC W4
    start = dt.date(2026, 1, 10)
    frozen.date(start)
    short = make_permit(days=30, start=start)
    long = make_permit(days=300, start=start)
    frozen.date(start + dt.timedelta(days=31))
    assert service.live_status(short, clock.today()) == "expired"  # true even before the job runs
    assert jobs.expire_due(db) == 1
    assert jobs.expire_due(db) == 0
    db.refresh(short)
    db.refresh(long)
    assert (short.status, long.status) == ("expired", "valid")
    expired_records = db.scalars(
        select(audit.AuditRecord).where(audit.AuditRecord.action == "permit.expire")
    ).all()
    assert [[p["id"] for p in r.after["permits"]] for r in expired_records] == [[short.id]]  # SPEC X5
    assert (
        expired_records[0].before == {"status": "valid"} and expired_records[0].after["status"] == "expired"
    )
    with pytest.raises(IllegalTransition):
        service.renew_permit(db, actor=world.officer, permit_id=short.id, valid_until=dt.date(2027, 1, 1))


def test_verify_permit_does_not_enumerate(db, world, make_permit):  # SPEC W5, P2
    permit = make_permit(passport_name="Jane Doe")
    ok = service.verify_permit(db, actor="t", number=permit.number, holder_name="Jane Doe")
    assert ok.result == "valid"
    wrong_name = service.verify_permit(db, actor="t", number=permit.number, holder_name="Jane Do")
    unknown = service.verify_permit(db, actor="t", number="1226999999990", holder_name="Jane Doe")
    assert wrong_name == unknown == service.Verification(result="not_found")
