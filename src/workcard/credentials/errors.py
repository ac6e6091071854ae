"""Why a credential was refused. Every refusal is a :class:`CredentialError`; its ``verdict`` is a stable
machine string that verifiers show (translated) and audit, so callers never parse messages."""

from __future__ import annotations


class CredentialError(Exception):
    """Base of every credential refusal. ``verdict`` is stable; the message is for logs, in English."""

    verdict = "invalid"


class Malformed(CredentialError):
    """Not a well-formed credential of this profile: wrong prefix, bad Base45, bad deflate stream (WC1),
    bad or non-deterministic CBOR, duplicate map keys, missing or ill-typed claims or headers."""

    verdict = "malformed"


class BadSignature(CredentialError):
    """Well-formed, but the signature does not verify with the key named by the kid (or the algorithm in
    the protected header is not the one that key is for)."""

    verdict = "bad_signature"


class UnknownKey(CredentialError):
    """The kid names no key this verifier trusts."""

    verdict = "unknown_key"


class Expired(CredentialError):
    """Authentic, but the token's ``exp`` has passed. ``claims``: the authentic claims (a letter's code
    expires after the permit ended, so a verifier can still say which permit ended when)."""

    verdict = "expired"

    def __init__(self, message: str, claims: object = None) -> None:
        super().__init__(message)
        self.claims = claims


class NotYetValid(CredentialError):
    """Authentic, but issued in the future (beyond the allowed clock skew)."""

    verdict = "not_yet_valid"
