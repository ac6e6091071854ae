"""The one place that reads the time. Tests freeze it with :func:`frozen`."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")
_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    """Aware UTC now."""
    return _frozen if _frozen is not None else dt.datetime.now(dt.UTC)


def today() -> dt.date:
    """Today's date in China, which is what permit validity dates refer to."""
    return now().astimezone(CHINA).date()


def set_frozen(at: dt.datetime | None) -> None:
    global _frozen
    if at is not None and at.tzinfo is None:
        raise ValueError("frozen time must be timezone-aware")
    _frozen = at


@contextlib.contextmanager
def frozen(at: dt.datetime) -> Iterator[None]:
    previous = _frozen
    set_frozen(at)
    try:
        yield
    finally:
        set_frozen(previous)
