"""Browser journeys in real headless Chromium (Debian's ``chromium``; never ``playwright install``).

A real server process runs on a fresh SQLite database in a temporary directory, loaded with the demo
data (``workcard db upgrade`` and ``workcard demo``); the credentials are read from the demo's output,
as a person following the README would. Every test in this folder is marked ``browser`` (the
PostgreSQL run of ``make test`` leaves them out with ``-m "not browser"``)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
SHOTS = Path(os.environ.get("WORKCARD_SHOTS_DIR", "/tmp/shots"))  # noqa: S108 - screenshots to look at
HERE = Path(__file__).resolve().parent
_DEMO_LINE = re.compile(r"^\s+(?P<role>[a-z ]+?)\s{2,}(?P<user>\S+)\s+/\s+(?P<secret>\S+)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _workcard(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "workcard.cli", *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"workcard {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class Server:
    def __init__(
        self, base_url: str, credentials: dict[str, str], log: Path, env: dict[str, str], home: Path
    ) -> None:
        self.base_url = base_url
        self.credentials = credentials  # user name -> password, as printed by `workcard demo`
        self.log = log
        self.demo_lines: list[str] = []
        self._env = env
        self._home = home

    def workcard(self, *args: str) -> str:
        """Run a ``workcard`` command against this server's database, as its operator would."""
        return _workcard(list(args), self._env, self._home)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package (.ci/run does)")
    home = Path(tempfile.mkdtemp(prefix="workcard-browser-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKCARD_")}
    env.update({
        "WORKCARD_VAR_DIR": str(home / "var"), "WORKCARD_PASSWORD_PROFILE": "fast",
        "WORKCARD_HOST": "127.0.0.1", "WORKCARD_PORT": str(port), "WORKCARD_LOG_LEVEL": "WARNING",
    })  # fmt: skip
    _workcard(["db", "upgrade"], env, home)
    out = _workcard(["demo"], env, home)
    credentials = {m["user"]: m["secret"] for m in map(_DEMO_LINE.match, out.splitlines()) if m}
    assert {"hr", "officer"} <= credentials.keys(), f"no credentials in the demo output:\n{out}"

    log = home / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own command line
            [sys.executable, "-m", "workcard.cli", "serve"], env=env, cwd=home, stdout=sink,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server stopped (exit {proc.returncode}):\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /healthz within 30 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        running = Server(base, credentials, log, env, home)
        running.demo_lines = out.splitlines()
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def browser(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, server: Server) -> Iterator[Any]:
    """``new_page(viewport=(w, h), locale="zh-CN")``: a page in a fresh browser context (own cookies)."""
    contexts: list[Any] = []

    def make(viewport: tuple[int, int] = (1280, 900), locale: str = "zh-CN", **kw: Any) -> Any:
        context = browser.new_context(
            base_url=server.base_url, viewport={"width": viewport[0], "height": viewport[1]}, locale=locale,
            accept_downloads=True, **kw,
        )  # fmt: skip
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
