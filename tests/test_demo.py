"""The demo data tells one consistent story, in either language (SPEC W4, X1)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from workcard import clock, demo
from workcard.iam.models import StaffUser
from workcard.permits import jobs, service
from workcard.permits.models import Foreigner, Letter, Permit


def _permit_of(db, passport_name: str) -> Permit:
    return db.scalar(
        select(Permit)
        .join(Foreigner, Foreigner.id == Permit.foreigner_id)
        .where(Foreigner.passport_name == passport_name)
    )


def test_demo_history_happened_at_plausible_times(db):  # SPEC W4
    demo.load_demo(db)
    today = clock.today()

    cancelled = _permit_of(db, "Jean-Luc O'Connor")
    letter = db.scalar(select(Letter).where(Letter.permit_id == cancelled.id))
    assert cancelled.status == "cancelled"
    assert letter.created_at < cancelled.cancelled_at < clock.now() - dt.timedelta(days=30)
    cancel = next(r for r in service.permit_history(db, cancelled) if r.action == "permit.cancel")
    assert cancel.at == cancelled.cancelled_at

    expired = _permit_of(db, "Nguyễn Thị Minh Khai")
    assert expired.status == "expired" and expired.valid_until < today
    expiry = jobs.expiry_record(db, expired)
    assert expiry is not None, "the expired permit's history does not show its expiry"
    assert expiry.at.astimezone(clock.CHINA).date() == expired.valid_until + dt.timedelta(days=1)


def test_demo_staff_have_plain_names(db):  # SPEC X1: no English role text in the Chinese pages
    demo.load_demo(db)
    names = db.scalars(select(StaffUser.display_name)).all()
    assert len(names) >= 5
    for name in names:
        assert re.fullmatch(r"[A-Z][a-z]+( [A-Z][a-z]+)+", name), name
