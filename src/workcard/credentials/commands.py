"""The credentials' commands, registered by ``workcard.cli``: ``workcard keys ...``, ``workcard verify``
and ``workcard jobs status-list``. Heavy imports happen inside the commands, so ``workcard --help``
stays fast."""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from pathlib import Path

import typer

keys_app = typer.Typer(no_args_is_help=True, help="The keys that sign permit QR codes, and the trust anchor.")


def _sessionmaker():  # type: ignore[no-untyped-def]
    from workcard.config import get_settings
    from workcard.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(get_settings().resolved_database_url()))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:80]
    except Exception:  # no user name in some containers
        return "cli"


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@keys_app.command("list")
def keys_list() -> None:
    """List the signing keys (public data only) and say which one signs now."""
    from workcard.credentials import keys

    with _sessionmaker()() as session:
        rows = keys.list_keys(session)
    if not rows:
        typer.echo(
            "no signing key yet (the first is made when the first code is issued, or by `keys rotate`)"
        )
    now = dt.datetime.now(dt.UTC)
    typer.echo(f"{'kid':<12} {'alg':<6} {'signs from':<21} {'signs until':<21} {'verify until':<21} state")
    for k in rows:
        state = "current" if k.signing else "retired" if k.retired_at else (
            "trusted" if keys.trusted_at(k, now) else "lapsed")  # fmt: skip
        typer.echo(f"{k.kid:<12} {keys.ALG_NAMES.get(k.alg, str(k.alg)):<6} {_when(k.signs_from):<21} "
                   f"{_when(k.signs_until):<21} {_when(k.verify_until):<21} {state}")  # fmt: skip


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key; the old one stops signing but stays trusted for what it signed."""
    from workcard.credentials import keys

    with _sessionmaker()() as session:
        old = keys.current_key(session)
        new = keys.rotate(session, _actor())
        session.commit()
        if old is not None and old.kid != new.kid:
            typer.echo(f"{old.kid} no longer signs; its codes are accepted until {_when(old.verify_until)}")
    typer.echo(f"{new.kid} signs from now on (private key in {keys.key_dir()})")


@keys_app.command("retire")
def keys_retire(kid: str = typer.Argument(..., help="The key to withdraw, e.g. wc-2611-a.")) -> None:
    """Withdraw a key that no longer signs (e.g. exposed): its codes become unknown_key at once."""
    from workcard.credentials import keys
    from workcard.errors import DomainError

    with _sessionmaker()() as session:
        try:
            keys.retire(session, _actor(), kid)
        except DomainError as exc:
            typer.echo(exc.message.format(**exc.params), err=True)
            raise typer.Exit(1) from None
        session.commit()
    typer.echo(f"{kid} retired; verifiers stop trusting it at their next sync")


@keys_app.command("anchor")
def keys_anchor() -> None:
    """Print the trust anchor's public key (base64url) for verifiers to pin: `workcard verify --sync URL
    --anchor KEY`. Give it to them out of band, not over the network they sync from."""
    from workcard.credentials import keys, lists

    typer.echo(lists.b64url(keys.anchor_public_raw()))


def status_list_job() -> None:
    """Rebuild the status list of cancelled and expired permits if it changed (run it daily at least)."""
    from workcard.credentials import jobs

    with _sessionmaker()() as session:
        changed = jobs.rebuild_status_list(session)
        session.commit()
        from workcard.credentials.models import StatusList

        row = session.get(StatusList, 1)
    assert row is not None
    word = "written" if changed else "unchanged"
    typer.echo(
        f"status list {word}: {row.entries} entr{'y' if row.entries == 1 else 'ies'}, issued {_when(row.issued_at)}"
    )


def verify_command(
    text: str | None = typer.Argument(
        None, help="The QR code's text (WC2:...); '-' reads it from standard input."
    ),
    image: Path | None = typer.Option(
        None, "--image", help="A photo (JPEG or PNG) of the QR code.", exists=True, dir_okay=False
    ),  # fmt: skip
    sync: str | None = typer.Option(
        None, "--sync", metavar="URL", help="First fetch the trust and status lists."
    ),
    directory: Path = typer.Option(
        Path("~/.cache/workcard-verify"), "--dir", help="Where the synced lists are kept."
    ),
    anchor: str | None = typer.Option(
        None, "--anchor", help="Pin this trust anchor (from `workcard keys anchor`)."
    ),
    lang: str | None = typer.Option(None, "--lang", help="zh_CN or en (default: WORKCARD_DEFAULT_LOCALE)."),
) -> None:
    """Verify a permit QR code offline, with lists synced earlier. Exit code 0: valid; 1: any other
    verdict; 2: nothing could be checked."""
    from workcard.config import get_settings
    from workcard.web import i18n

    token = i18n.current_locale.set(lang if lang in i18n.LOCALES else get_settings().default_locale)
    try:
        _verify(text, image, sync, directory, anchor)
    finally:
        i18n.current_locale.reset(token)


def _verify(
    text: str | None, image: Path | None, sync: str | None, directory: Path, anchor: str | None
) -> None:
    from workcard import clock
    from workcard.credentials import offline
    from workcard.credentials.qrimage import decode_image
    from workcard.errors import InvalidInput
    from workcard.web import i18n

    if sync:
        try:
            report = offline.sync(sync, directory, anchor=anchor)
        except offline.OfflineError as exc:
            typer.echo(f"sync failed: {exc}", err=True)
            raise typer.Exit(2) from None
        if report.first_use:
            typer.echo(f"trusting the server's anchor on first use: {report.anchor}\n"
                       "  compare it with the output of `workcard keys anchor` on the server")  # fmt: skip
        typer.echo(
            f"synced at {_when(report.synced_at)} from {report.server}: {report.keys} key(s) "
            f"({'updated' if report.trust_list_changed else 'unchanged'}), {report.entries} status entr"
            f"{'y' if report.entries == 1 else 'ies'} ({'updated' if report.status_list_changed else 'unchanged'}, "
            f"issued {_when(report.status_list_issued_at)})"
        )
        if text is None and image is None:
            return
    if image is not None:
        try:
            (text,) = decode_image(image.read_bytes())
        except InvalidInput as exc:
            typer.echo(i18n.gettext(exc.message, **exc.params), err=True)
            raise typer.Exit(2) from None
    elif text == "-":
        text = sys.stdin.read()
    if not text:
        typer.echo("give the code's text, --image FILE or --sync URL (see --help)", err=True)
        raise typer.Exit(2)
    try:
        result = offline.verify(text, directory, now=clock.now())
    except offline.OfflineError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{result.verdict.upper()}: {i18n.gettext(result.reason, **result.params)}")
    c = result.claims
    if c is not None:
        issued = dt.datetime.fromtimestamp(c.issued_at, dt.UTC)
        typer.echo(f"  permit number  {c.permit_number}\n  holder name    {c.holder_name}\n"
                   f"  nationality    {c.nationality}\n  valid until    {c.valid_until.isoformat()}\n"
                   f"  code           {c.use}, issued {_when(issued)}, key {c.key_id}")  # fmt: skip
    hours = int(result.status_list_age.total_seconds() // 3600)
    typer.echo(f"status list is {hours} hour{'' if hours == 1 else 's'} old (last synced {_when(result.synced_at)}, "
               f"issued {_when(result.status_list_issued_at)})")  # fmt: skip
    raise typer.Exit(0 if result.verdict == "valid" else 1)
