"""The machinery of the HTTP benchmarks (``partner_verify``, ``online_verify``): the real server as a
subprocess, the CPU meter and lock-wait sampler, and :func:`compare_with_ping`, which runs one endpoint's
load against ``GET /api/v1/ping`` of the same server in alternating rounds and builds the result rows.

Each benchmark seeds a fresh database (:func:`workspace`), gives its request bodies, a sanity check and
its own after-run checks, and labels for the figures."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess  # noqa: S404 - starts the project's own server
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, text

from benchmarks import _load
from benchmarks._common import Skip, fresh_database, median, result
from workcard.db import make_engine

ROUNDS = int(os.environ.get("WORKCARD_BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("WORKCARD_BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("WORKCARD_BENCH_CONNECTIONS", "32"))
WORKERS = 2
PING = "/api/v1/ping"


@contextlib.contextmanager
def workspace() -> Iterator[tuple[str, Path]]:
    """A fresh, migrated database (its URL) and a temporary directory for the server's files."""
    with fresh_database() as url, tempfile.TemporaryDirectory(prefix="workcard-bench-") as tmp:
        from workcard.migrate import upgrade

        upgrade(url)
        yield url, Path(tmp)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    env = {
        **os.environ,
        "WORKCARD_DATABASE_URL": url,
        "WORKCARD_HOST": "127.0.0.1",
        "WORKCARD_PORT": str(port),
        "WORKCARD_LOG_LEVEL": "WARNING",
        "WORKCARD_VAR_DIR": str(workdir / "var"),
        "WORKCARD_SECRET_KEY": "bench-" + os.urandom(16).hex(),
    }
    log_path = workdir / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "workcard.cli", "serve", "--workers", str(WORKERS)],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(base + PING, timeout=1).status_code == 200:
                time.sleep(1.0)  # the second worker may still be importing
                return proc, base, log_path
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"server did not answer within 60 s: {log_path.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group of the server this benchmark started
        proc.wait(timeout=10)


def server_errors(log: str) -> str:
    """The distinct exceptions in the server's log (JSON lines with ``exc``, or plain tracebacks)."""
    found: list[str] = []
    for line in log.splitlines():
        last = None
        if line.startswith("{"):
            try:
                exc = json.loads(line).get("exc")
            except ValueError:
                exc = None
            last = exc.strip().splitlines()[-1] if exc else None
        elif re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b", line):
            last = line
        if last and last[:160] not in found:
            found.append(last[:160])
    return "; ".join(found[:3]) or "see the server log"


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


class CpuMeter:
    """CPU seconds used by the server's processes and by the PostgreSQL backends of the benchmark
    database (read from /proc, so only when PostgreSQL runs on this machine)."""

    def __init__(self, engine: Engine, server_pid: int, exclude: set[int]) -> None:
        self.engine, self.server_pid, self.exclude = engine, server_pid, exclude

    def snapshot(self) -> tuple[dict[int, float], dict[int, float]]:
        with self.engine.connect() as conn:
            backends = [
                int(pid) for pid in conn.scalars(text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ))
            ]  # fmt: skip
        server = {pid: _cpu_seconds(pid) for pid in _descendants(self.server_pid)}
        db = {pid: _cpu_seconds(pid) for pid in backends if pid not in self.exclude}
        return server, db

    @staticmethod
    def delta(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


class WaitSampler(threading.Thread):
    """Samples pg_stat_activity of the benchmark database: what busy sessions wait on, and how many
    sessions the server holds."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.active = threading.Event()
        self.stopped = threading.Event()
        self.waits: Counter[str] = Counter()
        self.busy = 0
        self.max_sessions = 0
        self.ready = threading.Event()
        self.pid = 0

    def run(self) -> None:
        with self.engine.connect() as conn:
            self.pid = int(conn.scalar(text("SELECT pg_backend_pid()")) or 0)
            self.ready.set()
            while not self.stopped.wait(0.2):
                if not self.active.is_set():
                    continue
                rows = conn.execute(text(
                    "SELECT state, wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 48) "
                    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )).all()  # fmt: skip
                conn.rollback()
                self.max_sessions = max(self.max_sessions, len(rows))
                for state, wtype, wevent, query in rows:
                    if state == "active" or (state or "").startswith("idle in transaction"):
                        self.busy += 1
                        if wtype == "Lock":
                            self.waits[f"waiting for a {wevent} lock in `{query.split(' (')[0]}`"] += 1

    def reset(self) -> None:
        """Forget what was sampled so far (the warm-up)."""
        self.waits.clear()
        self.busy = self.max_sessions = 0

    def summary(self) -> str:
        if not self.busy:
            return "no busy DB sessions sampled"
        parts = [f"{n / self.busy:.0%} {what}" for what, n in self.waits.most_common(3)]
        return (f"of the sampled busy DB sessions: {', '.join(parts) or 'none waiting on locks'}; "
                f"up to {self.max_sessions} DB sessions open")  # fmt: skip


def compare_with_ping(
    url: str,
    workdir: Path,
    *,
    name: str,
    path: str,
    bodies: list[str],
    authorization: str,
    sanity_check: Callable[[str], int],
    checks: Callable[[Connection, int], str],
    label: str,
    label_one: str,
    what: str | None = None,
    seeded: str,
    goal: float,
    detailed_notes: bool = False,
) -> list[dict[str, Any]]:
    """Start the server on the seeded database ``url``, then measure ``POST path`` (each request one of
    ``bodies``, chosen at random, with ``authorization``) against ``GET /api/v1/ping``: a warm-up, then
    ROUNDS rounds of SECONDS s with CONNECTIONS keep-alive connections, alternating which goes first, then
    the same load through one connection. Returns the rows ``name/throughput``, ``/scaling``,
    ``/latency_p50``, ``/latency_p99`` and ``/cpu_per_request``.

    ``sanity_check(base)`` runs before the load and returns how many answers it got; ``checks(conn, sent)``
    runs on the database after the server has stopped, with ``sent`` = the answers sent in all, and
    returns the end of the throughput row's notes. ``label`` names the load in the printed round lines
    and the notes ("verifications"), ``label_one`` one of its requests ("verification"), ``what`` (by
    default ``label``) the load at the start of the throughput notes, ``seeded`` the data at the start of
    the setup description. ``detailed_notes`` adds the ratio of the medians to the throughput notes and
    the single connection's p50 to the scaling notes. Raises Skip when ROUNDS is 0."""
    bodies_file = workdir / "bodies.jsonl"
    bodies_file.write_text("\n".join(bodies) + "\n", encoding="utf-8")
    rounds: list[dict[str, _load.LoadResult]] = []
    cpu: dict[str, list[float]] = {"verify_server": [], "verify_db": [], "ping_server": []}
    engine = make_engine(url, pool_size=2, max_overflow=2)
    sampler = WaitSampler(engine)
    sampler.start()
    sampler.ready.wait(10)
    proc, base, log_path = start_server(url, workdir)
    meter = CpuMeter(engine, proc.pid, exclude={sampler.pid})
    try:
        sent = sanity_check(base)

        def measure(which: str, seconds: float, connections: int = CONNECTIONS) -> _load.LoadResult:
            server0, db0 = meter.snapshot()
            if which == "ping":
                got = _load.run(base, method="GET", path=PING, connections=connections, seconds=seconds)
            else:
                if connections == CONNECTIONS:
                    sampler.active.set()
                got = _load.run(
                    base, method="POST", path=path, connections=connections, seconds=seconds,
                    bodies=bodies, authorization=authorization, bodies_file=bodies_file,
                )  # fmt: skip
                sampler.active.clear()
            server1, db1 = meter.snapshot()
            n = max(1, got.requests)
            cpu[f"{which}_server"].append(CpuMeter.delta(server0, server1) * 1000 / n)
            if which == "verify":
                cpu["verify_db"].append(CpuMeter.delta(db0, db1) * 1000 / n)
            return got

        # warm-up: connections, pools, caches
        sent += measure("verify", 2).requests
        measure("ping", 2)
        for values in cpu.values():
            values.clear()
        sampler.reset()
        for i in range(ROUNDS):
            order = ("ping", "verify") if i % 2 == 0 else ("verify", "ping")
            got = {which: measure(which, SECONDS) for which in order}
            rounds.append(got)
            v, p = got["verify"], got["ping"]
            sent += v.requests
            print(
                f"   round {i + 1}/{ROUNDS}: {label} {v.rps:7.1f} req/s (p50 {v.p50_ms:.1f} ms, "
                f"p99 {v.p99_ms:.1f} ms)  ping {p.rps:7.1f} req/s  ratio {v.rps / max(p.rps, 1e-9):.3f}  "
                f"errors {v.errors + p.errors}",
                flush=True,
            )
        # the same load through a single connection: how throughput scales with concurrency, and (no lock
        # waits) the CPU cost of one call
        single = [measure("verify", SECONDS, connections=1) for _ in range(2)]
        sent += sum(r.requests for r in single)
        for key in ("verify_server", "verify_db"):
            cpu[key.replace("verify", "single")] = cpu[key][ROUNDS:]
            cpu[key] = cpu[key][:ROUNDS]
    finally:
        stop_server(proc)
        sampler.stopped.set()
        sampler.join(10)
    server_log = log_path.read_text(errors="replace").strip()
    with engine.connect() as conn:
        checked = checks(conn, sent)
    engine.dispose()
    if not rounds:
        raise Skip("no rounds were run (WORKCARD_BENCH_ROUNDS=0)")
    return _rows(
        Measured(rounds, single, cpu, sampler.summary(), server_log), name=name, label=label,
        label_one=label_one, what=what or label, seeded=seeded, goal=goal, checked=checked,
        detailed_notes=detailed_notes,
    )  # fmt: skip


@dataclass
class Measured:
    rounds: list[dict[str, _load.LoadResult]]  # per round: "verify" and "ping"
    single: list[_load.LoadResult]  # the load through one connection
    cpu: dict[str, list[float]]  # ms CPU per request: {verify,single,ping}_server, {verify,single}_db
    waits: str  # WaitSampler.summary()
    server_log: str


def _rows(
    m: Measured,
    *,
    name: str,
    label: str,
    label_one: str,
    what: str,
    seeded: str,
    goal: float,
    checked: str,
    detailed_notes: bool,
) -> list[dict[str, Any]]:
    rounds, single, cpu = m.rounds, m.single, m.cpu
    verify_rps = [r["verify"].rps for r in rounds]
    ping_rps = [r["ping"].rps for r in rounds]
    ratios = [r["verify"].rps / r["ping"].rps for r in rounds if r["ping"].rps]
    errors = sum(r["verify"].errors + r["ping"].errors for r in rounds)
    setup = (
        f"{seeded}, {CONNECTIONS} keep-alive connections, {ROUNDS} rounds × {SECONDS:g} s "
        f"alternating {label}/ping, `workcard serve --workers {WORKERS}`, client {_load.client_name()}"
    )
    common = f"{setup}; non-2xx/socket errors: {errors}"
    if "Traceback" in m.server_log:
        common += f"; the server logged errors: {server_errors(m.server_log)}"
    of_medians = f"ratio of medians {median(verify_rps) / median(ping_rps):.3f}; " if detailed_notes else ""
    v_server, v_db, p_server = (
        median(cpu["verify_server"]),
        median(cpu["verify_db"]),
        median(cpu["ping_server"]),
    )
    s_server, s_db = median(cpu["single_server"]), median(cpu["single_db"])
    single_rps = median([r.rps for r in single])
    single_p50 = f", p50 {median([r.p50_ms for r in single]):.1f} ms" if detailed_notes else ""
    return [
        result(
            f"{name}/throughput", median(verify_rps), "req/s", baseline=median(ping_rps),
            ratio=median(ratios), goal=f"ratio >= {goal}",
            notes=(f"{what} vs GET {PING} in the same run, ratio = median of per-round ratios "
                   f"({', '.join(f'{r:.3f}' for r in ratios)}); {of_medians}{common}; {m.waits}; "
                   f"{checked}"),
        ),
        result(
            f"{name}/scaling", median(verify_rps), "req/s", baseline=single_rps,
            ratio=median(verify_rps) / single_rps if single_rps else None,
            notes=(f"{label} req/s with {CONNECTIONS} connections (value) vs 1 connection "
                   f"(baseline{single_p50}), same server; a ratio below 1 means concurrent requests slow each "
                   "other down (lock waits)"),
        ),
        result(f"{name}/latency_p50", median([r["verify"].p50_ms for r in rounds]), "ms",
               baseline=median([r["ping"].p50_ms for r in rounds]),
               notes=f"{label} p50 (baseline: ping p50), median of rounds; {setup}"),
        result(f"{name}/latency_p99", median([r["verify"].p99_ms for r in rounds]), "ms",
               baseline=median([r["ping"].p99_ms for r in rounds]),
               notes=f"{label} p99 (baseline: ping p99), median of rounds; {setup}"),
        result(f"{name}/cpu_per_request", s_server + s_db, "ms CPU", baseline=p_server,
               ratio=p_server / (s_server + s_db) if s_server + s_db else None,
               notes=(f"CPU per {label_one} through 1 connection (no lock waits): {s_server:.2f} ms in the "
                      f"server processes + {s_db:.2f} ms in PostgreSQL backends (with {CONNECTIONS} "
                      f"connections: {v_server:.2f} + {v_db:.2f} ms); baseline = ping, server processes. The "
                      f"ratio ping/{label_one} is about the best throughput ratio a CPU-bound 2-core machine "
                      "can show without lock waits")),
    ]  # fmt: skip
