"""``workcard serve --workers N``: N server processes, each with a listening socket of its own.

uvicorn's own supervisor binds one socket and shares it: the process whose event loop wakes first
accepts every connection waiting at that moment, so a client that opens its keep-alive connections
together (a partner system's pool) may find all of them on one process and one core, and the others
idle. Here each process binds its own socket to the same address with ``SO_REUSEPORT``, and the kernel
spreads new connections over the sockets (by a hash of the connection's addresses). The supervisor
restarts a process that dies and stops them all on SIGINT or SIGTERM. Where ``SO_REUSEPORT`` does not
spread connections (not Linux), uvicorn's own supervisor is used."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import time
from typing import Any

import uvicorn

log = logging.getLogger(__name__)
RESTART_PAUSE = 1.0  # seconds between restarts of a process that keeps dying


def spreads_connections() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
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


def serve(host: str, port: int, workers: int, **options: Any) -> int:
    """Run ``workers`` processes of ``uvicorn.Config(**options)`` on host:port until SIGINT or SIGTERM;
    returns the exit status. The address is checked first (``taken``)."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def start() -> Any:
        process = context.Process(target=_worker, args=(host, port, options), name="workcard-worker")
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    log.info(
        "serving on %s:%d with %d processes (%s)",
        host,
        port,
        workers,
        ", ".join(str(p.pid) for p in processes),
    )
    try:
        while not stopping:
            time.sleep(0.2)
            for i, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    log.warning(
                        "server process %s ended (exit %s); starting another", process.pid, process.exitcode
                    )
                    time.sleep(RESTART_PAUSE)
                    processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 30
        for process in processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
    return 0
