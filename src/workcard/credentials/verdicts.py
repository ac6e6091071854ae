"""The verdicts of a permit QR check and their reasons: the same words online (API, pages) and
offline (``workcard verify``). Pure: no database. Reasons are English msgids with ``{placeholders}``;
their params stay machine-readable (dates in ISO) and :func:`reason_text` shows them to a person."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from workcard.credentials import cose, cwt
from workcard.credentials.errors import BadSignature, CredentialError, Expired, NotYetValid, UnknownKey
from workcard.web import i18n
from workcard.web.vocabulary import N_

VALID = "valid"
EXPIRED = "expired"
CANCELLED = "cancelled"
NOT_YET_VALID = "not_yet_valid"
BAD_SIGNATURE = "bad_signature"
UNKNOWN_KEY = "unknown_key"
MALFORMED = "malformed"
# Tokens may carry an iat up to this long after their key's signing window closed: a request that read
# the current key just before a rotation committed may still sign with it.
SIGNING_GRACE_SECONDS = 600
VERDICTS = (VALID, EXPIRED, CANCELLED, NOT_YET_VALID, BAD_SIGNATURE, UNKNOWN_KEY, MALFORMED)
VERDICT_WORDS = [N_("bad_signature"), N_("unknown_key"), N_("malformed")]  # the others are permit states

PERMIT_VALID = N_("The work permit is valid.")
PERMIT_EXPIRED = N_("The work permit expired on {date}.")
PERMIT_CANCELLED = N_("The work permit was cancelled on {date}.")
PERMIT_CANCELLED_OFFLINE = N_("The work permit has been cancelled.")
PERMIT_NOT_YET_VALID = N_("The work permit is valid only from {date}.")
NO_PERMIT = N_("The QR code names no permit of the Work System.")
TOKEN_EXPIRED = N_("This QR code has expired; ask the holder to show a current one.")
TOKEN_NOT_YET_VALID = N_("This QR code is dated in the future; check the clock of this device.")
TOKEN_BAD_SIGNATURE = N_("The QR code's signature does not verify: the code was altered or forged.")
TOKEN_UNKNOWN_KEY = N_("The QR code was signed with a key that this system does not trust.")
TOKEN_OUTSIDE_WINDOW = N_("The QR code claims a time when its key did not sign codes.")
TOKEN_WRONG_ALG = N_("The QR code is signed with an algorithm that this system does not accept.")
TOKEN_MALFORMED = N_("This is not a work permit QR code, or the code is damaged.")
DATE_PARAMS = ("date",)  # reason params holding an ISO date


def reason_text(reason: str, params: Mapping[str, str]) -> str:
    """A verdict's reason in the current language, its dates written as the pages write them."""
    shown = {
        name: i18n.format_date(dt.date.fromisoformat(value)) if name in DATE_PARAMS else value
        for name, value in params.items()
    }
    return i18n.gettext(reason, **shown)


def token_alg(text: str) -> int | None:
    """The algorithm a token's protected header names, or None if it cannot be read (only used to
    tell a foreign algorithm from a forgery, after the signature check failed)."""
    try:
        return cose.parse_sign1(cwt.unwrap(text)).alg
    except Exception:
        return None


def within_window(issued_at: int, signs_from: int, signs_until: int | None) -> bool:
    """Whether a token's iat falls in its key's signing window (with the core's clock skew before it
    and the rotation grace after it): a key's private half, were it exposed after the key stopped
    signing, cannot mint codes that look new."""
    if issued_at < signs_from - cwt.CLOCK_SKEW:
        return False
    return signs_until is None or issued_at <= signs_until + SIGNING_GRACE_SECONDS


def refusal(exc: CredentialError, text: object, *, alg: int | None) -> tuple[str, str]:
    """(verdict, reason) for a token the core refused; ``alg`` is the algorithm of the key its kid
    named (None if none was found). A signature in another algorithm is ``malformed``, not forged."""
    if isinstance(exc, Expired):
        return EXPIRED, TOKEN_EXPIRED
    if isinstance(exc, NotYetValid):
        return NOT_YET_VALID, TOKEN_NOT_YET_VALID
    if isinstance(exc, BadSignature):
        found = token_alg(text) if isinstance(text, str) else None
        if found is not None and found != alg:
            return MALFORMED, TOKEN_WRONG_ALG
        return BAD_SIGNATURE, TOKEN_BAD_SIGNATURE
    if isinstance(exc, UnknownKey):
        return UNKNOWN_KEY, TOKEN_UNKNOWN_KEY
    return MALFORMED, TOKEN_MALFORMED
