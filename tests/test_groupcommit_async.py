"""Group commit on PostgreSQL's driver (``groupcommit.AsyncGroupCommit``, decision 0011): the same
outcomes as the thread's (tests/test_groupcommit.py), on the event loop, with connections of its own
(SPEC X3)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from workcard import groupcommit
from workcard.web.partner import _conninfo

pytestmark = pytest.mark.pg_only


@pytest.fixture
def conninfo(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip("needs PostgreSQL")
    return _conninfo(make_url(database_url))


class Recorder:
    """A handler that runs one statement per group, notes each group, and can be held back."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.connections: list[int] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, conn: Any, calls: Any) -> list[Any]:
        await self.release.wait()
        self.groups.append(list(calls))
        self.connections.append(conn.info.backend_pid)
        if "lost" in calls:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        if "unknown" in calls:
            raise groupcommit.CommitUnknown("connection lost while the COMMIT was on its way")
        if "flaky" in calls:  # lost before the commit the first time; the rerun's commit answer is lost
            if len(self.groups) == 2:
                raise psycopg.OperationalError("server closed the connection unexpectedly")

            async def committed(conn: Any) -> bool:
                return True

            raise groupcommit.CommitUnknown(
                "connection lost", written=committed, answers=[c.upper() for c in calls]
            )
        if "unanswerable" in calls:  # the check itself fails, inside a transaction it opened

            async def failing(conn: Any) -> bool:
                await conn.execute("BEGIN")
                raise psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")

            raise groupcommit.CommitUnknown("connection lost", written=failing, answers=list(calls))
        if "written" in calls or "not-written" in calls:  # the commit's answer was lost; it can be asked
            self.asked = getattr(self, "asked", 0)

            async def written(conn: Any) -> bool:
                self.asked += 1
                await conn.execute("SELECT 1")  # on a connection that works
                return "written" in calls

            answers = [c.upper() for c in calls]
            if len(self.groups) > 2:  # a group run again commits
                return answers
            raise groupcommit.CommitUnknown("connection lost", written=written, answers=answers)
        cursor = conn.cursor()
        await cursor.execute("BEGIN")
        if "bad" in calls:  # a statement the database refuses: the transaction is rolled back
            await cursor.execute("SELECT 1 / 0")
        await cursor.execute("COMMIT")
        return [ValueError("refused") if c == "refused" else c.upper() for c in calls]


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


async def _after_a_first_group(
    conninfo: str, handler: Recorder, calls: tuple[str, ...]
) -> tuple[Any, list[Any]]:
    """Run call "a" alone, held back while ``calls`` queue behind it (so they form the next group);
    return the group runner and the calls' results (answers or errors)."""
    group = groupcommit.AsyncGroupCommit(conninfo, handler, concurrency=1)
    handler.release.clear()
    first = asyncio.ensure_future(group.run("a"))
    await asyncio.sleep(0.05)
    rest = [asyncio.ensure_future(group.run(c)) for c in calls]
    await asyncio.sleep(0.05)
    handler.release.set()
    assert await first == "A"
    return group, list(await asyncio.gather(*rest, return_exceptions=True))


def test_calls_that_arrive_together_share_a_group(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        group, results = await _after_a_first_group(conninfo, handler, ("b", "c", "refused"))
        assert results[:2] == ["B", "C"] and isinstance(results[2], ValueError)
        assert handler.groups == [["a"], ["b", "c", "refused"]]

    _run(scenario())


def test_a_refused_statement_fails_its_call_alone(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        group, results = await _after_a_first_group(conninfo, handler, ("b", "bad", "c", "d"))
        assert results[0] == "B" and results[2:] == ["C", "D"]
        assert isinstance(results[1], psycopg.errors.DivisionByZero)
        # run in halves until the bad call was alone; the connection was rolled back, not replaced
        assert handler.groups[1:] == [["b", "bad", "c", "d"], ["b", "bad"], ["b"], ["bad"], ["c", "d"]]
        assert len(set(handler.connections)) == 1

    _run(scenario())


def test_a_lost_connection_runs_the_group_once_more_on_a_new_one(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        group, results = await _after_a_first_group(conninfo, handler, ("b", "lost", "c"))
        assert all(isinstance(r, psycopg.OperationalError) for r in results)
        assert handler.groups[1:] == [["b", "lost", "c"]] * 2  # once more, then given up: not in halves
        assert await group.run("later") == "LATER"
        assert handler.connections[0] == handler.connections[1]  # held from group to group
        assert len(set(handler.connections[1:])) == 3  # after each loss, a new connection

    _run(scenario())


def test_a_commit_of_unknown_outcome_fails_the_group_and_is_never_run_again(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        group, results = await _after_a_first_group(conninfo, handler, ("b", "unknown", "c"))
        assert all(isinstance(r, groupcommit.CommitUnknown) for r in results)
        assert handler.groups[1:] == [["b", "unknown", "c"]]
        assert handler.connections[1] != (await _backend(group, handler))

    _run(scenario())


async def _backend(group: Any, handler: Recorder) -> int:
    """The backend of the connection the next group runs on."""
    await group.run("next")
    return handler.connections[-1]


def test_a_caller_that_gives_up_before_its_group_is_dropped(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        group = groupcommit.AsyncGroupCommit(conninfo, handler, concurrency=1)
        handler.release.clear()
        first = asyncio.ensure_future(group.run("a"))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(group.run("gone"))
        kept = asyncio.ensure_future(group.run("kept"))
        await asyncio.sleep(0.05)
        gone.cancel()  # its request was cancelled while it waited
        handler.release.set()
        assert await first == "A" and await kept == "KEPT"
        assert handler.groups == [["a"], ["kept"]]

    _run(scenario())


def test_a_second_group_runs_while_the_first_waits(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        group = groupcommit.AsyncGroupCommit(conninfo, handler, concurrency=2)
        handler.release.clear()
        first = asyncio.ensure_future(group.run("a"))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(group.run("b"))
        await asyncio.sleep(0.05)
        handler.release.set()
        assert [await first, await second] == ["A", "B"]
        assert handler.groups == [["a"], ["b"]] and len(set(handler.connections)) == 2

    _run(scenario())


def test_an_idle_task_ends_and_the_next_call_starts_one(conninfo, monkeypatch):  # SPEC X3
    monkeypatch.setattr(groupcommit, "IDLE_SECONDS", 0.05)

    async def scenario() -> None:
        handler = Recorder()
        group = groupcommit.AsyncGroupCommit(conninfo, handler)
        assert await group.run("a") == "A"
        await asyncio.sleep(0.3)
        assert not group._tasks  # ended, its connection closed
        assert await group.run("b") == "B"

    _run(scenario())


def test_a_stopped_task_answers_every_waiting_call(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        group = groupcommit.AsyncGroupCommit(conninfo, handler, concurrency=1)
        handler.release.clear()
        calls = [asyncio.ensure_future(group.run(c)) for c in ("a", "b")]
        await asyncio.sleep(0.05)
        for task in list(group._tasks):
            task.cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)

    _run(scenario())


def test_a_commit_whose_answer_was_lost_is_asked_about(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        _, results = await _after_a_first_group(conninfo, handler, ("b", "written"))
        assert results == ["B", "WRITTEN"]  # it was written: answered, not run again
        assert handler.groups[1:] == [["b", "written"]] and handler.asked == 1

        handler = Recorder()
        _, results = await _after_a_first_group(conninfo, handler, ("b", "not-written"))
        assert results == ["B", "NOT-WRITTEN"]  # it was not: run once more
        assert handler.groups[1:] == [["b", "not-written"]] * 2 and handler.asked == 1

    _run(scenario())


def test_a_rerun_whose_commit_answer_is_lost_is_asked_about_too(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        _, results = await _after_a_first_group(conninfo, handler, ("b", "flaky"))
        assert results == [
            "B",
            "FLAKY",
        ]  # written by the rerun: answered, not failed and not run a third time
        assert handler.groups[1:] == [["b", "flaky"]] * 2

    _run(scenario())


def test_a_check_that_fails_leaves_no_half_open_transaction_behind(conninfo):  # SPEC X3
    async def scenario() -> None:
        handler = Recorder()
        group, results = await _after_a_first_group(conninfo, handler, ("unanswerable",))
        assert isinstance(results[0], groupcommit.CommitUnknown)  # cannot be told: the call fails
        assert await group.run("next") == "NEXT"  # on a new connection, not the one the check left
        assert handler.connections[-1] not in handler.connections[:-1]

    _run(scenario())
