"""Group commit: many small calls, one transaction (see docs/decisions/0008-group-commit.md).

A partner's verification call needs a short transaction of its own: check the credentials, count the
call, read the permit, record the check, commit. Run one by one, concurrent calls each pay for their
statements, their commit's disk flush and a turn on the audit chain's head row, and they queue on that
row. A ``GroupCommit`` gathers the calls that arrive while the previous group is being written and runs
them together, in arrival order, in one transaction of one thread: a handful of statements and one
commit for the whole group, whatever its size.

Every call still gets its own rows (audit record, counter increment, verification row) and its own
answer, and no call is answered before its group has committed: if the commit fails, every call of
the group fails. A group that fails is then retried call by call, so one bad call cannot take the
others down with it.

The thread is started by the first call and ends after a few idle seconds; one ``GroupCommit`` per
kind of call and per application, so per server process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from workcard.errors import DomainError

T = TypeVar("T")
R = TypeVar("R")

# The handler answers each call of the group, in order: a result, or the DomainError that call gets.
# Changes made for a call that gets an error are committed with the group, so a handler makes none
# for such a call except those meant to be kept (``DomainError.keep_changes``, e.g. a refusal's audit
# record). Any other exception fails the whole group.
Handler = Callable[[Session, Sequence[T]], Sequence[R | DomainError]]

MAX_GROUP = 256
IDLE_SECONDS = 5.0


class GroupCommit(Generic[T, R]):
    def __init__(self, make_session: sessionmaker[Session], handler: Handler[T, R]) -> None:
        self._make_session = make_session
        self._handler = handler
        self._queue: queue.SimpleQueue[tuple[T, concurrent.futures.Future[R]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, call: T) -> concurrent.futures.Future[R]:
        future: concurrent.futures.Future[R] = concurrent.futures.Future()
        self._queue.put((call, future))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="group-commit", daemon=True)
                self._thread.start()
        return future

    async def run(self, call: T) -> R:
        """Submit ``call`` and wait, without blocking the event loop, for its group to commit."""
        return await asyncio.wrap_future(self.submit(call))

    def _work(self) -> None:
        try:
            self._serve()
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
            group = [(call, future) for call, future in taken if future.set_running_or_notify_cancel()]
            if group:
                self._run(group)

    def _run(self, group: list[tuple[T, concurrent.futures.Future[R]]]) -> None:
        try:
            answers = self._transaction([call for call, _ in group])
        except Exception as exc:  # noqa: BLE001 - handed to the waiting calls, never lost
            if len(group) > 1:
                for one in group:
                    self._run([one])
            else:
                group[0][1].set_exception(exc)
            return
        except BaseException as exc:  # the thread is being stopped: no caller may wait for ever
            for _, future in group:
                future.set_exception(exc)
            raise
        for (_, future), answer in zip(group, answers, strict=True):
            if isinstance(answer, DomainError):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def _transaction(self, calls: list[T]) -> Sequence[R | DomainError]:
        with self._make_session() as session:
            try:
                answers = self._handler(session, calls)
                if len(answers) != len(calls):
                    raise RuntimeError("a group-commit handler must answer every call")
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return answers
