"""Offline verification of permit QR codes (``workcard verify``), for an officer's machine that is
only sometimes online (SPEC P1).

``sync`` fetches the trust list and the status list from a server (conditional GETs with the stored
ETags), checks both signatures against the pinned trust anchor, and stores them in a directory of
its own (``~/.cache/workcard-verify`` by default). With no anchor pinned yet it trusts the one the
server's trust list names, on first use, and says so; pin it instead with ``--anchor`` (the output of
``workcard keys anchor`` on the server, passed on out of band). A list older than the one already held
is refused, so a replayed old status list cannot bring a cancelled permit back.

``verify`` then needs no network: it checks the code with the trust list's keys (each only until its
``verify_until``), and the permit's status with the claims' dates and the status list. The result
says how old the status list is: a permit cancelled after the last sync still looks valid here, which
is why online verification (which reads the live record) is preferred whenever there is a network.
That age counts from the last sync recorded in ``state.json``, a file of this machine that is not
signed: it is the verifier's own record, trusted as the machine is.

Errors are :class:`OfflineError` (or :class:`~workcard.credentials.lists.ListError` as its ``reason``)
with English msgids, translated where they are shown.

Nothing here touches the database; offline checks are not recorded on the server."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from workcard import clock
from workcard.credentials import cose, cwt, lists
from workcard.credentials import verdicts as v
from workcard.credentials.errors import CredentialError, Expired
from workcard.errors import DomainError
from workcard.files import write_private
from workcard.web import i18n

DEFAULT_DIR = Path("~/.cache/workcard-verify")
TRUST_FILE = "trust-list.cose"
STATUS_FILE = "status-list.cose"
ANCHOR_FILE = "anchor.txt"
STATE_FILE = "state.json"
TRUST_PATH = "/api/v1/trust-list"
STATUS_PATH = "/api/v1/status-list"
MAX_DOCUMENT = 64 * 1024 * 1024
MAX_TEXT = cwt.MAX_TEXT


class OfflineError(DomainError):
    """Sync or verification could not be done. The message is an English msgid for the person at the
    terminal; a ``reason`` param is the :class:`~workcard.credentials.lists.ListError` behind it."""


def explain(exc: DomainError) -> str:
    """An error of the offline verifier in the current language, with the reason behind it and the
    kind of list it names translated too."""
    params = {}
    for name, value in exc.params.items():
        if isinstance(value, DomainError):
            value = explain(value)
        elif name == "kind":
            value = i18n.gettext(value)
        params[name] = value
    return i18n.gettext(exc.message, **params)


def _epoch(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


class _Store:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory).expanduser()

    def create(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def read(self, name: str) -> bytes | None:
        path = self.dir / name
        return path.read_bytes() if path.exists() else None

    def write(self, name: str, data: bytes) -> None:
        """Replace a file atomically, so a verifier never reads half a list."""
        write_private(self.dir / name, data, replace=True)

    def anchor(self) -> bytes | None:
        raw = self.read(ANCHOR_FILE)
        return lists.from_b64url(raw.decode()) if raw else None

    def state(self) -> dict[str, Any]:
        raw = self.read(STATE_FILE)
        try:
            return dict(json.loads(raw)) if raw else {}
        except (ValueError, TypeError):
            return {}

    def synced_at(self) -> dt.datetime | None:
        """When a server last confirmed the held lists current; None if not recorded or unreadable."""
        try:
            value = dt.datetime.fromisoformat(self.state()["synced_at"])
        except (KeyError, TypeError, ValueError):
            return None
        return value if value.tzinfo is not None else None


@dataclass(frozen=True)
class SyncReport:
    server: str
    synced_at: dt.datetime
    anchor: str  # base64url
    first_use: bool  # the anchor was trusted on first use (not pinned beforehand)
    trust_list_changed: bool
    status_list_changed: bool
    keys: int
    entries: int
    trust_list_issued_at: dt.datetime
    status_list_issued_at: dt.datetime


def _get(client: httpx.Client, url: str, etag: str | None) -> tuple[bytes | None, str | None]:
    """(body, etag) of a 200, or (None, etag) when the server says the held copy is current."""
    headers = {"If-None-Match": etag} if etag else {}
    try:
        resp = client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise OfflineError(
            "Cannot fetch {url} ({error}).", url=url, error=str(exc) or type(exc).__name__
        ) from None
    if resp.status_code == 304 and etag:
        return None, etag
    if resp.status_code != 200:
        raise OfflineError("{url} answered with HTTP status {status}.", url=url, status=resp.status_code)
    if len(resp.content) > MAX_DOCUMENT:
        raise OfflineError("{url} sent more than {limit} bytes.", url=url, limit=MAX_DOCUMENT)
    return resp.content, resp.headers.get("etag")


def _fetch_checked(client: httpx.Client, url: str, held: bytes | None, etag: str | None, open_: Any) -> Any:
    """Fetch a list (conditionally), check it with ``open_``; return (document, body or None if
    unchanged, etag). A held copy that no longer checks (another anchor pinned) is fetched again."""
    body, new_etag = _get(client, url, etag if held is not None else None)
    if body is None:
        try:
            return open_(held), None, new_etag
        except lists.ListError:
            body, new_etag = _get(client, url, None)
    assert body is not None
    try:
        return open_(body), body, new_etag
    except lists.ListError as exc:
        raise OfflineError("The list at {url} is refused: {reason}", url=url, reason=exc) from None


def sync(
    base_url: str,
    directory: Path = DEFAULT_DIR,
    *,
    client: httpx.Client | None = None,
    anchor: str | None = None,
) -> SyncReport:
    """Fetch, check and store the trust list and the status list of the server at ``base_url``.
    ``anchor`` (base64url) pins the trust anchor; without it the stored pin is used, or, the first
    time, the server's own (``first_use`` in the report)."""
    store = _Store(directory)
    store.create()
    base = base_url.rstrip("/")
    state = store.state()
    try:
        pinned = store.anchor()
        given = lists.from_b64url(anchor) if anchor else None
    except lists.ListError as exc:
        raise OfflineError("The trust anchor is refused: {reason}", reason=exc) from None
    if given is not None and pinned is not None and given != pinned:
        raise OfflineError(
            "{dir} pins another trust anchor ({anchor}); use another --dir for another server, or remove "
            "the directory if the server's anchor really changed.",
            dir=str(store.dir),
            anchor=lists.b64url(pinned),
        )
    pinned = given or pinned
    held_trust, held_status = store.read(TRUST_FILE), store.read(STATUS_FILE)
    own = client is None
    http = client or httpx.Client(timeout=20.0, follow_redirects=False)
    try:
        trust, trust_body, trust_etag = _fetch_checked(
            http,
            base + TRUST_PATH,
            held_trust,
            state.get("trust_etag"),
            lambda b: lists.open_trust_list(b, pinned),
        )
        status, status_body, status_etag = _fetch_checked(
            http, base + STATUS_PATH, held_status, state.get("status_etag"),
            lambda b: lists.open_status_list(b, trust.anchor),
        )  # fmt: skip
    finally:
        if own:
            http.close()
    _refuse_rollback(held_trust, held_status, trust, status, pinned)
    now = clock.now()
    if pinned is None or store.anchor() is None:
        store.write(ANCHOR_FILE, lists.b64url(trust.anchor).encode())
    if trust_body is not None:
        store.write(TRUST_FILE, trust_body)
    if status_body is not None:
        store.write(STATUS_FILE, status_body)
    store.write(STATE_FILE, json.dumps({
        "server": base, "synced_at": now.isoformat(), "trust_etag": trust_etag, "status_etag": status_etag,
    }).encode())  # fmt: skip
    return SyncReport(
        server=base, synced_at=now, anchor=lists.b64url(trust.anchor), first_use=pinned is None,
        trust_list_changed=trust_body is not None, status_list_changed=status_body is not None,
        keys=len(trust.keys), entries=len(status.entries), trust_list_issued_at=_epoch(trust.issued_at),
        status_list_issued_at=_epoch(status.issued_at),
    )  # fmt: skip


def _refuse_rollback(
    held_trust: bytes | None, held_status: bytes | None, trust: lists.TrustList, status: lists.StatusListDoc,
    pinned: bytes | None,
) -> None:  # fmt: skip
    """Refuse lists older than the ones held (a replay of an old, still validly signed list)."""
    if pinned is None:
        return
    try:
        old_trust = lists.open_trust_list(held_trust, pinned) if held_trust else None
        old_status = lists.open_status_list(held_status, pinned) if held_status else None
    except lists.ListError:
        return  # the held copies were not trusted anyway
    if old_trust is not None and trust.issued_at < old_trust.issued_at:
        raise OfflineError("The server sent an older trust list than the one held here; it is refused.")
    if old_status is not None and status.issued_at < old_status.issued_at:
        raise OfflineError("The server sent an older status list than the one held here; it is refused.")


@dataclass(frozen=True)
class OfflineVerdict:
    verdict: str  # one of verdicts.VERDICTS
    reason: str  # English msgid
    checked_at: dt.datetime
    status_list_issued_at: dt.datetime
    synced_at: dt.datetime | None  # when the server last confirmed the held lists current
    server: str | None  # where they were synced from
    params: dict[str, str] = field(default_factory=dict)
    claims: cwt.PermitClaims | None = None

    @property
    def status_list_age(self) -> dt.timedelta:
        """Since the status list was last confirmed current (or issued, if never synced here)."""
        return self.checked_at - (self.synced_at or self.status_list_issued_at)


def verify(text: str, directory: Path = DEFAULT_DIR, *, now: dt.datetime | None = None) -> OfflineVerdict:
    """Check a permit code with the stored lists only (no network)."""
    store = _Store(directory)
    try:
        anchor = store.anchor()
        held_trust, held_status = store.read(TRUST_FILE), store.read(STATUS_FILE)
        if anchor is None or held_trust is None or held_status is None:
            raise OfflineError(
                "No lists in {dir} yet: run `workcard verify --sync URL` first, while online.",
                dir=str(store.dir),
            )
        trust = lists.open_trust_list(held_trust, anchor)
        status = lists.open_status_list(held_status, anchor)
    except lists.ListError as exc:
        raise OfflineError("The lists in {dir} do not check: {reason} Sync again.", dir=str(store.dir),
                           reason=exc) from None  # fmt: skip
    now = now or clock.now()
    base = {"checked_at": now, "status_list_issued_at": _epoch(status.issued_at),
            "synced_at": store.synced_at(), "server": store.state().get("server")}  # fmt: skip
    now_s = int(now.timestamp())
    used: dict[bytes, lists.TrustedKey] = {}

    def resolve(kid: bytes) -> tuple[cose.PublicKey, int] | None:
        key = trust.key(kid.decode("utf-8"))
        if key is None or (key.verify_until is not None and now_s >= key.verify_until):
            return None
        used[kid] = key
        return cose.load_public_key(key.alg, key.x), key.alg

    text = text.strip() if isinstance(text, str) else text
    try:
        claims = cwt.decode_token(text, resolve_key=resolve, now=now_s, max_len=MAX_TEXT)
    except Expired as exc:  # a letter's code expires after its permit ended: say which ended when
        if not (isinstance(exc.claims, cwt.PermitClaims) and exc.claims.use == "letter"):
            return OfflineVerdict(v.EXPIRED, v.TOKEN_EXPIRED, **base)
        claims = exc.claims
    except CredentialError as exc:
        found = next(iter(used.values()), None)
        verdict, reason = v.refusal(exc, text, alg=found.alg if found else None)
        return OfflineVerdict(verdict, reason, **base)
    key = used[claims.key_id.encode()]
    if not v.within_window(claims.issued_at, key.signs_from, key.signs_until):
        return OfflineVerdict(v.UNKNOWN_KEY, v.TOKEN_OUTSIDE_WINDOW, claims=claims, **base)
    today = now.astimezone(clock.CHINA).date()
    if claims.valid_until < today or claims.status == v.EXPIRED:
        return OfflineVerdict(v.EXPIRED, v.PERMIT_EXPIRED, params={"date": claims.valid_until.isoformat()},
                              claims=claims, **base)  # fmt: skip
    if claims.status == v.CANCELLED or lists.status_entry(claims.permit_number) in status:
        return OfflineVerdict(v.CANCELLED, v.PERMIT_CANCELLED_OFFLINE, claims=claims, **base)
    if claims.valid_from is not None and today < claims.valid_from:  # WC3 tokens say when it starts
        return OfflineVerdict(v.NOT_YET_VALID, v.PERMIT_NOT_YET_VALID,
                              params={"date": claims.valid_from.isoformat()}, claims=claims, **base)  # fmt: skip
    return OfflineVerdict(v.VALID, v.PERMIT_VALID, claims=claims, **base)
