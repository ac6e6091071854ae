"""The application factory: mounts every domain's pages and API, error handlers and middleware."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from workcard import __version__
from workcard.config import Settings, get_settings
from workcard.db import make_engine, make_sessionmaker
from workcard.web import errors as web_errors
from workcard.web.middleware import RequestContext, configure_logging
from workcard.web.templating import PACKAGE

API_DESCRIPTION = """\
The published interface of the Work System (SPEC W5) for other authorities' systems: social
insurance, card management and public security. Authenticate with HTTP Basic using the client id
and secret issued by the platform's administrator; each client has scopes and a rate limit, and every
call is recorded in the audit trail. Errors are RFC 9457 problem documents.
"""


def create_api() -> FastAPI:
    from workcard.credentials import api as credentials_api
    from workcard.permits import api as permits_api

    api = FastAPI(
        title="workcard partner API",
        version="1.0.0",
        description=API_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.include_router(permits_api.router)
    api.include_router(credentials_api.router)
    web_errors.install(api)
    return api


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    from workcard.credentials import pages as credentials_pages
    from workcard.iam import pages as iam_pages
    from workcard.permits import legacy_pages
    from workcard.permits import pages as permits_pages
    from workcard.web import pages as web_pages

    engine = make_engine(settings.resolved_database_url())
    app = FastAPI(title="workcard", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    web_errors.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> JSONResponse:
        try:
            with request.app.state.sessionmaker() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            logging.getLogger(__name__).exception("health check: database unreachable")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": engine.dialect.name})

    api = create_api()
    api.state.sessionmaker = app.state.sessionmaker
    api.state.settings = settings
    app.mount("/api/v1", api)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "web" / "static")), name="static")
    for module in (web_pages, iam_pages, permits_pages, legacy_pages, credentials_pages):
        app.include_router(module.router)
    app.add_middleware(RequestContext, settings=settings)
    return app
