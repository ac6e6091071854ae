"""Request-scoped dependencies shared by every domain's pages and API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from workcard.errors import DomainError
from workcard.iam import service as iam
from workcard.iam.models import StaffUser
from workcard.iam.roles import Role

SESSION_COOKIE = "wc_session"


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back when it raises
    (except for the failures that must leave a trace, see ``DomainError.keep_changes``). Routes take it
    as ``Depends(get_db, scope="function")``: the commit then happens before the response is sent, so a
    person or partner is never told of a change that did not commit."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except DomainError as exc:
        if exc.keep_changes:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@dataclass(frozen=True)
class Viewer:
    """What pages show of the signed-in person; a plain copy, so that an error page can still be
    drawn after the request's transaction was rolled back."""

    id: int
    username: str
    display_name: str
    role: str
    employer_id: int | None


def optional_user(request: Request, db: Session = Depends(get_db, scope="function")) -> StaffUser | None:
    if not hasattr(request.state, "user"):
        user = iam.user_for_token(db, request.cookies.get(SESSION_COOKIE))
        request.state.user = user
        request.state.viewer = (
            Viewer(user.id, user.username, user.display_name, user.role, user.employer_id) if user else None
        )
    return request.state.user


def signed_in(user: StaffUser | None = Depends(optional_user)) -> StaffUser:
    return iam.require_role(user, *Role)


def role(*roles: Role):  # type: ignore[no-untyped-def]
    def dependency(user: StaffUser | None = Depends(optional_user)) -> StaffUser:
        return iam.require_role(user, *roles)

    return dependency
