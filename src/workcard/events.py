"""Domain events: written to the ``domain_event`` table in the same transaction as the change (so no
event is lost or invented by a crash), and handed to in-process subscribers after the commit.

Later domains subscribe with :func:`subscribe`; a subscriber that fails is logged and does not undo
the change it reacts to. A consumer that must see every event, across processes and restarts, reads
the table in id order from the last id it handled."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, String, event, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from workcard import clock, txlocal
from workcard.db import Base

log = logging.getLogger(__name__)
Subscriber = Callable[["DomainEvent"], None]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)
_PENDING = "events"


class DomainEvent(Base):
    __tablename__ = "domain_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    type: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


def subscribe(event_type: str, fn: Subscriber) -> None:
    if fn not in _subscribers[event_type]:
        _subscribers[event_type].append(fn)


def publish(session: Session, event_type: str, subject_type: str, subject_id: int, **payload: Any) -> None:
    publish_many(session, event_type, subject_type, [(subject_id, payload)])


def publish_many(
    session: Session, event_type: str, subject_type: str, items: list[tuple[int, dict[str, Any]]]
) -> None:
    """Publish one event per (subject id, payload), in one round trip."""
    if not items:
        return
    at = clock.now()
    rows = [
        {"at": at, "type": event_type, "subject_type": subject_type, "subject_id": sid, "payload": payload}
        for sid, payload in items
    ]
    written = session.scalars(insert(DomainEvent).returning(DomainEvent, sort_by_parameter_order=True), rows)
    for ev in written:
        txlocal.add(session, _PENDING, ev)


@event.listens_for(Session, "after_commit")
def _dispatch(session: Session) -> None:
    if session.get_nested_transaction() is not None:  # a savepoint was released, not the transaction
        return
    for ev in txlocal.take(session, _PENDING):
        for fn in list(_subscribers.get(ev.type, ())):
            try:
                fn(ev)
            except Exception:  # a subscriber's failure must not undo the committed change
                log.exception("event subscriber %s failed for %s #%s", fn, ev.type, ev.id)
