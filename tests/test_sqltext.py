"""Values written into SQL text for the partner groups' round trips (``workcard.sqltext``): each value reads
back from PostgreSQL exactly as it was, whatever its characters, on the connections the groups use
(SPEC X2: no input can change a statement)."""

from __future__ import annotations

import asyncio
import datetime as dt

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Json
from sqlalchemy.engine import make_url

from workcard import groupcommit, sqltext
from workcard.web.partner import _conninfo


def _no_fallback(value):
    raise AssertionError(f"fell back for {value!r}")


def test_only_named_placeholders_are_replaced():  # SPEC X2
    sql = "SELECT %(a)s, 7 % 3, %(b)s"
    assert sqltext.render(sql, {"a": "x'y", "b": 1}, _no_fallback) == "SELECT 'x''y', 7 % 3, 1"


def test_plain_types_are_written_without_the_driver():  # SPEC X2
    moment = dt.datetime(2026, 11, 21, 8, 30, 0, 123456, tzinfo=dt.UTC)
    assert sqltext.literal(None, _no_fallback) == "NULL"
    assert sqltext.literal(True, _no_fallback) == "true"
    assert sqltext.literal(-42, _no_fallback) == " -42"
    assert sqltext.literal(moment, _no_fallback) == "'2026-11-21T08:30:00.123456+00:00'::timestamptz"
    assert sqltext.literal(dt.date(2026, 1, 2), _no_fallback) == "'2026-01-02'::date"
    assert sqltext.literal(["a", "O'Neill"], _no_fallback) == "ARRAY['a','O''Neill']::text[]"
    assert sqltext.literal(Json({"k": "it's"}), _no_fallback) == """'{"k": "it''s"}'::json"""
    assert sqltext.literal(1.5, lambda value: f"<{value}>") == "<1.5>"  # the driver's quoting


def test_a_negative_number_after_a_minus_sign_starts_no_comment():  # SPEC X2
    rendered = sqltext.render("SELECT 5-%(n)s; SELECT 1", {"n": -1}, _no_fallback)
    assert "--" not in rendered and rendered == "SELECT 5- -1; SELECT 1"


def test_values_of_other_types_go_to_the_drivers_quoting():  # SPEC X2
    import enum

    class Kind(enum.Enum):
        A = "a"

    class Name(str):
        pass

    class NoOffset(dt.tzinfo):
        def utcoffset(self, when):
            return None

    driver = []
    for value in (Kind.A, Name("x'y"), b"\x00", 1.5, dt.datetime(2026, 1, 1, tzinfo=NoOffset()), [1, 2]):
        sqltext.render("SELECT %(v)s", {"v": value}, lambda v: driver.append(v) or "NULL")
    assert len(driver) == 6


def test_nul_is_refused_as_the_driver_refuses_it():  # SPEC X2
    with pytest.raises(psycopg.DataError):
        sqltext.literal("a\x00b", _no_fallback)


@pytest.fixture(scope="module")
def pg(database_url):
    """A connection made as the groups make theirs, with its own event loop."""
    if database_url.startswith("sqlite"):
        pytest.skip("needs PostgreSQL")
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(groupcommit.connect(_conninfo(make_url(database_url))))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


def _read_back(pg, sql_literal):
    loop, conn = pg

    async def read():
        cursor = await conn.execute(f"SELECT {sql_literal}")
        return (await cursor.fetchone())[0]

    return loop.run_until_complete(read())


def test_the_groups_connections_have_the_settings_literals_need(pg):  # SPEC X2
    _, conn = pg
    assert conn.info.parameter_status("standard_conforming_strings") == "on"
    assert conn.info.encoding == "utf-8"


text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=text)
def test_any_text_reads_back_as_it_was(pg, value):  # SPEC X2
    assert _read_back(pg, sqltext.literal(value, _no_fallback)) == value
    assert _read_back(pg, sqltext.literal([value, "\\'"], _no_fallback)) == [value, "\\'"]


@pytest.mark.parametrize(
    "value",
    [
        "O'Neill", "\\", "\\'", "'; DROP TABLE audit_record; --", "$$", "E'\\x27'", "Nguyễn Văn Minh",
        "王小明", "\u202eevil", "\U0001f600", "%(x)s", "%s",
    ],
)  # fmt: skip
def test_tricky_texts_read_back_as_they_were(pg, value):  # SPEC X2
    assert _read_back(pg, sqltext.literal(value, _no_fallback)) == value


def test_other_values_read_back_as_they_were(pg):  # SPEC X2
    moment = dt.datetime(2026, 11, 21, 8, 30, 0, 123456, tzinfo=dt.UTC)
    assert _read_back(pg, sqltext.literal(moment, _no_fallback)) == moment
    assert _read_back(pg, sqltext.literal(dt.date(2026, 2, 28), _no_fallback)) == dt.date(2026, 2, 28)
    assert _read_back(pg, sqltext.literal(2**40, _no_fallback)) == 2**40
    assert _read_back(pg, "5-" + sqltext.literal(-3, _no_fallback)) == 8
    naive = dt.datetime(2026, 11, 21, 8, 30)
    assert _read_back(pg, sqltext.literal(naive, _no_fallback)) == naive
    assert _read_back(pg, sqltext.literal(Json({"verdict": "valid", "n": [1, None]}), _no_fallback)) == {
        "verdict": "valid",
        "n": [1, None],
    }
    assert _read_back(pg, sqltext.literal([], _no_fallback) + "::text[]") == []
