"""Shared fixtures. The database is made by the Alembic migrations, on SQLite by default or on the
PostgreSQL server named by WORKCARD_TEST_DATABASE_URL (a fresh database per test run and worker,
dropped afterwards). Each test runs inside a transaction that is rolled back, whatever the app
commits (its commits become savepoints).

Tests marked ``own_database`` get instead, on PostgreSQL, a database of their own (a copy of a migrated
template) whose commits are real: the partner API runs its groups of calls on connections of its own
(``web.partner``), which see only committed data. What the test made through ``db`` is committed before
each request of its ``client``."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_TMP = Path(tempfile.mkdtemp(prefix="workcard-test-"))
os.environ.setdefault("WORKCARD_PASSWORD_PROFILE", "fast")
os.environ["WORKCARD_VAR_DIR"] = str(_TMP)
os.environ.setdefault("WORKCARD_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("WORKCARD_LOG_LEVEL", "WARNING")

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from workcard import clock  # noqa: E402
from workcard.config import get_settings  # noqa: E402
from workcard.db import make_engine  # noqa: E402
from workcard.migrate import upgrade  # noqa: E402

PASSWORD = "correct-horse-1"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@contextmanager
def _new_postgres_database(base: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server of ``base`` (empty, or a copy of ``template``), dropped afterwards;
    yields its URL."""
    url = make_url(base)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    base = os.environ.get("WORKCARD_TEST_DATABASE_URL", "")
    if not base or base.startswith("sqlite"):
        yield f"sqlite:///{_TMP / f'test-{_worker()}.db'}"
        return
    with _new_postgres_database(base, f"workcard_test_{_worker()}") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture(scope="session")
def template_url(database_url: str) -> Iterator[str]:
    """On PostgreSQL: a migrated database that ``own_database`` tests get a copy of."""
    with _new_postgres_database(database_url, f"workcard_tpl_{_worker()}") as url:
        upgrade(url)
        yield url


@pytest.fixture
def own_engine(request: pytest.FixtureRequest, database_url: str) -> Iterator[Engine | None]:
    """For an ``own_database`` test on PostgreSQL: the engine of its own database; else None."""
    if request.node.get_closest_marker("own_database") is None or database_url.startswith("sqlite"):
        yield None
        return
    template = make_url(request.getfixturevalue("template_url"))
    with _new_postgres_database(database_url, "workcard_own", template=template.database) as url:
        eng = make_engine(url)
        yield eng
        eng.dispose()


@pytest.fixture
def connection(engine: Engine, own_engine: Engine | None) -> Iterator[Any]:
    with (own_engine or engine).connect() as conn:
        if own_engine is not None:
            yield conn
            return
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def maker(connection: Any, own_engine: Engine | None) -> sessionmaker[Session]:
    if own_engine is not None:
        return sessionmaker(bind=own_engine, expire_on_commit=False)
    return sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")


@pytest.fixture
def db(maker: sessionmaker[Session]) -> Iterator[Session]:
    session = maker()
    yield session
    session.close()


class _CommitFirst:
    """ASGI middleware of ``own_database`` tests: commits the test's session before each request."""

    def __init__(self, app: Any, session: Session) -> None:
        self.app = app
        self.session = session

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.session.commit()
        await self.app(scope, receive, send)


@pytest.fixture
def app(
    maker: sessionmaker[Session], database_url: str, own_engine: Engine | None, request: pytest.FixtureRequest
) -> Any:
    from workcard.app import create_app

    settings = get_settings().model_copy(update={"database_url": database_url})
    application = create_app(settings)
    application.state.sessionmaker = maker
    for route in application.routes:  # the mounted API shares the same transaction
        sub = getattr(route, "app", None)
        if sub is not None and hasattr(sub, "state"):
            sub.state.sessionmaker = maker
    if own_engine is not None:
        application.add_middleware(_CommitFirst, session=request.getfixturevalue("db"))
    return application


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def frozen() -> Iterator[Any]:
    """Freeze the clock: ``frozen(datetime)`` or ``frozen.date(date)``; released after the test."""

    class Freezer:
        def __call__(self, at: dt.datetime) -> None:
            clock.set_frozen(at)

        def date(self, day: dt.date) -> None:
            clock.set_frozen(dt.datetime.combine(day, dt.time(4, 0), tzinfo=dt.UTC))

    yield Freezer()
    clock.set_frozen(None)


@pytest.fixture
def committed_url(database_url: str) -> Iterator[str]:
    """A database of its own whose commits are real (not rolled back per test)."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{_TMP / f'committed-{secrets.token_hex(4)}.db'}"
        upgrade(url)
        yield url
        return
    with _new_postgres_database(database_url, "workcard_commit") as url:
        upgrade(url)
        yield url


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    """The Authorization header of a partner system's call (HTTP Basic)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


# --- factories -----------------------------------------------------------------------------------------

from workcard.iam import service as iam  # noqa: E402
from workcard.iam.roles import Role  # noqa: E402
from workcard.permits import rules, service  # noqa: E402
from workcard.permits.states import ApplicationKind  # noqa: E402


def uscc(seed: int) -> str:
    body = f"9112011{seed:010d}"[:17]
    return body + rules.uscc_check_char(body)


@pytest.fixture
def make_employer(db: Session) -> Any:
    counter = iter(range(1, 10_000))

    def make(**overrides: Any) -> Any:
        n = next(counter)
        officer = _system_officer(db)
        values = {"name": f"Employer {n} Co., Ltd.", "uscc": uscc(n + secrets.randbelow(10**6) * 100),
                  "province": "12", "city": "Tianjin", "address": f"No. {n} Test Road"}  # fmt: skip
        values.update(overrides)
        return service.create_employer(db, actor=officer, **values)

    return make


def _system_officer(db: Session) -> Any:
    user = db.info.get("system_officer")
    if user is None:
        user = iam.create_staff(db, actor="test", username=f"sysofficer{secrets.token_hex(3)}",
                                display_name="Officer", password=PASSWORD, role=Role.PERMIT_OFFICER)  # fmt: skip
        db.info["system_officer"] = user
    return user


@pytest.fixture
def make_staff(db: Session) -> Any:
    def make(
        role: Role, employer: Any = None, *, username: str | None = None, designated: bool = False
    ) -> Any:
        return iam.create_staff(
            db, actor="test", username=username or f"{role.value.replace('_', '')}{secrets.token_hex(3)}",
            display_name=f"Test {role.value}", password=PASSWORD, role=role,
            employer_id=employer.id if employer is not None else None, designated=designated,
        )  # fmt: skip

    return make


def person_input(**overrides: Any) -> service.PersonInput:
    values: dict[str, Any] = {
        "passport_name": "Jane Doe",
        "nationality": "GBR",
        "passport_number": f"P{secrets.randbelow(10**8):08d}",
        "passport_expiry": clock.today() + dt.timedelta(days=3000),
        "date_of_birth": dt.date(1990, 1, 2),
        "sex": "F",
    }
    values.update(overrides)
    return service.PersonInput(**values)


@pytest.fixture
def make_foreigner(db: Session) -> Any:
    def make(staff: Any, **overrides: Any) -> Any:
        return service.register_foreigner(db, actor=staff, data=person_input(**overrides))

    return make


@pytest.fixture
def world(db: Session, make_employer: Any, make_staff: Any) -> Any:
    """Two employers with a staff member each, a permit officer and an administrator."""

    class World:
        employer = make_employer()
        other_employer = make_employer()
        staff = make_staff(Role.EMPLOYER_STAFF, employer)
        other_staff = make_staff(Role.EMPLOYER_STAFF, other_employer)
        officer = make_staff(Role.PERMIT_OFFICER)
        admin = make_staff(Role.ADMIN)

    return World


@pytest.fixture
def make_permit(db: Session, world: Any, make_foreigner: Any) -> Any:
    """Issue a permit through the real flow: register, apply, submit, approve."""

    def make(*, staff: Any = None, days: int = 365, start: dt.date | None = None, **person: Any) -> Any:
        staff = staff or world.staff
        holder = make_foreigner(staff, **person)
        begin = start or clock.today()
        app = service.create_application(
            db, actor=staff, kind=ApplicationKind.NEW, foreigner_id=holder.id,
            data=service.ApplicationInput(category="B", position="Engineer", work_location="Tianjin",
                                          valid_from=begin, valid_until=begin + dt.timedelta(days=days)),
        )  # fmt: skip
        service.submit_application(db, actor=staff, application_id=app.id)
        return service.approve_application(db, actor=world.officer, application_id=app.id)

    return make


# --- HTTP helpers --------------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: TestClient, path: str = "/signin") -> str:
    page = client.get(path)
    match = _CSRF.search(page.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> None:
    token = csrf_of(client)
    resp = client.post("/signin", data={"username": username, "password": password, "csrf_token": token})
    assert resp.status_code == 303, resp.text[:500]


def post_form(
    client: TestClient, path: str, data: dict[str, Any], *, page: str | None = None, **kw: Any
) -> Any:
    token = csrf_of(client, page or "/signin")
    return client.post(path, data={**data, "csrf_token": token}, **kw)
