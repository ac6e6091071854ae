"""What every domain's partner API shares: HTTP Basic credentials checked with scope and rate limit,
and the problem document that errors are answered with (RFC 9457)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel
from sqlalchemy.orm import Session

from workcard.iam import limits
from workcard.iam import service as iam
from workcard.iam.models import PartnerClient
from workcard.iam.roles import Scope
from workcard.web.deps import get_db

basic = HTTPBasic(auto_error=False, description="Client id and secret issued by the platform administrator.")


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str


ERRORS = {
    code: {"model": Problem, "content": {"application/problem+json": {}}} for code in (401, 403, 422, 429)
}


def partner(scope: Scope):  # type: ignore[no-untyped-def]
    """A route dependency: the calling partner system, authenticated, allowed ``scope`` and counted."""

    def dependency(
        request: Request,
        credentials: HTTPBasicCredentials | None = Depends(basic),
        db: Session = Depends(get_db, scope="function"),
    ) -> PartnerClient:
        client = iam.authenticate_partner(
            db,
            client_id=credentials.username if credentials else None,
            secret=credentials.password if credentials else None,
            scope=scope,
            path=request.url.path,
        )
        # The count is its own small unit of work: commit it now, so the partner's counter row is not
        # held locked while the call does its work; the call's work is the request's next transaction.
        limits.relax_durability(db)
        db.commit()
        return client

    return dependency
