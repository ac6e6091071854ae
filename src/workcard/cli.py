"""The ``workcard`` command: serve, demo, db upgrade, jobs, audit verify, legacy import."""

from __future__ import annotations

import sys

import typer

from workcard.config import get_settings
from workcard.credentials import commands as credential_commands

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="workcard: work permits and social security cards",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
jobs_app = typer.Typer(no_args_is_help=True, help="Scheduled jobs (run them from cron or a timer).")
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail.")
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(audit_app, name="audit")
app.add_typer(credential_commands.keys_app, name="keys")
app.command("verify")(credential_commands.verify_command)
jobs_app.command("status-list")(credential_commands.status_list_job)


def _sessionmaker():  # type: ignore[no-untyped-def]
    from workcard.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(get_settings().resolved_database_url()))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    from workcard.migrate import upgrade

    url = get_settings().resolved_database_url()
    upgrade(url)
    typer.echo(f"database at newest schema: {url.split('@')[-1]}")


@app.command()
def serve(
    workers: int = typer.Option(1, help="Server processes (they share the database)."),
    reload: bool = typer.Option(False, help="Restart on code changes (development)."),
) -> None:
    """Serve the platform on WORKCARD_HOST:WORKCARD_PORT."""
    import uvicorn

    from workcard import serving
    from workcard.web.middleware import configure_logging

    settings = get_settings()
    settings.resolved_secret_key()  # made once, before several workers race for it
    problem = serving.taken(settings.host, settings.port)
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(1)
    options = {"app": "workcard.asgi:app", "log_config": None, "access_log": False, "proxy_headers": True}
    if workers > 1 and not reload and serving.spreads_connections():
        configure_logging(settings.log_level)
        raise typer.Exit(serving.serve(settings.host, settings.port, workers, settings.var_dir, **options))
    uvicorn.run(host=settings.host, port=settings.port, workers=workers, reload=reload, **options)  # type: ignore[arg-type]


@app.command()
def demo() -> None:
    """Load the demo data (idempotent) and print how to sign in as each role."""
    from workcard.demo import load_demo

    maker = _sessionmaker()
    with maker() as session:
        lines = load_demo(session)
        session.commit()
    base = get_settings().resolved_base_url()
    typer.echo(f"\nDemo data ready. Open {base}/ and sign in as:\n")
    for line in lines:
        typer.echo("  " + line)
    typer.echo("")


@jobs_app.command("expire-permits")
def expire_permits() -> None:
    """Mark permits past their end date as expired. Idempotent; safe to run in several processes."""
    from workcard.permits.jobs import expire_due

    maker = _sessionmaker()
    total = 0
    while True:
        with maker() as session:
            done = expire_due(session)
            session.commit()
        total += done
        if done == 0:
            break
    typer.echo(f"expired {total} permit(s)")


@jobs_app.command("housekeeping")
def housekeeping() -> None:
    """Delete ended sign-in and e-card sessions, spent face challenges and old rate-limit windows."""
    from workcard.ecard import service as ecard
    from workcard.iam import limits
    from workcard.iam import service as iam

    maker = _sessionmaker()
    with maker() as session:
        sessions = iam.purge_sessions(session) + ecard.purge(session)
        windows = limits.purge_old(session)
        session.commit()
    typer.echo(f"removed {sessions} ended session(s) and {windows} old counter window(s)")


@app.command("sms")
def sms(
    to: str = typer.Option("", "--to", help="Only the messages to this phone number."),
    limit: int = typer.Option(10, min=1, max=1000, help="How many of the newest messages."),
) -> None:
    """Read the SMS outbox: the text messages the platform sent (verification codes), newest first."""
    from workcard.notify import service as notify

    with _sessionmaker()() as session:
        messages = notify.sent(session, phone=to.strip() or None, limit=limit)
    if not messages:
        typer.echo("no text messages" + (f" to {to}" if to else ""))
    for m in messages:
        typer.echo(f"{m.sent_at:%Y-%m-%d %H:%M:%S} UTC  to {m.phone}: {m.body}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit trail's hash chain; exit 1 if any record was changed, inserted or deleted."""
    from workcard import audit

    maker = _sessionmaker()
    with maker() as session:
        report = audit.verify(session)
    for problem in report.problems:
        typer.echo(problem, err=True)
    if not report.ok:
        typer.echo(
            f"audit trail BROKEN: {len(report.problems)} problem(s) in {report.checked} record(s)", err=True
        )
        raise typer.Exit(1)
    typer.echo(f"audit trail intact: {report.checked} record(s)")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
