"""Scheduled work of the Work System. Every job is idempotent and safe to run from several
processes at once."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from workcard import audit, clock, events
from workcard.permits.models import Permit
from workcard.permits.states import PermitEvent, PermitState, next_permit_state

VALID = PermitState.VALID.value
EXPIRED = next_permit_state(PermitState.VALID, PermitEvent.EXPIRE).value
EXPIRY_ACTOR = "system:expiry-job"


def expire_due(session: Session) -> int:
    """Mark the permits of the earliest due end date as expired (SPEC W4): one day's cohort per call.

    Finding the day reads one entry of the partial index ``ix_permit_due``; the UPDATE then has the
    shape of a hand-written one (``status = 'valid' AND valid_until = :day``) and touches only that
    cohort. Several runners at once are safe: a second UPDATE of the same cohort waits for the first to
    commit, re-checks ``status = 'valid'`` and changes nothing, and its runner moves on to the next day,
    so each permit is expired, audited and announced exactly once. The cohort is one audit record
    listing every permit with its before and after, and one ``permits.expired`` event listing them
    (docs/decisions/0007-batch-jobs.md). Returns how many permits this call expired, 0 when none is
    due; the caller commits and calls again until 0."""
    today = clock.today()
    while True:
        day = session.scalar(
            select(func.min(Permit.valid_until)).where(Permit.status == VALID, Permit.valid_until < today)
        )
        if day is None:
            return 0
        rows = session.execute(
            update(Permit)
            .where(Permit.status == VALID, Permit.valid_until == day)
            .values(status=EXPIRED, version=Permit.version + 1)
            .returning(Permit.id, Permit.number)
            .execution_options(synchronize_session=False)
        ).all()
        if rows:  # else another runner expired this cohort meanwhile: look for the next day
            break
    listed = [{"id": pid, "number": number} for pid, number in rows]
    audit.record(
        session, actor=EXPIRY_ACTOR, action="permit.expire", subject_type="permit_batch",
        subject_id=f"{day.isoformat()}:{len(rows)}", before={"status": VALID},
        after={"status": EXPIRED, "valid_until": day.isoformat(), "permits": listed},
    )  # fmt: skip
    events.publish(session, "permits.expired", "permit_batch", len(rows), valid_until=day.isoformat(),
                   permits=listed)  # fmt: skip
    return len(rows)


def expiry_record(session: Session, permit: Permit) -> audit.AuditRecord | None:
    """The audit record of the cohort in which ``expire_due`` expired this permit, for its history
    (the record is the cohort's, so it is not among the permit's own records)."""
    if permit.status != EXPIRED:
        return None
    cohorts = session.scalars(
        select(audit.AuditRecord).where(
            audit.AuditRecord.action == "permit.expire",
            audit.AuditRecord.subject_type == "permit_batch",
            audit.AuditRecord.subject_id.startswith(f"{permit.valid_until.isoformat()}:", autoescape=True),
        )
    )
    return next((r for r in cohorts if any(p["id"] == permit.id for p in r.after["permits"])), None)
