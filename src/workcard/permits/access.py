"""The only way to load Work System rows for an actor (SPEC X4). Employer staff see their own
employer's records only; a record of another employer looks exactly like a missing one (404)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from workcard.errors import NotFound
from workcard.iam.models import StaffUser
from workcard.iam.roles import Role
from workcard.permits.models import Application, Employer, Foreigner, Permit
from workcard.web.vocabulary import N_

T = TypeVar("T", Application, Foreigner, Permit)
_MISSING = {
    Application: N_("No such application."),
    Foreigner: N_("No such person."),
    Permit: N_("No such permit."),
}
OFFICIAL_ROLES = {Role.ADMIN.value, Role.PERMIT_OFFICER.value}


def sees_all(actor: StaffUser) -> bool:
    return actor.role in OFFICIAL_ROLES


def scoped(actor: StaffUser, stmt: Select[Any], model: type[T]) -> Select[Any]:
    """Restrict a query on ``model`` to what ``actor`` may see."""
    if sees_all(actor):
        return stmt
    if actor.role == Role.EMPLOYER_STAFF.value and actor.employer_id is not None:
        return stmt.where(model.employer_id == actor.employer_id)
    return stmt.where(False)


def load(session: Session, actor: StaffUser, model: type[T], row_id: int, *, for_update: bool = False) -> T:
    stmt = scoped(actor, select(model).where(model.id == row_id), model)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(_MISSING[model])
    return row


def load_employer(session: Session, actor: StaffUser, employer_id: int) -> Employer:
    if not sees_all(actor) and actor.employer_id != employer_id:
        raise NotFound("No such employer.")
    employer = session.get(Employer, employer_id)
    if employer is None:
        raise NotFound("No such employer.")
    return employer
