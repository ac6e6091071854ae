"""Group commit (docs/decisions/0008-group-commit.md): calls that arrive together share one
transaction, each gets its own answer, and no call is answered before its group committed (SPEC X3)."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.conftest import basic_auth
from tests.test_concurrency import _seed_permits
from workcard import audit, clock, groupcommit
from workcard.app import create_app
from workcard.config import get_settings
from workcard.credentials import service as credentials
from workcard.credentials.models import Verification
from workcard.db import make_engine, make_sessionmaker
from workcard.errors import Conflict
from workcard.iam import service as iam
from workcard.iam.models import RateCounter
from workcard.permits.models import Permit


class Recorder:
    """A handler that writes one audit record per call, notes each group, and can be held back."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, session: Session, calls: Any) -> list[Any]:
        self.release.wait(10)
        self.groups.append(list(calls))
        if "boom" in calls:
            raise RuntimeError("one bad call")
        answers: list[Any] = []
        for call in calls:
            if call == "refused":
                answers.append(Conflict("Refused."))
                continue
            audit.record(session, actor="t", action="test.call", subject_type="call", subject_id=call)
            answers.append(call.upper())
        return answers


def _actions(maker: Any) -> list[str]:
    with maker() as session:
        return list(
            session.scalars(
                select(audit.AuditRecord.subject_id)
                .where(audit.AuditRecord.action == "test.call")
                .order_by(audit.AuditRecord.id)
            )
        )


@pytest.fixture
def committed_maker(committed_url: str) -> Any:
    engine = make_engine(committed_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_calls_that_arrive_together_share_one_transaction(committed_maker):  # SPEC X5
    handler = Recorder()
    group = groupcommit.GroupCommit(committed_maker, handler)
    handler.release.clear()  # the first call's group is held while nine more arrive
    first = group.submit("c0")
    time.sleep(0.05)
    rest = [group.submit(f"c{i}") for i in range(1, 10)]
    handler.release.set()
    assert [f.result(10) for f in [first, *rest]] == [f"C{i}" for i in range(10)]
    assert handler.groups == [["c0"], [f"c{i}" for i in range(1, 10)]]
    assert _actions(committed_maker) == [f"c{i}" for i in range(10)]  # each call's own record, in order
    with committed_maker() as session:
        assert audit.verify(session).ok


def test_a_failing_group_is_run_again_in_halves_so_one_bad_call_fails_alone(committed_maker):  # SPEC X3
    handler = Recorder()
    group = groupcommit.GroupCommit(committed_maker, handler)
    handler.release.clear()
    futures = [group.submit("a")]
    time.sleep(0.05)
    futures += [group.submit(c) for c in ("b", "boom", "refused", "d")]
    handler.release.set()
    assert futures[0].result(10) == "A"
    assert futures[1].result(10) == "B" and futures[4].result(10) == "D"
    with pytest.raises(RuntimeError, match="one bad call"):
        futures[2].result(10)
    with pytest.raises(Conflict):
        futures[3].result(10)
    assert handler.groups[1:] == [
        ["b", "boom", "refused", "d"],
        ["b", "boom"],
        ["b"],
        ["boom"],
        ["refused", "d"],
    ]
    assert _actions(committed_maker) == ["a", "b", "d"]  # nothing of the failed groups was kept


def test_an_unreachable_database_fails_the_group_without_running_it_again(committed_maker):  # SPEC X3
    class Down(Recorder):
        def __call__(self, session: Session, calls: Any) -> list[Any]:
            self.groups.append(list(calls))
            raise OperationalError("SELECT 1", {}, ConnectionError("connection refused"))

    handler = Down()
    group = groupcommit.GroupCommit(committed_maker, handler)
    handler.release.clear()
    futures = [group.submit(c) for c in ("x", "y", "z")]
    for future in futures:
        with pytest.raises(OperationalError):
            future.result(10)
    assert len(handler.groups) <= 2 and all(len(g) > 0 for g in handler.groups)  # no call-by-call retry


def _one_group(maker: Any, handler: Recorder, calls: tuple[str, ...]) -> tuple[Any, list[Any]]:
    """Submit ``calls`` while the handler is held, so that they make one group; return the group and
    the calls' futures."""
    group = groupcommit.GroupCommit(maker, handler)
    handler.release.clear()
    futures = [group.submit(c) for c in calls]
    handler.release.set()
    return group, futures


def test_a_failed_commit_fails_every_call_of_the_group(committed_maker, monkeypatch):  # SPEC X3
    def failing_commit(self: Session) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Session, "commit", failing_commit)
    _, futures = _one_group(committed_maker, Recorder(), ("x", "y"))
    for future in futures:
        with pytest.raises(RuntimeError, match="disk full"):
            future.result(10)
    monkeypatch.undo()
    assert _actions(committed_maker) == []


def test_a_commit_that_wrote_but_raised_is_not_run_again(committed_maker, monkeypatch):  # SPEC X3
    real_commit = Session.commit

    def commit_then_lose_the_connection(self: Session) -> None:
        real_commit(self)
        raise OperationalError("COMMIT", {}, ConnectionError("connection lost after the commit"))

    monkeypatch.setattr(Session, "commit", commit_then_lose_the_connection)
    _, futures = _one_group(committed_maker, Recorder(), ("p", "q", "r"))
    for future in futures:
        with pytest.raises(OperationalError):
            future.result(10)
    monkeypatch.undo()
    assert sorted(_actions(committed_maker)) == ["p", "q", "r"]  # written once, never twice


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the stop, re-raised
def test_a_stopped_thread_answers_every_waiting_call(committed_maker):  # SPEC X3
    class Stopping(Recorder):
        def __call__(self, session: Session, calls: Any) -> list[Any]:
            self.release.wait(10)
            if "stop" in calls:
                raise SystemExit
            return super().__call__(session, calls)

    group, futures = _one_group(committed_maker, Stopping(), ("stop", "queued"))
    for future in futures:
        with pytest.raises(RuntimeError, match="stopped"):
            future.result(10)
    assert group.submit("after").result(10) == "AFTER"  # a new thread serves the next call


def test_the_thread_ends_when_idle_and_comes_back(committed_maker, monkeypatch):
    monkeypatch.setattr(groupcommit, "IDLE_SECONDS", 0.05)
    group = groupcommit.GroupCommit(committed_maker, Recorder())
    assert group.submit("one").result(10) == "ONE"
    deadline = time.monotonic() + 5
    while group._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert group._thread is None
    assert group.submit("two").result(10) == "TWO"


def test_concurrent_partner_calls_are_each_counted_checked_and_recorded(
    committed_url, frozen
):  # SPEC W5, P1, X5
    """Sixteen verifications at once from one partner with a limit of 12 a minute: exactly twelve
    verdicts and four refusals, each with its own verification row or audit record."""
    engine = make_engine(committed_url)
    maker = make_sessionmaker(engine)
    frozen(clock.now().replace(microsecond=0))
    with maker() as session:
        _seed_permits(session, 2, clock.today())
        permit = session.scalars(select(Permit).order_by(Permit.id)).first()
        code = credentials.letter_code(session, permit)
        issued = iam.create_partner(
            session, actor="t", name="P", scopes=["permits:verify"], rate_limit_per_minute=12
        )
        session.commit()
    settings = get_settings().model_copy(update={"database_url": committed_url})
    auth = basic_auth(issued.client.client_id, issued.secret)
    with TestClient(create_app(settings)) as client:
        barrier = threading.Barrier(16)

        def call(_: int) -> Any:
            barrier.wait()
            return client.post("/api/v1/verifications", headers=auth, json={"qr_text": code})

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(call, range(16)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 12 + [429] * 4
    assert {r.json()["verdict"] for r in responses if r.status_code == 200} == {"valid"}
    assert all(
        r.headers["content-type"] == "application/problem+json" for r in responses if r.status_code == 429
    )
    with maker() as session:
        assert session.scalar(select(func.count()).select_from(Verification)) == 12
        actions = session.execute(
            select(audit.AuditRecord.action, func.count()).group_by(audit.AuditRecord.action)
        ).all()
        assert dict(actions)["permit.verify_code"] == 12 and dict(actions)["api.refused"] == 4
        assert session.scalar(select(func.sum(RateCounter.count))) == 16
        assert audit.verify(session).ok
    engine.dispose()


def test_a_call_given_up_before_its_group_is_dropped_and_the_others_go_on(committed_maker):  # SPEC X3
    handler = Recorder()
    group = groupcommit.GroupCommit(committed_maker, handler)
    handler.release.clear()
    first = group.submit("a")
    time.sleep(0.05)
    gone, kept = group.submit("gone"), group.submit("kept")
    assert gone.cancel()  # its request was cancelled while it waited
    handler.release.set()
    assert first.result(10) == "A" and kept.result(10) == "KEPT"
    assert handler.groups == [["a"], ["kept"]]
    assert _actions(committed_maker) == ["a", "kept"]
    assert group.submit("later").result(10) == "LATER"  # the thread is still serving
