"""Bilingual text (SPEC X1). Source strings are English msgids; the catalogs under
``workcard/locale/<locale>/LC_MESSAGES/messages.po`` are read with Babel and compiled in memory at
start-up, so no build step is needed. The locale of the current request lives in a context variable."""

from __future__ import annotations

import datetime as dt
import gettext as _gettext
from contextvars import ContextVar
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = ("zh_CN", "en")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
current_locale: ContextVar[str] = ContextVar("current_locale", default="zh_CN")


@lru_cache
def translations(locale: str) -> _gettext.NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return _gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def gettext(message: str, **params: Any) -> str:
    text = translations(current_locale.get()).gettext(message)
    return text.format(**params) if params else text


_ = gettext


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    text = translations(current_locale.get()).ngettext(singular, plural, n)
    return text.format(n=n, **params)


def negotiate(accept_language: str | None, default: str) -> str:
    """Pick zh_CN or en from an Accept-Language header, else the default."""
    if not accept_language:
        return default
    choices: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        lang, _sep, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        lang = lang.strip().lower()
        if lang.startswith("zh"):
            choices.append((weight, "zh_CN"))
        elif lang.startswith("en"):
            choices.append((weight, "en"))
    if not choices:
        return default
    return max(choices, key=lambda c: c[0])[1]


def normalise(locale: str | None) -> str | None:
    if not locale:
        return None
    low = locale.replace("-", "_").lower()
    if low.startswith("zh"):
        return "zh_CN"
    if low.startswith("en"):
        return "en"
    return None


def format_date(value: dt.date | dt.datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        from workcard.clock import CHINA

        return dates.format_datetime(value.astimezone(CHINA), fmt, locale=Locale.parse(current_locale.get()))
    return dates.format_date(value, fmt, locale=Locale.parse(current_locale.get()))


def format_number(value: float | int) -> str:
    return numbers.format_decimal(value, locale=Locale.parse(current_locale.get()))
