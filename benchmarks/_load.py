"""HTTP load for the benchmarks: wrk when it is installed (a C client that leaves the cores to the server),
else a small asyncio client with keep-alive connections (it takes a share of the CPU from the server,
which the results' notes say)."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess  # noqa: S404 - runs wrk, a fixed local binary
import time
from dataclasses import dataclass
from pathlib import Path

WRK_DIR = Path(__file__).resolve().parent / "wrk"


@dataclass
class LoadResult:
    requests: int
    seconds: float
    errors: int  # non-2xx answers and socket errors
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def client_name() -> str:
    return "wrk" if shutil.which("wrk") else "python-asyncio"


def run(
    base: str,
    *,
    method: str,
    path: str,
    connections: int,
    seconds: float,
    bodies: list[str] | None = None,
    authorization: str | None = None,
    bodies_file: Path | None = None,
) -> LoadResult:
    """Drive ``connections`` keep-alive connections at ``base + path`` for ``seconds``. With ``bodies``,
    each request sends one of them, chosen at random (POST, JSON)."""
    if shutil.which("wrk"):
        return _wrk(base, path, connections, seconds, bodies_file, authorization)
    return asyncio.run(_python(base, method, path, connections, seconds, bodies, authorization))


def _wrk(
    base: str,
    path: str,
    connections: int,
    seconds: float,
    bodies_file: Path | None,
    authorization: str | None,
) -> LoadResult:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    cmd += ["-s", str(WRK_DIR / "load.lua"), base + path]
    if bodies_file is not None:
        cmd += ["--", str(bodies_file), authorization or ""]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)  # noqa: S603
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(data[k] for k in data if k.startswith("errors_"))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


async def _python(
    base: str,
    method: str,
    path: str,
    connections: int,
    seconds: float,
    bodies: list[str] | None,
    authorization: str | None,
) -> LoadResult:
    hostport = base.split("://", 1)[1].rstrip("/")
    host, _, port = hostport.partition(":")
    head = f"{method} {path} HTTP/1.1\r\nHost: {hostport}\r\n"
    if authorization:
        head += f"Authorization: {authorization}\r\n"
    if bodies:
        requests = []
        for body in bodies:
            raw = body.encode()
            requests.append(
                (head + f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n").encode()
                + raw
            )
    else:
        requests = [(head + "\r\n").encode()]
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def one(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)  # noqa: S311 - load, not security
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                writer.write(rng.choice(requests))
                status = int((await reader.readline()).split()[1])
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    key, _, value = line.partition(b":")
                    if key.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if status >= 300:
                    errors += 1
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return LoadResult(
        requests=len(latencies), seconds=elapsed, errors=errors, p50_ms=pct(0.50), p99_ms=pct(0.99)
    )
