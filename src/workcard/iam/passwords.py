"""argon2id hashing for passwords and PINs. The "fast" profile exists for the test suite only; it is
chosen by a setting, never by code paths that check for tests."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from workcard.config import get_settings


def character_kinds(password: str) -> int:
    """How many of letters, digits and symbols a password has (the rule of every password here)."""
    return sum(
        [
            any(c.isalpha() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() and not c.isspace() for c in password),
        ]
    )


@lru_cache
def _hasher(profile: str) -> PasswordHasher:
    if profile == "fast":
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()  # argon2id, RFC 9106 low-memory profile defaults


def hash_password(password: str) -> str:
    return _hasher(get_settings().password_profile).hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher(get_settings().password_profile).verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to compare against when the account does not exist, so both paths cost the same.
@lru_cache
def dummy_hash() -> str:
    return hash_password("not-a-real-password-0")
