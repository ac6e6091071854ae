"""``workcard serve --workers N`` (src/workcard/serving.py): each server process listens on a socket of
its own, so the kernel spreads connections over all of them; the supervisor stops them all on SIGTERM
and refuses an address another program holds."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess  # noqa: S404 - starts our own command line
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from workcard import serving

pytestmark = pytest.mark.skipif(
    not serving.spreads_connections(), reason="SO_REUSEPORT spreads connections on Linux"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKCARD_")}
    env.update({
        "WORKCARD_VAR_DIR": str(home / "var"), "WORKCARD_HOST": "127.0.0.1", "WORKCARD_PORT": str(port),
        "WORKCARD_LOG_LEVEL": "WARNING", "WORKCARD_SECRET_KEY": "test-serving-" + "x" * 32,
    })  # fmt: skip
    return env


def _sockets_of(pid: int) -> set[int]:
    """The inodes of the sockets a process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _tcp(port: int, state: str) -> set[int]:
    """The inodes of the IPv4 TCP sockets on local ``port`` in ``state`` (0A listening, 01 established)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            found.add(int(fields[9]))
    return found


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def test_each_server_process_listens_and_takes_connections(tmp_path):  # SPEC X3
    port = _free_port()
    env = _env(tmp_path, port)
    subprocess.run([sys.executable, "-m", "workcard.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "workcard.cli", "serve", "--workers", "2"], env=env, cwd=tmp_path, stdout=log,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(_tcp(port, "0A")) < 2:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the two processes did not listen within 60 s"
            time.sleep(0.2)
        listening = _tcp(port, "0A")
        workers = [c for c in _children(proc.pid) if _sockets_of(c) & listening]  # not the resource tracker
        assert len(workers) == 2
        assert all(len(_sockets_of(w) & listening) == 1 for w in workers)  # a socket each
        for _ in range(100):  # both answer
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ping", timeout=5) as resp:  # noqa: S310
                    assert resp.status == 200
                break
            except OSError:
                time.sleep(0.2)
        for count in ("2", "1"):  # a second server on the same address is refused, not joined
            again = subprocess.run(  # noqa: S603 - our own command line
                [sys.executable, "-m", "workcard.cli", "serve", "--workers", count], env=env, cwd=tmp_path,
                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert again.returncode == 1, again.stderr
            assert f"cannot serve on 127.0.0.1:{port}: a server already listens there" in again.stderr
        assert len(_tcp(port, "0A")) == 2
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        time.sleep(0.5)
        established = _tcp(port, "01")
        held = [len(_sockets_of(w) & established) for w in workers]
        assert sum(held) == 64 and min(held) > 0, held  # all on one process: about 1 in 2**63
        for client in clients:
            client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not any(
            Path(f"/proc/{w}").exists() and "zombie" not in Path(f"/proc/{w}/status").read_text()
            for w in workers
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the supervisor and its processes
            proc.wait()
        log.close()


def test_an_address_another_program_holds_is_refused():  # SPEC X2
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        home = Path(tempfile.mkdtemp(prefix="workcard-serving-"))
        done = subprocess.run(  # noqa: S603 - our own command line
            [sys.executable, "-m", "workcard.cli", "serve", "--workers", "2"], env=_env(home, port), cwd=home,
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr


@pytest.fixture
def own_signals():
    """``serving.serve`` sets the process's SIGINT and SIGTERM handlers: put them back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_second_supervisor_starting_at_the_same_moment_is_refused(tmp_path, own_signals):  # SPEC X2
    import fcntl

    port = _free_port()
    with (tmp_path / f"serve-127.0.0.1-{port}.lock").open("w") as held:  # the first one holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert serving.serve("127.0.0.1", port, 2, tmp_path, app="workcard.asgi:app") == 1


def test_processes_that_cannot_start_make_the_supervisor_give_up(
    tmp_path, own_signals, monkeypatch
):  # SPEC X3
    monkeypatch.setattr(serving, "RESTART_PAUSE", 0.01)
    started = time.monotonic()
    status = serving.serve(
        "127.0.0.1", _free_port(), 1, tmp_path, app="workcard_no_such_module:app", log_config=None
    )
    assert status == 1  # not restarted for ever
    assert time.monotonic() - started < 60


def test_server_processes_end_when_their_supervisor_is_killed(tmp_path):  # SPEC X3
    port = _free_port()
    env = _env(tmp_path, port)
    subprocess.run([sys.executable, "-m", "workcard.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    proc = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "workcard.cli", "serve", "--workers", "2"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(_tcp(port, "0A")) < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        listening = _tcp(port, "0A")
        workers = [c for c in _children(proc.pid) if _sockets_of(c) & listening]
        proc.kill()  # no chance to stop them itself
        proc.wait()
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
            for w in workers:  # reap nothing (not ours); a zombie counts as ended
                status = Path(f"/proc/{w}/status")
                if status.exists() and "zombie" in status.read_text():
                    workers.remove(w)
            time.sleep(0.2)
        assert not _tcp(port, "0A"), "an orphan server process still listens"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
