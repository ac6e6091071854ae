"""Things a transaction keeps until it commits (pending audit records, events to announce), each
tagged with the transaction or savepoint that made it, so that rolling back a savepoint forgets only
what was made inside it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "txlocal"


def add(session: Session, kind: str, item: Any) -> None:
    """Keep ``item`` under ``kind`` for the session's innermost transaction (begun if need be)."""
    session.connection()  # begin, so that a rollback is seen
    txn = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_KEY, {}).setdefault(kind, []).append((txn, item))


def take(session: Session, kind: str) -> list[Any]:
    """Remove and return everything kept under ``kind``, oldest first."""
    return [item for _txn, item in session.info.get(_KEY, {}).pop(kind, [])]


def has(session: Session, kind: str) -> bool:
    return bool(session.info.get(_KEY, {}).get(kind))


def _within(txn: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while txn is not None:
        if txn is ended:
            return True
        txn = txn.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous: SessionTransaction) -> None:
    kept = session.info.get(_KEY)
    if not kept:
        return
    for kind, items in list(kept.items()):
        kept[kind] = [(txn, item) for txn, item in items if not _within(txn, previous)]
