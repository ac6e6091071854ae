"""The audit trail (SPEC X5): who did what, when, to which record, with the state before and after.

Records are hash-chained: each record's hash covers its own content and the previous record's hash,
so a changed, inserted or deleted record breaks the chain and ``workcard audit verify`` finds it.
There are ``LANES`` chains ("lanes"), each with its head row (``audit_head``, locked with SELECT ... FOR
UPDATE while a transaction appends to that lane), which keeps the lane's count and last hash, so a
record cut from the end of a lane is detected too. A Session's records go to lane 1; a group of partner
calls on PostgreSQL takes whichever lane no other transaction holds (``PG_LOCK_FREE_LANE``), so that
concurrent groups do not queue on one row. See docs/decisions/0012-audit-lanes.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Connection, SmallInteger, String, bindparam, event, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from workcard import clock, txlocal
from workcard.db import Base

LANES = 16  # the migration makes their heads; ``verify`` requires every one
_PENDING = "audit_pending"
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class AuditRecord(Base):
    __tablename__ = "audit_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(80), index=True)
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    lane: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")


def genesis(lane: int) -> str:
    """The hash lane ``lane``'s first record links to: different for each lane, so that two lanes'
    first records never have the same hash; lane 1's is all zeros, the one chain's before there were
    lanes."""
    return f"{lane - 1:064x}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@contextmanager
def in_request(request_id: str | None) -> Iterator[None]:
    """Records made inside carry ``request_id``: for work done for a request outside its context (a
    group of calls run by ``workcard.groupcommit``)."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


def _digest(prev_hash: str, at: dt.datetime, fields: dict[str, Any]) -> str:
    body = json.dumps(
        {"prev": prev_hash, "at": at.astimezone(dt.UTC).isoformat(), **fields},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _fields(rec: AuditRecord) -> dict[str, Any]:
    return {
        "actor": rec.actor,
        "action": rec.action,
        "subject_type": rec.subject_type,
        "subject_id": rec.subject_id,
        "before": rec.before,
        "after": rec.after,
        "request_id": rec.request_id,
    }


class AuditHead(Base):
    """A lane's head row (``id`` is the lane): the lock its writers queue on, and what the lane must end
    with."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    count: Mapped[int]
    last_hash: Mapped[str] = mapped_column(String(64))


# Built once and run on the connection (Core): every audited transaction runs them.
_LOCK_HEAD = select(AuditHead.count, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
_INSERT_RECORDS = insert(AuditRecord)
_MOVE_HEAD = (
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(count=bindparam("new_count"), last_hash=bindparam("new_hash"))
)


def _lock_head(connection: Connection) -> tuple[int, str]:
    """Lock lane 1's head row; return its count and last hash."""
    row = connection.execute(_LOCK_HEAD).first()
    if row is None:  # the migration creates it; this covers a database emptied by hand
        connection.execute(insert(AuditHead).values(id=1, count=0, last_hash=genesis(1)))
        return 0, genesis(1)
    return row.count, row.last_hash


class Records:
    """The audit records of work that runs outside a Session: a group of partner calls on PostgreSQL
    (``web.partner``), which writes them with its own statements (``chain``, ``PG_*``). ``record`` keeps
    them here, in order."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []


def record(
    session: Session | Records,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add a record to the caller's transaction. Records are appended to the chain when the transaction
    commits (or earlier, when the same session reads the audit table), so the chain's head is locked
    only for the last moment of a transaction, not for all of it."""
    row = {
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": str(subject_id)[:64],
        "before": _jsonable(before),
        "after": _jsonable(after),
        "request_id": request_id_var.get(),
        "at": clock.now(),
    }
    if isinstance(session, Records):
        session.pending.append(row)
    else:
        txlocal.add(session, _PENDING, row)


def chain(pending: list[dict[str, Any]], prev: str) -> str:
    """Link ``pending`` (rows made by ``record``) to the chain whose last hash is ``prev``: each row gets
    its ``prev_hash`` and ``hash``. Returns the new last hash."""
    for row in pending:
        at = row.pop("at")
        row["hash"] = _digest(prev, at, row)
        row.update(at=at, prev_hash=prev)
        prev = row["hash"]
    return prev


def write_pending(session: Session) -> None:
    """Append the transaction's pending records to the chain, in order, in one round trip."""
    pending = txlocal.take(session, _PENDING)
    if not pending:
        return
    session.flush()  # the transaction's own changes first, so the head is locked for as short as can be
    connection = session.connection()
    count, prev = _lock_head(connection)
    last = chain(pending, prev)
    connection.execute(_INSERT_RECORDS, pending)
    connection.execute(_MOVE_HEAD, {"new_count": count + len(pending), "new_hash": last})


# The same three steps in SQL for PostgreSQL, for work that runs on the driver (``web.partner``); the
# records' ``before`` and ``after`` are passed as ``psycopg.types.json.Json``.
PG_LOCK_HEAD = (  # lane 1, made first if missing, as ``_lock_head`` does (the migration makes it)
    f"INSERT INTO audit_head (id, count, last_hash) VALUES (1, 0, '{genesis(1)}') ON CONFLICT (id) DO NOTHING; "
    "SELECT id, count, last_hash FROM audit_head WHERE id = 1 FOR UPDATE"
)
# Any lane no other transaction holds, starting from one that depends on the connection, so that each
# connection keeps to a lane of its own while there are enough; no row when every lane is held (then
# PG_LOCK_HEAD waits for lane 1).
PG_LOCK_FREE_LANE = (
    f"SELECT id, count, last_hash FROM audit_head WHERE id BETWEEN 1 AND {LANES} "
    f"ORDER BY (id + pg_backend_pid()) % {LANES} LIMIT 1 FOR UPDATE SKIP LOCKED"
)
PG_INSERT_RECORDS = (
    "INSERT INTO audit_record (at, actor, action, subject_type, subject_id, before, after, request_id, "
    "prev_hash, hash, lane) VALUES (%(at)s, %(actor)s, %(action)s, %(subject_type)s, %(subject_id)s, "
    "%(before)s, %(after)s, %(request_id)s, %(prev_hash)s, %(hash)s, %(lane)s)"
)
PG_MOVE_HEAD = "UPDATE audit_head SET count = %(new_count)s, last_hash = %(new_hash)s WHERE id = %(lane)s"
PG_WAIT_FOR_LANE = "SELECT 1 FROM audit_head WHERE id = %(lane)s FOR UPDATE"
PG_RECORD_WRITTEN = "SELECT EXISTS (SELECT 1 FROM audit_record WHERE hash = %(hash)s) AS written"


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "do_orm_execute")
def _write_before_reading(state: ORMExecuteState) -> None:
    if (  # not inside a savepoint: its rollback would take the transaction's earlier records with it
        state.is_select
        and not state.session.in_nested_transaction()
        and txlocal.has(state.session, _PENDING)
        and any(m.class_ is AuditRecord for m in state.all_mappers)
    ):
        write_pending(state.session)


@dataclass
class VerifyReport:
    checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, batch: int = 5000) -> VerifyReport:
    """Walk the records in id order, each lane's chain at once, and report every record whose hash or
    link is wrong, and every lane whose head does not match its last record.

    The heads and every batch of records are read in one snapshot: on PostgreSQL a transaction begun
    here is REPEATABLE READ (a caller's transaction already begun should be too, if others write
    meanwhile). Otherwise records committed during the walk would be missed or half seen: lanes commit
    independently, so a record can commit after one with a higher id was read."""
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    heads = {h.id: h for h in session.execute(select(AuditHead.id, AuditHead.count, AuditHead.last_hash))}
    prev = {lane: genesis(lane) for lane in range(1, LANES + 1)}
    counts = dict.fromkeys(prev, 0)
    last = dict.fromkeys(prev, 0)
    checked = 0
    problems: list[str] = []
    last_id = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditRecord).where(AuditRecord.id > last_id).order_by(AuditRecord.id).limit(batch)
            )
        )
        if not rows:
            break
        for rec in rows:
            checked += 1
            last_id = rec.id
            if rec.lane not in prev:
                problems.append(f"record {rec.id}: in lane {rec.lane}, which does not exist (changed)")
                continue
            if rec.prev_hash != prev[rec.lane]:
                problems.append(f"record {rec.id}: link broken (a record before it was changed or deleted)")
            if _digest(rec.prev_hash, rec.at, _fields(rec)) != rec.hash:
                problems.append(f"record {rec.id}: content does not match its hash (changed)")
            prev[rec.lane] = rec.hash
            counts[rec.lane] += 1
            last[rec.lane] = rec.id
        session.expunge_all()
    for lane in prev:
        head = heads.get(lane)
        if head is None:
            problems.append(f"lane {lane}: its head is missing (deleted)")
        elif head.count != counts[lane] or head.last_hash != prev[lane]:
            problems.append(
                f"lane {lane}: ends at record {last[lane]} with {counts[lane]} records, but {head.count} were "
                "written (records were deleted from the end, or the head was changed)"
            )
    return VerifyReport(checked=checked, problems=problems)
