"""Group commit: many small calls, one transaction (see docs/decisions/0008-group-commit.md).

A partner's verification call needs a short transaction of its own: check the credentials, count the
call, read the permit, record the check, commit. Run one by one, concurrent calls each pay for their
statements, their commit's disk flush and a turn on the audit chain's head row, and they queue on that
row. A ``GroupCommit`` gathers the calls that arrive while the previous group is being written and runs
them together, in arrival order, in one transaction of one thread: a handful of statements and one
commit for the whole group, whatever its size.

Every call still gets its own rows (audit record, counter increment, verification row) and its own
answer, and no call is answered before its group has committed. What happens when a group fails:

* the database cannot be reached, or the commit itself failed: every call of the group fails (a
  commit that failed may still have been written, so it is never run again);
* anything else (one call's data that the database refuses, a bug): the group is split in two and each
  half run again, down to single calls, so one bad call fails alone and the others are answered.

The thread is started by the first call and ends after a few idle seconds; one ``GroupCommit`` per
kind of call and per application, so per server process.

On PostgreSQL, ``AsyncGroupCommit`` does the same on the event loop, without a thread: tasks per kind of
call and per process gather the calls and run each group on a driver connection of their own (psycopg,
asynchronous), whose handler sends its statements in a few round trips (``web.partner``). The outcomes
are the same, told apart by where the failure happened: the commit is sent in the same round trip as
the group's writes, so an error of a statement (the database refused one call's data; the COMMIT did
not run, nothing was written) runs the group again in halves; the connection lost before that round
trip runs the whole group once more on a new connection (nothing was written either, but its partners'
counters, committed first, see ``web.partner``); the connection lost in it (``CommitUnknown``: the group
may have been written) asks a new connection whether it was, and answers or runs the group again, or
fails it when that cannot be told."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from workcard import audit, sqltext

T = TypeVar("T")
R = TypeVar("R")

# The handler answers each call of the group, in order: a result, or the exception that call gets
# (a DomainError, or a validation error). Changes made for a call that gets an error are committed with
# the group, so a handler makes none for such a call except those meant to be kept (e.g. a refusal's
# audit record). An exception the handler raises fails the group (see above).
Handler = Callable[[Session, Sequence[T]], Sequence[R | Exception]]

MAX_GROUP = 256
CONNECT_TIMEOUT = 10  # seconds: a database that cannot be reached fails the group, it does not hang
IDLE_SECONDS = 5.0
# Failures a smaller group would meet again: not worth a retry.
_NOT_RETRIED = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)

log = logging.getLogger(__name__)


class GroupStopped(RuntimeError):
    """The thread or task running the groups stopped (the server is shutting down) before the call's
    group ran."""


class CommitUnknown(Exception):
    """The group may or may not have been written (its commit raised, or was sent and its answer never
    came back): it fails, and is never run again. On the driver (``AsyncGroupCommit``), a handler may
    give ``written``, which asks a new connection whether the group was written, and the ``answers``
    the group's calls get if it was: the calls are then answered (written) or the group is run again
    (not written), instead of failing."""

    def __init__(
        self,
        message: str,
        *,
        written: Callable[[psycopg.AsyncConnection[Any]], Awaitable[bool]] | None = None,
        answers: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.written = written
        self.answers = answers


def _failure(
    exc: Exception, size: int, not_retried: tuple[type[Exception], ...]
) -> tuple[BaseException, bool]:
    """What the calls of a failed group get (for a commit of unknown outcome, the error behind it), and
    whether the group is run again in halves."""
    cause = exc.__cause__ if isinstance(exc, CommitUnknown) and exc.__cause__ else exc
    retry = size > 1 and not isinstance(exc, (CommitUnknown, *not_retried))
    log.warning("a group of %d calls failed (%s: %s)%s", size, type(cause).__name__, cause,
                "; running each half again" if retry else "")  # fmt: skip
    return cause, retry


class GroupCommit(Generic[T, R]):
    def __init__(self, make_session: sessionmaker[Session], handler: Handler[T, R]) -> None:
        self._make_session = make_session
        self._handler = handler
        self._queue: queue.SimpleQueue[tuple[T, concurrent.futures.Future[R]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._current: list[tuple[T, concurrent.futures.Future[R]]] = []

    def submit(self, call: T) -> concurrent.futures.Future[R]:
        future: concurrent.futures.Future[R] = concurrent.futures.Future()
        self._queue.put((call, future))
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._work, name="group-commit", daemon=True)
                thread.start()  # if this raises, the caller gets the error and the next call tries again
                self._thread = thread
        return future

    async def run(self, call: T) -> R:
        """Submit ``call`` and wait, without blocking the event loop, for its group to commit."""
        return await asyncio.wrap_future(self.submit(call))

    def _work(self) -> None:
        try:
            self._serve()
        except BaseException:  # the thread is being stopped: nobody may wait for an answer for ever
            stopped = GroupStopped("the group-commit thread stopped")
            for _, future in self._current:
                if not future.done():
                    future.set_exception(stopped)
            while True:
                try:
                    _, future = self._queue.get_nowait()
                except queue.Empty:
                    break
                if future.set_running_or_notify_cancel():
                    future.set_exception(stopped)
            raise
        finally:  # however the thread ends, the next call starts a new one
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _serve(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:  # a call put after this check starts a new thread
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            taken = [first]
            while len(taken) < MAX_GROUP:
                try:
                    taken.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            # A call whose caller gave up (its request was cancelled) is dropped before any work; the
            # others can no longer be cancelled, so their answers are always delivered.
            self._current = [
                (call, future) for call, future in taken if future.set_running_or_notify_cancel()
            ]
            if self._current:
                self._run(self._current)
            self._current = []

    def _run(self, group: list[tuple[T, concurrent.futures.Future[R]]]) -> None:
        try:
            answers = self._transaction([call for call, _ in group])
        except Exception as exc:  # noqa: BLE001 - handed to the waiting calls, never lost
            cause, retry = _failure(exc, len(group), _NOT_RETRIED)
            if retry:
                half = len(group) // 2
                self._run(group[:half])
                self._run(group[half:])
            else:
                for _, future in group:
                    future.set_exception(cause)
            return
        for (_, future), answer in zip(group, answers, strict=True):
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def _transaction(self, calls: list[T]) -> Sequence[R | Exception]:
        with self._make_session() as session:
            try:
                answers = self._handler(session, calls)
                if len(answers) != len(calls):
                    raise RuntimeError("a group-commit handler must answer every call")
                session.flush()  # everything the commit would write, so that what fails here is retried
                audit.write_pending(session)
            except BaseException:
                session.rollback()
                raise
            try:
                session.commit()
            except Exception as exc:
                raise CommitUnknown(str(exc)) from exc
        return answers


# Runs a group on the connection and commits it; answers as ``Handler`` does. It raises ``CommitUnknown``
# when the round trip that carried its COMMIT failed at the connection; any other error means that
# nothing was committed.
AsyncHandler = Callable[[psycopg.AsyncConnection[Any], Sequence[T]], Awaitable[Sequence[R | Exception]]]
# Failures of the connection (before the commit): the group is run once more, on a new connection.
_CONNECTION_LOST = (psycopg.OperationalError, psycopg.InterfaceError)


async def connect(conninfo: str) -> psycopg.AsyncConnection[Any]:
    """A connection as ``AsyncGroupCommit``'s handlers get it (see the class), with the settings that
    values written into SQL text rely on (``sqltext.SETTINGS``)."""
    conn = await psycopg.AsyncConnection.connect(
        conninfo,
        autocommit=True,
        row_factory=namedtuple_row,
        cursor_factory=psycopg.AsyncClientCursor,
        connect_timeout=CONNECT_TIMEOUT,
    )
    try:
        await conn.execute(sqltext.SETTINGS)
    except BaseException:
        await conn.close()
        raise
    return conn


class AsyncGroupCommit(Generic[T, R]):
    """``GroupCommit`` on the event loop, for PostgreSQL (see the module's documentation). Up to
    ``concurrency`` groups run at once, each on a connection of its own (``conninfo``: libpq's), so that
    the calls that arrive while one group waits for the database form the next group at once instead of
    waiting for it. The connections are in autocommit mode (the handler sends BEGIN and COMMIT with its
    statements), bind parameters on the client, return rows as named tuples, and have the settings
    ``sqltext`` relies on (``connect``)."""

    def __init__(self, conninfo: str, handler: AsyncHandler[T, R], *, concurrency: int = 2) -> None:
        self._conninfo = conninfo
        self._handler = handler
        self._concurrency = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: collections.deque[tuple[T, asyncio.Future[R]]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting = 0  # tasks waiting for calls

    async def run(self, call: T) -> R:
        """Queue ``call`` and wait for its group to commit."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # the first call, or a new event loop (an application served again)
            self._loop, self._queue, self._wakeup, self._tasks, self._waiting = (
                loop, collections.deque(), asyncio.Event(), set(), 0
            )  # fmt: skip
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((call, future))
        self._wakeup.set()
        if self._waiting == 0 and len(self._tasks) < self._concurrency:
            self._tasks.add(loop.create_task(self._serve(), name="group-commit"))
        # A caller that gives up cancels its future: dropped from its group if that has not begun; if it
        # has, the group's work is done and committed all the same, and the answer is not delivered.
        return await future

    async def _serve(self) -> None:
        conn: list[psycopg.AsyncConnection[Any]] = []  # this task's connection, once made
        current: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while True:
                if not self._queue:
                    self._wakeup.clear()
                    self._waiting += 1
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), IDLE_SECONDS)
                    except TimeoutError:
                        if not self._queue:
                            return
                    finally:
                        self._waiting -= 1
                    continue
                current = []
                while self._queue and len(current) < MAX_GROUP:
                    call, future = self._queue.popleft()
                    if not future.done():
                        current.append((call, future))
                if current:
                    await self._run(conn, current)
                current = []
        except BaseException:  # the task is being stopped: nobody may wait for an answer for ever
            stopped = GroupStopped("the group-commit task stopped")
            for _, future in [*current, *self._queue]:
                if not future.done():
                    future.set_exception(stopped)
            self._queue.clear()
            raise
        finally:  # no longer counted at once, so that a call queued from now on starts a new task
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)
            for c in conn:
                await c.close()

    async def _run(
        self,
        conn: list[psycopg.AsyncConnection[Any]],
        group: list[tuple[T, asyncio.Future[R]]],
        again: bool = False,
    ) -> None:
        try:
            answers = await self._transaction(conn, [call for call, _ in group])
        except Exception as exc:  # noqa: BLE001 - handed to the waiting calls, never lost
            written = await self._written(conn, exc)  # asked after a rerun too: it may have committed
            if written:  # the commit went through although its answer was lost
                answers = exc.answers  # type: ignore[attr-defined]
            elif (written is False or isinstance(exc, _CONNECTION_LOST)) and not again:  # nothing written
                log.warning("a group of %d calls lost its connection (%s); running it again", len(group), exc)
                await self._run(conn, group, again=True)
                return
            else:
                cause, retry = _failure(
                    exc, len(group), (*_CONNECTION_LOST, psycopg.errors.ReadOnlySqlTransaction)
                )
                if retry:
                    half = len(group) // 2
                    await self._run(conn, group[:half])
                    await self._run(conn, group[half:])
                else:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(cause)
                return
        for (_, future), answer in zip(group, answers, strict=True):
            if future.done():  # its caller gave up while the group ran
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    async def _written(self, held: list[psycopg.AsyncConnection[Any]], exc: Exception) -> bool | None:
        """For a commit of unknown outcome that can be asked about: whether the group was written (asked
        on a new connection); None when that cannot be told."""
        if not isinstance(exc, CommitUnknown) or exc.written is None:
            return None
        try:
            if not held or held[0].closed:
                held[:] = [await connect(self._conninfo)]
            written = await exc.written(held[0])
        except Exception as error:  # noqa: BLE001 - still out of reach, or the check timed out: the calls fail
            log.warning(
                "could not tell whether a group of calls was written (%s: %s)", type(error).__name__, error
            )
            if held:  # whatever state the check left it in, the next group gets a new connection
                await held.pop().close()
            return None
        log.warning(
            "a group's commit lost its connection; the group was %swritten", "" if written else "not "
        )
        return written

    async def _transaction(
        self, held: list[psycopg.AsyncConnection[Any]], calls: list[T]
    ) -> Sequence[R | Exception]:
        if not held or held[0].closed:
            held[:] = [await connect(self._conninfo)]
        conn = held[0]
        try:
            answers = await self._handler(conn, calls)
        except BaseException as exc:
            if isinstance(exc, (CommitUnknown, *_CONNECTION_LOST)) or conn.broken:
                held.clear()
                await conn.close()
            elif conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.execute("ROLLBACK")
            raise
        if len(answers) != len(calls):  # committed: never to be run again
            raise CommitUnknown("a group-commit handler must answer every call")
        return answers
