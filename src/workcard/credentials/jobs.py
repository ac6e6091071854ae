"""Keeping the status list current. ``rebuild_status_list`` is run by ``workcard jobs status-list`` (daily
at least: entries also change with the date) and, after every commit that cancels or expires permits, by
the subscriber below. Idempotent and safe to run from several processes at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, object_session

from workcard import clock, events
from workcard.credentials import keys, lists
from workcard.credentials.models import StatusList
from workcard.permits import service as permits

log = logging.getLogger(__name__)
# A permit stays on the list while one of its codes could still be unexpired: a letter code expires at
# the end of the day after the permit's last day (keys.letter_expiry); one more day for clock skew.
RETENTION = dt.timedelta(days=2)
_COVERED = "credentials.status_list_covered_event"


def _lock_row(session: Session) -> StatusList:
    """The status list row, locked (made empty first if missing), so concurrent rebuilds queue."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(StatusList)
        .values(id=1, issued_at=clock.now(), etag="", digest="", entries=0, body=b"")
        .on_conflict_do_nothing(index_elements=[StatusList.id])
    )
    row = session.scalar(
        select(StatusList)
        .where(StatusList.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


def rebuild_status_list(session: Session) -> bool:
    """Write a new status list if its entries changed; return whether it did. The row is locked before
    the permits are read, so a slower run cannot overwrite a newer list with an older one."""
    row = _lock_row(session)
    numbers = permits.ended_permit_numbers(session, ended_since=clock.today() - RETENTION)
    entries = sorted({lists.status_entry(n) for n in numbers})
    digest = hashlib.sha256(b"".join(entries)).hexdigest()
    if row.body and row.digest == digest:
        return False
    now = clock.now()
    body = lists.sign_status_list(entries, issued_at=int(now.timestamp()), anchor=keys.anchor_private())
    row.issued_at = now
    row.body = body
    row.digest = digest
    row.entries = len(entries)
    row.etag = lists.etag_of(body)
    session.flush()
    return True


def _on_permit_ended(event: events.DomainEvent) -> None:
    """After a commit that cancelled or expired permits: rebuild the status list in a session of its
    own, once per commit (the expiry job announces thousands of permits in one commit). A failure is
    logged by ``events`` and leaves the list for the next run of the job."""
    source = object_session(event)
    if source is None:
        return
    if event.id <= source.info.get(_COVERED, 0):
        return
    with Session(
        bind=source.get_bind(), join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as s:
        covered = s.scalar(select(func.max(events.DomainEvent.id))) or 0
        rebuild_status_list(s)
        s.commit()
    source.info[_COVERED] = covered


for _type in ("permit.cancelled", "permits.expired"):
    events.subscribe(_type, _on_permit_ended)
