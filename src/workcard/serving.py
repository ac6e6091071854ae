"""``workcard serve --workers N``: N server processes, each with a listening socket of its own.

uvicorn's own supervisor binds one socket and shares it: the process whose event loop wakes first
accepts every connection waiting at that moment, so a client that opens its keep-alive connections
together (a partner system's pool) may find all of them on one process and one core, and the others
idle. Here each process binds its own socket to the same address with ``SO_REUSEPORT``, and the kernel
spreads new connections over the sockets (by a hash of the connection's addresses). The supervisor
restarts a process that dies and stops them all on SIGINT or SIGTERM. Where ``SO_REUSEPORT`` does not
spread connections (not Linux), uvicorn's own supervisor is used."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import multiprocessing
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

log = logging.getLogger(__name__)
RESTART_PAUSE = 1.0  # seconds before a process that ended is started again (doubled while they end at once)
QUICK_END = 10.0  # seconds: a process that ends sooner after its start "ended at once"
GIVE_UP = 5  # ends at once in a row after which the supervisor stops
PR_SET_PDEATHSIG = 1  # prctl(2)


def spreads_connections() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _end_with_parent() -> None:
    """Have the kernel stop this process (SIGTERM) when its supervisor dies, however it dies, so that no
    orphan goes on serving the address."""
    with contextlib.suppress(OSError, AttributeError):  # elsewhere the supervisor's own stop still applies
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    _end_with_parent()
    sock = _socket(host, port)
    uvicorn.Server(uvicorn.Config(**options)).run(sockets=[sock])


def taken(host: str, port: int) -> str | None:
    """Why host:port cannot be served (checked before any process starts): a server already answers
    there — with ``SO_REUSEPORT`` a second ``workcard serve`` could otherwise join it unnoticed and take
    half its connections — or the address cannot be bound. None when it is free."""
    local = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    try:
        with socket.create_connection((local, port), timeout=1):
            return f"cannot serve on {host}:{port}: a server already listens there (another workcard serve?)"
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        return f"cannot serve on {host}:{port}: {exc.strerror or exc}"
    return None


def serve(host: str, port: int, workers: int, lock_dir: Path, **options: Any) -> int:
    """Run ``workers`` processes of ``uvicorn.Config(**options)`` on host:port until SIGINT or SIGTERM;
    returns the exit status. The address is checked first (``taken``); a lock file in ``lock_dir`` keeps
    two supervisors started at the same moment from sharing it. A process that ends is started again,
    after a pause that doubles while processes keep ending at once; after ``GIVE_UP`` such ends in a
    row the supervisor stops (exit status 1): the application cannot start."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = (lock_dir / f"serve-{host or 'all'}-{port}.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log.error("cannot serve on %s:%d: another workcard serve is starting or running there", host, port)
        return 1
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def start() -> tuple[Any, float]:
        process = context.Process(target=_worker, args=(host, port, options), name="workcard-worker")
        process.start()
        return process, time.monotonic()

    processes = [start() for _ in range(workers)]
    pids = ", ".join(str(p.pid) for p, _ in processes)
    log.info("serving on %s:%d with %d processes (%s)", host, port, workers, pids)
    quick_ends, status = 0, 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, (process, started) in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                quick_ends = quick_ends + 1 if time.monotonic() - started < QUICK_END else 0
                if quick_ends >= GIVE_UP:
                    log.error("server processes keep ending as soon as they start; stopping")
                    stopping, status = True, 1
                    break
                pause = min(RESTART_PAUSE * 2 ** max(quick_ends - 1, 0), 30.0)
                log.warning(
                    "server process %s ended (exit %s); another in %.0f s",
                    process.pid,
                    process.exitcode,
                    pause,
                )
                deadline = time.monotonic() + pause
                while not stopping and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not stopping:
                    processes[i] = start()
    finally:
        for process, _ in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 30
        for process, _ in processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        lock.close()
    return status
