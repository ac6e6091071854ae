"""Fixed-window counters kept in the database, so every server process sees the same counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from workcard import clock
from workcard.iam.models import RateCounter


def window(seconds: int) -> tuple[int, int]:
    """The current fixed window of ``seconds``: its start (Unix seconds) and the seconds until it ends."""
    now = int(clock.now().timestamp())
    start = now - now % seconds
    return start, start + seconds - now


def _upsert(insert: Callable[[type[RateCounter]], Any]) -> Any:
    return (
        insert(RateCounter)
        .values(key=bindparam("key"), window_start=bindparam("start"), count=bindparam("n"))
        .on_conflict_do_update(
            index_elements=[RateCounter.key, RateCounter.window_start],
            set_={"count": RateCounter.count + bindparam("n")},
        )
        .returning(RateCounter.count)
    )


# Built once: every partner call counts, and building the statement cost more than running it.
_UPSERT = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}


# The same upsert in SQL for PostgreSQL, for work that runs on the driver (``web.partner``).
PG_UPSERT = (
    "INSERT INTO rate_counter (key, window_start, count) VALUES (%(key)s, %(start)s, %(n)s) "
    "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counter.count + EXCLUDED.count "
    "RETURNING count"
)


def hit(session: Session, key: str, window_seconds: int, n: int = 1) -> tuple[int, int]:
    """Count ``n`` events under ``key``; return (count in this window, seconds until it ends)."""
    start, remaining = window(window_seconds)
    connection = session.connection()
    params = {"key": key, "start": start, "n": n}
    return int(connection.execute(_UPSERT[connection.dialect.name], params).scalar_one()), remaining


def peek(session: Session, key: str, window_seconds: int) -> tuple[int, int]:
    start, remaining = window(window_seconds)
    count = session.scalar(
        select(RateCounter.count).where(RateCounter.key == key, RateCounter.window_start == start)
    )
    return int(count or 0), remaining


def reset(session: Session, key: str) -> None:
    session.execute(delete(RateCounter).where(RateCounter.key == key))


def purge_old(session: Session, older_than_seconds: int = 86400) -> int:
    cutoff = int(clock.now().timestamp()) - older_than_seconds
    result = session.execute(delete(RateCounter).where(RateCounter.window_start < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
