"""The credentials' commands, registered by ``workcard.cli``: ``workcard keys ...``, ``workcard verify``
and ``workcard jobs status-list``. Heavy imports happen inside the commands, so ``workcard --help``
stays fast."""

from __future__ import annotations

import datetime as dt
import getpass
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from workcard.web.vocabulary import N_

if TYPE_CHECKING:
    from workcard.credentials import offline

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


STALE_AFTER_HOURS = 24  # verifiers sync once a day; lists last synced longer ago are stale
EXIT_VALID, EXIT_NOT_VALID, EXIT_UNCHECKED, EXIT_STALE = 0, 1, 2, 3
USE_WORDS = {"letter": N_("notification letter"), "ecard": N_("e-card")}


def verify_command(
    text: str | None = typer.Argument(
        None, help="The QR code's text (WC3:...); '-' reads it from standard input."
    ),
    image: Path | None = typer.Option(
        None, "--image", metavar="FILE", help="A photo (JPEG or PNG) of the QR code."
    ),
    sync: str | None = typer.Option(
        None,
        "--sync",
        metavar="URL",
        help="First fetch the trust and status lists from this server; given alone, only that.",
    ),
    directory: Path = typer.Option(
        Path("~/.cache/workcard-verify"),
        "--dir",
        help="Where the synced lists are kept (one directory per server).",
    ),
    anchor: str | None = typer.Option(
        None,
        "--anchor",
        help="Pin this trust anchor (from `workcard keys anchor` on the server) at the first "
        "sync, instead of trusting the server's own on first use.",
    ),
    stale_after: int = typer.Option(
        STALE_AFTER_HOURS,
        "--stale-after",
        metavar="HOURS",
        min=1,
        help="Warn, and exit 3 for a valid code, when the last sync is older than this.",
    ),
    lang: str | None = typer.Option(None, "--lang", help="zh_CN or en (default: WORKCARD_DEFAULT_LOCALE)."),
) -> None:
    """Verify a permit QR code offline, with the lists synced earlier: sync at least once a day.

    --sync URL alone only fetches the lists. The first sync trusts the server's trust anchor, and says so, unless --anchor pins it.

    Exit codes:
      0  valid
      3  valid, but the last sync is older than --stale-after hours (stale lists)
      1  any other verdict
      2  nothing could be checked: no lists yet, no code, a failed sync, bad input

    Stale lists do not know of later cancellations. Their age counts from the last sync recorded in DIR/state.json, a file of this machine that is not signed: it is only as trustworthy as the machine itself.
    """  # the paragraphs after the first are shown with their line breaks
    from workcard.config import get_settings
    from workcard.web import i18n

    chosen = i18n.normalise(lang) if lang else get_settings().default_locale
    token = i18n.current_locale.set(chosen or get_settings().default_locale)
    try:
        if chosen is None:
            _fail(i18n.gettext("The language “{lang}” is not supported; choose one of: {choices}.", lang=lang,
                               choices=", ".join(i18n.LOCALES)))  # fmt: skip
        _verify(text, image, sync, directory, anchor, dt.timedelta(hours=stale_after))
    finally:
        i18n.current_locale.reset(token)


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_UNCHECKED)


def _at(value: dt.datetime | None) -> str:
    from workcard.web import i18n

    return i18n.format_date(value) if value else "-"


def _width(text: str) -> int:
    """The columns a text takes in a terminal (a Chinese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _verify(
    text: str | None, image: Path | None, sync: str | None, directory: Path, anchor: str | None,
    stale_after: dt.timedelta,
) -> None:  # fmt: skip
    from workcard import clock
    from workcard.credentials import offline, verdicts
    from workcard.credentials.qrimage import decode_image
    from workcard.errors import DomainError
    from workcard.web import i18n

    if sync:
        try:
            report = offline.sync(sync, directory, anchor=anchor)
        except offline.OfflineError as exc:
            _fail(i18n.gettext("Sync failed: {reason}", reason=offline.explain(exc)))
        _say_synced(report)
        if text is None and image is None:
            return
    if image is not None:
        if text is not None:
            _fail(i18n.gettext("Give either the code's text or --image FILE, not both."))
        try:
            data = image.expanduser().read_bytes()
        except OSError:
            _fail(i18n.gettext("Cannot read the file {path}.", path=str(image)))
        try:
            (text,) = decode_image(data)
        except DomainError as exc:
            _fail(offline.explain(exc))
    elif text == "-":
        text = sys.stdin.read()
    if not text:
        _fail(i18n.gettext("Give the code's text, --image FILE or --sync URL (see --help)."))
    text = text.strip()
    if not text.startswith("WC") and len(text) < 4096 and Path(text).expanduser().is_file():
        _fail(
            i18n.gettext("{path} is a file: to read the QR code in a photo, use --image {path}.", path=text)
        )
    if len(text) > offline.MAX_TEXT:  # as the page and the API refuse it: no code is that long
        _fail(i18n.gettext("This text is too long for a permit QR code (at most {max} characters).",
                           max=offline.MAX_TEXT))  # fmt: skip
    try:
        result = offline.verify(text, directory, now=clock.now())
    except offline.OfflineError as exc:
        _fail(offline.explain(exc))
    reason = verdicts.reason_text(result.reason, result.params)
    typer.echo(
        i18n.gettext("{verdict}: {reason}", verdict=i18n.gettext(result.verdict).upper(), reason=reason)
    )
    age = result.status_list_age
    hours = max(0, int(age.total_seconds() // 3600))
    stale = age > stale_after
    if stale:
        typer.echo(i18n.ngettext(
            "WARNING: the lists were last synced {n} hour ago ({time}): permits cancelled since then are not "
            "known here. Sync again while online: workcard verify --sync {server}",
            "WARNING: the lists were last synced {n} hours ago ({time}): permits cancelled since then are not "
            "known here. Sync again while online: workcard verify --sync {server}",
            hours, time=_at(result.synced_at or result.status_list_issued_at), server=result.server or "URL",
        ))  # fmt: skip
    c = result.claims
    if c is not None:
        issued = dt.datetime.fromtimestamp(c.issued_at, dt.UTC)
        use = i18n.gettext(USE_WORDS[c.use]) if c.use in USE_WORDS else c.use
        rows = [
            (i18n.gettext("Permit No."), c.permit_number),
            (i18n.gettext("Name (as in passport)"), c.holder_name),
            (i18n.gettext("Nationality"), c.nationality),
            (i18n.gettext("Valid until"), i18n.format_date(c.valid_until)),
            (i18n.gettext("QR code"), i18n.gettext("{use}, made {time}, key {kid}", use=use, time=_at(issued),
                                                   kid=c.key_id)),
        ]  # fmt: skip
        width = max(_width(label) for label, _ in rows)
        for label, value in rows:
            typer.echo(f"  {label}{' ' * (width - _width(label))}  {value}")
    typer.echo(i18n.ngettext(
        "The status list is {n} hour old (last synced {synced}, issued {issued}).",
        "The status list is {n} hours old (last synced {synced}, issued {issued}).",
        hours, synced=_at(result.synced_at), issued=_at(result.status_list_issued_at),
    ))  # fmt: skip
    if result.verdict != verdicts.VALID:
        raise typer.Exit(EXIT_NOT_VALID)
    raise typer.Exit(EXIT_STALE if stale else EXIT_VALID)


def _say_synced(report: offline.SyncReport) -> None:
    from workcard.web import i18n

    if report.first_use:
        typer.echo(
            i18n.gettext("Trusting the server's trust anchor on first use: {anchor}", anchor=report.anchor)
        )
        typer.echo("  " + i18n.gettext(
            "Compare it with the output of `workcard keys anchor` on the server; --anchor pins it instead."))  # fmt: skip
    typer.echo(
        i18n.gettext("Synced at {time} from {server}.", time=_at(report.synced_at), server=report.server)
    )
    change = {True: i18n.gettext("updated"), False: i18n.gettext("unchanged")}
    typer.echo("  " + i18n.ngettext("Trust list: {n} key ({change}).", "Trust list: {n} keys ({change}).",
                                    report.keys, change=change[report.trust_list_changed]))  # fmt: skip
    typer.echo("  " + i18n.ngettext(
        "Status list: {n} entry ({change}), issued {time}.", "Status list: {n} entries ({change}), issued {time}.",
        report.entries, change=change[report.status_list_changed], time=_at(report.status_list_issued_at),
    ))  # fmt: skip
