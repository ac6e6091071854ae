"""Request-scoped dependencies shared by every domain's pages and API."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from workcard.errors import DomainError
from workcard.iam import service as iam
from workcard.iam.models import StaffUser
from workcard.iam.roles import Role

SESSION_COOKIE = "wc_session"
log = logging.getLogger(__name__)


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

    @classmethod
    def of(cls, user: StaffUser | None) -> Viewer | None:
        return cls(user.id, user.username, user.display_name, user.role, user.employer_id) if user else None


def optional_user(request: Request, db: Session = Depends(get_db, scope="function")) -> StaffUser | None:
    if not hasattr(request.state, "user"):
        user = iam.user_for_token(db, request.cookies.get(SESSION_COOKIE))
        request.state.user = user
        request.state.viewer = Viewer.of(user)
    return request.state.user


def viewer(request: Request) -> Viewer | None:
    """The signed-in person, for a page drawn where no route dependency has looked (an error page: the
    request failed before its route ran, e.g. a refused CSRF token or an unreadable form): the snapshot
    ``optional_user`` took, else one read of the session cookie in a session of its own. ``None`` when
    the database cannot be read, so that the error page can still be drawn."""
    if not hasattr(request.state, "viewer"):
        found = None
        if token := request.cookies.get(SESSION_COOKIE):
            try:
                with request.app.state.sessionmaker() as session:
                    found = Viewer.of(iam.user_for_token(session, token))
            except SQLAlchemyError:
                log.warning("error page drawn without the signed-in person: the database is unreadable")
        request.state.viewer = found
    return request.state.viewer


def signed_in(user: StaffUser | None = Depends(optional_user)) -> StaffUser:
    return iam.require_role(user, *Role)


def role(*roles: Role):  # type: ignore[no-untyped-def]
    def dependency(user: StaffUser | None = Depends(optional_user)) -> StaffUser:
        return iam.require_role(user, *roles)

    return dependency
