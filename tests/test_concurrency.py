"""Work that several server processes or job runners do at once against one committed database
(SPEC X3): the expiry job from several runners, and limits shared by separate app instances."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD, basic_auth, person_input, uscc
from workcard import audit, clock
from workcard.config import get_settings
from workcard.db import make_engine, make_sessionmaker
from workcard.iam import service as iam
from workcard.iam.roles import Role
from workcard.permits import jobs, service
from workcard.permits.models import Permit
from workcard.permits.states import ApplicationKind


def _seed_permits(session: Session, n: int, start: dt.date) -> Any:
    officer = iam.create_staff(session, actor="t", username="officer", display_name="O", password=PASSWORD,
                               role=Role.PERMIT_OFFICER)  # fmt: skip
    employer = service.create_employer(session, actor=officer, name="E", uscc=uscc(7), province="12", city="T",
                                       address="A")  # fmt: skip
    staff = iam.create_staff(session, actor="t", username="hr", display_name="H", password=PASSWORD,
                             role=Role.EMPLOYER_STAFF, employer_id=employer.id)  # fmt: skip
    for i in range(n):
        person = service.register_foreigner(
            session, actor=staff, data=person_input(passport_number=f"X{i:07d}")
        )
        app = service.create_application(
            session, actor=staff, kind=ApplicationKind.NEW, foreigner_id=person.id,
            data=service.ApplicationInput(category="C", position="P", work_location="T", valid_from=start,
                                          valid_until=start + dt.timedelta(days=10 + i % 3 if i % 2 else 200)),
        )  # fmt: skip
        service.submit_application(session, actor=staff, application_id=app.id)
        service.approve_application(session, actor=officer, application_id=app.id)
    return officer


def test_expiry_job_from_several_runners_expires_each_permit_once(committed_url, frozen):  # SPEC W4, X3
    start = dt.date(2026, 3, 1)
    frozen.date(start)
    engine = make_engine(committed_url)
    maker = make_sessionmaker(engine)
    with maker() as session:
        _seed_permits(session, 12, start)
        session.commit()
    frozen.date(start + dt.timedelta(days=30))
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def runner() -> None:
        try:
            barrier.wait()
            while True:
                with maker() as session:
                    done = jobs.expire_due(session)
                    session.commit()
                if not done:
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with maker() as session:
        statuses = dict(session.execute(select(Permit.status, func.count()).group_by(Permit.status)).all())
        batches = session.scalars(
            select(audit.AuditRecord).where(audit.AuditRecord.action == "permit.expire")
        ).all()
        expired_ids = [p["id"] for batch in batches for p in batch.after["permits"]]
        assert statuses == {"expired": 6, "valid": 6}
        assert len(expired_ids) == len(set(expired_ids)) == 6
        assert audit.verify(session).ok
    engine.dispose()


def test_rate_limit_holds_across_server_processes(committed_url):  # SPEC W5: no state in one process
    from workcard.app import create_app

    engine = make_engine(committed_url)
    with make_sessionmaker(engine)() as session:
        issued = iam.create_partner(
            session, actor="t", name="P", scopes=["permits:verify"], rate_limit_per_minute=3
        )
        session.commit()
    settings = get_settings().model_copy(update={"database_url": committed_url})
    auth = basic_auth(issued.client.client_id, issued.secret)
    body = {"permit_number": "1226000000018", "holder_name": "Nobody"}
    with clock.frozen(dt.datetime(2026, 5, 1, 10, 0, 5, tzinfo=dt.UTC)):
        apps = [TestClient(create_app(settings)), TestClient(create_app(settings))]
        codes = [
            apps[i % 2].post("/api/v1/permits/verify", headers=auth, json=body).status_code for i in range(4)
        ]
    assert codes == [200, 200, 200, 429]
    engine.dispose()


def test_session_from_one_process_is_valid_in_another(committed_url):  # sessions live in the database
    from tests.conftest import csrf_of
    from workcard.app import create_app

    engine = make_engine(committed_url)
    with make_sessionmaker(engine)() as session:
        iam.create_staff(
            session, actor="t", username="admin", display_name="A", password=PASSWORD, role=Role.ADMIN
        )
        session.commit()
    settings = get_settings().model_copy(update={"database_url": committed_url})
    one, two = (
        TestClient(create_app(settings), follow_redirects=False),
        TestClient(create_app(settings), follow_redirects=False),
    )
    token = csrf_of(one)
    assert (
        one.post("/signin", data={"username": "admin", "password": PASSWORD, "csrf_token": token}).status_code
        == 303
    )
    two.cookies.update(one.cookies)
    assert two.get("/admin/staff").status_code == 200
    engine.dispose()
