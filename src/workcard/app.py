"""The application factory: mounts every domain's pages and API, error handlers and middleware."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from swagger_ui_bundle import swagger_ui_path

from workcard import __version__
from workcard.config import Settings, get_settings
from workcard.db import make_engine, make_sessionmaker
from workcard.web import errors as web_errors
from workcard.web.middleware import RequestContext, configure_logging
from workcard.web.partner import problem_content
from workcard.web.templating import PACKAGE

API_DESCRIPTION = """\
The published interface of the Work System (SPEC W5) for other authorities' systems: social
insurance, card management and public security. Authenticate with HTTP Basic using the client id
and secret issued by the platform's administrator; each client has scopes and a rate limit, and every
call is recorded in the audit trail. Errors are RFC 9457 problem documents (`application/problem+json`)
in the language of Accept-Language (Chinese or English). A 429 or 503 answer carries Retry-After: send
the same call again after that many seconds. Keep-alive connections are welcome.
"""
# Swagger UI's files come from the swagger-ui-bundle-v2 package and are served here, not from a CDN: the
# platform works with no network beyond itself (docs/decisions/0009-offline-api-docs.md).
SWAGGER_UI = "/static/swagger-ui"
FAVICON = "/static/favicon.svg"


def create_api() -> FastAPI:
    from workcard.credentials import api as credentials_api
    from workcard.permits import api as permits_api

    api = FastAPI(
        title="workcard partner API",
        version="1.0.0",
        description=API_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )

    @api.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{api.openapi_url}",
            title=f"{api.title} - Swagger UI",
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=FAVICON,
            swagger_ui_parameters={"validatorUrl": None},  # no badge from the online validator
        )

    api.include_router(permits_api.router)
    api.include_router(credentials_api.router)
    web_errors.install(api)
    document = api.openapi
    api.openapi = lambda: api.openapi_schema or problem_content(document())  # type: ignore[method-assign]
    return api


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    from workcard.credentials import pages as credentials_pages
    from workcard.ecard import pages as ecard_pages
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

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        """For what asks the conventional address (PDF views, tools); pages name the icon themselves."""
        return RedirectResponse(FAVICON, status_code=301)

    api = create_api()
    api.state.sessionmaker = app.state.sessionmaker
    api.state.settings = settings
    app.mount("/api/v1", api)
    app.mount(SWAGGER_UI, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")  # before /static
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "web" / "static")), name="static")
    for module in (web_pages, iam_pages, permits_pages, legacy_pages, credentials_pages, ecard_pages):
        app.include_router(module.router)
    app.add_middleware(RequestContext, settings=settings)
    return app
