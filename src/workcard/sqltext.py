"""SQL text with its values written in, for the partner groups' multi-statement round trips on
PostgreSQL (``web.partner``): several statements travel in one simple query, which cannot carry
parameters, so each value is written into the text as a literal.

The driver can do this (``ClientCursor.mogrify``), but it looks up an adapter and quotes through it for
each value; a group writes some twenty values a call, and that cost as much as the rest of a group's
statements in the server process. The values a group writes are of a few plain types, rendered here
directly; any other type is handed to the driver's own quoting.

A literal written this way is safe only on a connection whose strings are standard-conforming (a
backslash is an ordinary character) and whose client encoding is UTF-8 (no multibyte character can hide
a quote): ``SETTINGS`` makes both so, and ``connect`` in ``workcard.groupcommit`` sends it on every
connection the groups use. Then the only character a string literal must escape is the quote itself.
NUL cannot be stored in PostgreSQL text and is refused, as the driver refuses it."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg.types.json import Json

SETTINGS = "SET standard_conforming_strings = on; SET client_encoding = 'UTF8'"

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def literal(value: Any, fallback: Callable[[Any], str]) -> str:
    """``value`` as an SQL literal; ``fallback(value)`` (the driver's quoting) for a type not known here."""
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return "'" + value.replace("'", "''") + "'"
    if value is None:
        return "NULL"
    if kind is int:  # a negative number after a minus sign would start a comment: "5--1"
        return str(value) if value >= 0 else f" {value}"
    if kind is bool:
        return "true" if value else "false"
    if kind is dt.datetime:
        if value.tzinfo is not None and value.utcoffset() is None:  # no offset to write: the driver's way
            return fallback(value)
        return f"'{value.isoformat()}'::{'timestamp' if value.tzinfo is None else 'timestamptz'}"
    if kind is dt.date:
        return f"'{value.isoformat()}'::date"
    if kind is Json:
        return literal(json.dumps(value.obj), fallback) + "::json"
    if kind is list and all(type(item) is str for item in value):
        return "ARRAY[" + ",".join(literal(item, fallback) for item in value) + "]::text[]"
    return fallback(value)


_templates: dict[str, tuple[list[str], list[str]]] = {}


def render(sql: str, params: Mapping[str, Any], fallback: Callable[[Any], str]) -> str:
    """``sql`` with each ``%(name)s`` replaced by ``params[name]`` as a literal. Only those placeholders
    are replaced: a ``%`` elsewhere in the text stays as it is (``%%`` too, unlike the driver's
    ``mogrify``)."""
    template = _templates.get(sql)
    if template is None:
        parts = _PLACEHOLDER.split(sql)  # text, name, text, name, ..., text
        template = _templates[sql] = (parts[0::2], parts[1::2])
    texts, names = template
    out = [texts[0]]
    for name, text in zip(names, texts[1:], strict=True):
        out.append(literal(params[name], fallback))
        out.append(text)
    return "".join(out)
