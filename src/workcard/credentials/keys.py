"""The keys of the signed permit codes (see docs/decisions/0006-signed-permit-codes.md).

* **Signing keys** (Ed25519, COSE alg -8 EdDSA): one current key signs every new token; the table
  ``signing_key`` keeps the public halves and their windows, and the private half is the file
  ``<var>/keys/<kid>.pem`` (PKCS#8 PEM, mode 0600, directory 0700), read by every server process.
  Kids are short (``wc-2611-a``: year and month of creation, then a letter) so tokens stay small.
* **The trust anchor** (Ed25519, ``<var>/keys/anchor.pem``): long-lived; signs the trust list and the
  status list. Verifiers pin its public key (``workcard keys anchor``).

Private keys never leave this module except as key objects handed to the signing code; they are never
logged, audited or sent anywhere. Files are written once and never changed: a new file is written
under a temporary name (``O_CREAT | O_EXCL``, 0600) and linked into place, so another process sees
either no file or the whole file, and two processes creating the same file end with the same one."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from workcard import audit, clock
from workcard.config import get_settings
from workcard.credentials import cose, verdicts
from workcard.credentials.models import SigningKey
from workcard.errors import Conflict, NotFound
from workcard.files import write_private
from workcard.permits import service as permits

ALG = cose.EDDSA  # chosen by measurement: docs/decisions/0006-signed-permit-codes.md
ALG_NAMES = {cose.EDDSA: "EdDSA", cose.ES256: "ES256"}
ANCHOR_FILE = "anchor.pem"
# How long a letter code of a permit starting today can live (see verify_until_for): to the end of the
# day after the permit's last day, and a permit lasts at most 5 × 366 days (permits.rules.check_validity).
MAX_LETTER_LIFETIME = dt.timedelta(days=5 * 366 + 2)
SIGNING_GRACE = dt.timedelta(seconds=verdicts.SIGNING_GRACE_SECONDS)
ECARD_LIFETIME = dt.timedelta(seconds=120)  # an e-card code is shown for two minutes

_lock = threading.Lock()
_private_cache: dict[Path, Any] = {}


def key_dir() -> Path:
    """``<var>/keys``, owner-only (created if missing)."""
    path = get_settings().var_dir / "keys"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def _pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_private(path: Path) -> ed25519.Ed25519PrivateKey:
    with _lock:
        cached = _private_cache.get(path)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise RuntimeError(f"{path.name} does not hold an Ed25519 private key")
    with _lock:
        _private_cache[path] = key
    return key


def _create_or_load(path: Path) -> ed25519.Ed25519PrivateKey:
    """The key in ``path``, made first if there is none (whoever links first wins; all use theirs)."""
    if not path.exists():
        write_private(path, _pem(ed25519.Ed25519PrivateKey.generate()), replace=False)
    return _load_private(path)


# --- the trust anchor ------------------------------------------------------------------------------------


def anchor_private() -> ed25519.Ed25519PrivateKey:
    return _create_or_load(key_dir() / ANCHOR_FILE)


def anchor_public_raw() -> bytes:
    return anchor_private().public_key().public_bytes_raw()


# --- signing keys ----------------------------------------------------------------------------------------


def _suffix(n: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa, ... (bijective base 26)."""
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(ord("a") + r) + out
    return out


def _new_kid(session: Session, now: dt.datetime) -> str:
    prefix = f"wc-{now.astimezone(clock.CHINA):%y%m}-"
    taken = set(session.scalars(select(SigningKey.kid).where(SigningKey.kid.startswith(prefix))))
    n = 0
    while prefix + _suffix(n) in taken:
        n += 1
    return prefix + _suffix(n)


def _private_path(kid: str) -> Path:
    return key_dir() / f"{kid}.pem"


def private_key(kid: str) -> ed25519.Ed25519PrivateKey:
    """The private key of ``kid`` (cached per process; files never change)."""
    path = _private_path(kid)
    if not path.exists():
        raise RuntimeError(f"the private key file of {kid} is missing from {path.parent}")
    return _load_private(path)


def _insert_current(session: Session, now: dt.datetime) -> SigningKey | None:
    """Make a key file and the row of a new current key; None if another transaction made a current
    key (or took the kid) first. The insert does nothing on a conflict instead of failing, because a
    savepoint rolled back would drop the transaction's pending audit records and events. A key file
    without a row (left by a transaction that rolled back) is taken over: its key never signed."""
    kid = _new_kid(session, now)
    public = _create_or_load(_private_path(kid)).public_key().public_bytes_raw()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    new_id = session.execute(
        insert(SigningKey)
        .values(kid=kid, alg=ALG, public_key=public, created_at=now, signs_from=now, signing=True)
        .on_conflict_do_nothing()
        .returning(SigningKey.id)
    ).scalar_one_or_none()
    return session.get(SigningKey, new_id) if new_id is not None else None


def current_key(session: Session) -> SigningKey | None:
    return session.scalar(select(SigningKey).where(SigningKey.signing.is_(True)))


def ensure_signing_key(session: Session, *, actor: str = "system") -> SigningKey:
    """The current signing key; the first one is created if there is none. Safe when several
    processes start at once: the unique ``signing`` flag admits one, and the others use it."""
    key = current_key(session)
    if key is not None:
        return key
    key = _insert_current(session, clock.now())
    if key is None:  # another process made the first key at the same moment
        key = current_key(session)
        if key is None:  # pragma: no cover - the conflicting row is committed before we get here
            raise Conflict("Another process is creating the signing key; please try again.")
        return key
    audit.record(session, actor=actor, action="signing_key.create", subject_type="signing_key",
                 subject_id=key.kid, after=key_view(key))  # fmt: skip
    return key


def letter_expiry(valid_until: dt.date) -> dt.datetime:
    """When a letter code expires: the end of the day after the permit's last day, China time (the
    extra day covers a holder crossing time zones and a verifier's clock being a little off)."""
    return dt.datetime.combine(valid_until + dt.timedelta(days=2), dt.time(0), tzinfo=clock.CHINA).astimezone(
        dt.UTC
    )


def verify_until_for(session: Session, signs_until: dt.datetime) -> dt.datetime:
    """The latest expiry a token signed by a key whose window closes at ``signs_until`` can have.

    An e-card code lives 120 seconds. A letter code lives to the end of the day after its permit's
    last day as it was when signed; a permit's end never moves earlier (a renewal moves it later), so
    the latest end among all permits now bounds every letter code signed so far. A permit being issued
    in a transaction not yet committed is covered by the second bound: it starts today at the earliest
    and lasts at most 5 × 366 days."""
    bounds = [signs_until + SIGNING_GRACE + ECARD_LIFETIME, signs_until + SIGNING_GRACE + MAX_LETTER_LIFETIME]
    latest_end = permits.latest_validity_end(session)
    if latest_end is not None:
        bounds.append(letter_expiry(latest_end))
    return max(bounds)


def rotate(session: Session, actor: str) -> SigningKey:
    """Close the current key's signing window and make a new current key. The old key stays trusted
    for what it signed (``verify_until``)."""
    now = clock.now()
    old = session.scalar(select(SigningKey).where(SigningKey.signing.is_(True)).with_for_update())
    if old is None:
        return ensure_signing_key(session, actor=actor)
    before = key_view(old)
    old.signing = None
    old.signs_until = now
    old.verify_until = verify_until_for(session, now)
    session.flush()
    new = _insert_current(session, now)
    if new is None:
        raise Conflict("Another key rotation is in progress; please try again.")
    audit.record(session, actor=actor, action="signing_key.close", subject_type="signing_key",
                 subject_id=old.kid, before=before, after=key_view(old))  # fmt: skip
    audit.record(session, actor=actor, action="signing_key.create", subject_type="signing_key",
                 subject_id=new.kid, after=key_view(new))  # fmt: skip
    return new


def retire(session: Session, actor: str, kid: str) -> SigningKey:
    """Withdraw a key at once (e.g. its private half was exposed): its tokens become ``unknown_key``.
    The current key cannot be retired; rotate first."""
    key = session.scalar(select(SigningKey).where(SigningKey.kid == kid).with_for_update())
    if key is None:
        raise NotFound("No signing key {kid}.", kid=kid)
    if key.signing:
        raise Conflict("The current signing key cannot be retired; rotate the keys first.")
    if key.retired_at is not None:
        raise Conflict("The key {kid} is already retired.", kid=kid)
    before = key_view(key)
    key.retired_at = clock.now()
    audit.record(session, actor=actor, action="signing_key.retire", subject_type="signing_key", subject_id=kid,
                 before=before, after=key_view(key))  # fmt: skip
    return key


_ALL_KEYS = select(SigningKey).order_by(SigningKey.signs_from, SigningKey.id)  # read per group of checks


def list_keys(session: Session) -> list[SigningKey]:
    return list(session.scalars(_ALL_KEYS))


def key_view(key: SigningKey) -> dict[str, Any]:
    """What may be shown or audited of a key: never the private half."""
    return {
        "kid": key.kid,
        "alg": ALG_NAMES.get(key.alg, str(key.alg)),
        "signs_from": key.signs_from,
        "signs_until": key.signs_until,
        "verify_until": key.verify_until,
        "retired_at": key.retired_at,
    }


def trusted_at(key: SigningKey, at: dt.datetime) -> bool:
    """Whether verifiers accept ``key``'s tokens at ``at``."""
    return key.retired_at is None and (key.verify_until is None or at < key.verify_until)


def find_key(session: Session, kid: str) -> SigningKey | None:
    return session.scalar(select(SigningKey).where(SigningKey.kid == kid))
