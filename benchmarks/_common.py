"""Helpers shared by the benchmarks: the PostgreSQL server to use, throw-away databases, the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parent.parent


class Skip(Exception):  # noqa: N818 - it is not an error: the benchmark could not run here
    """The benchmark cannot run on this machine (e.g. no PostgreSQL); recorded, not failed."""


def server_url() -> URL:
    """The PostgreSQL server: WORKCARD_BENCH_DATABASE_URL, else WORKCARD_TEST_DATABASE_URL when it
    names PostgreSQL, else the local server with trust authentication."""
    raw = os.environ.get("WORKCARD_BENCH_DATABASE_URL") or ""
    if not raw:
        test = os.environ.get("WORKCARD_TEST_DATABASE_URL", "")
        raw = test if test.startswith("postgresql") else DEFAULT_URL
    url = make_url(raw)
    if not url.drivername.startswith("postgresql"):
        raise Skip(f"the benchmarks need PostgreSQL, not {url.drivername}")
    return url.set(drivername="postgresql+psycopg")


def require_postgres() -> URL:
    """The server's URL (database ``postgres``), or Skip when it cannot be reached."""
    url = server_url().set(database="postgres")
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means: skip, with the reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Skip(
            f"PostgreSQL unreachable at {url.render_as_string(hide_password=True)}: {reason}"
        ) from None
    finally:
        engine.dispose()
    return url


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database ``workcard_bench_<random>`` on the server; dropped afterwards."""
    admin_url = require_postgres()
    name = f"workcard_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def median(values: list[float]) -> float:
    return float(statistics.median(values))


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def result(
    name: str,
    value: float | None,
    unit: str,
    *,
    baseline: float | None = None,
    ratio: float | None = None,
    goal: str | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """One row of results.json; ``command`` is filled in by the runner."""
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "goal": goal,
        "command": None,
        "notes": notes,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def postgres_version() -> str:
    try:
        url = require_postgres()
    except Skip:
        return "unreachable"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = str(conn.execute(text("SHOW server_version")).scalar_one())
            settings = {
                k: str(conn.execute(text(f"SHOW {k}")).scalar_one())
                for k in ("shared_buffers", "synchronous_commit", "fsync")
            }
    finally:
        engine.dispose()
    return f"PostgreSQL {version} (" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")"


def machine() -> dict[str, Any]:
    return {
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": postgres_version(),
    }
