"""What one group of partner calls costs, in one process, without HTTP: the CPU of
``web.partner.PartnerRoute``'s handler and the commit, for groups of 1, 8 and 16 calls of
``POST /api/v1/verifications`` and of ``POST /api/v1/permits/verify`` (informative; no goal), both
ways a group runs: on the driver in the event loop (``_handle_pg``, as the server runs it on
PostgreSQL; decision 0011) and through a Session (``_handle``, as on SQLite; here on PostgreSQL).

A fresh PostgreSQL database is seeded as for ``partner_verify`` and the letter codes made as for
``online_verify``. Each size runs 300 timed groups after 50 warm-up groups, through the real handler in
a real transaction (authenticate, read, count, work, write, audit, commit), with random seeded permits.
Figures are the median of the groups' thread CPU time (``time.thread_time``). It shows the fixed cost of a group (its
statements and commit) against the cost of each call, which is what the throughput benchmarks'
ratios are made of."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Callable
from typing import Any

from benchmarks import _http
from benchmarks._common import median, result
from benchmarks.bench_online_verify import letter_codes, var_dir
from benchmarks.bench_partner_verify import PEOPLE, seed
from workcard.credentials import api as credentials_api
from workcard.credentials.schemas import VerificationRequest
from workcard.db import make_engine, make_sessionmaker
from workcard.groupcommit import connect
from workcard.iam.service import PartnerCall
from workcard.permits import api as permits_api
from workcard.permits.schemas import PermitVerifyRequest
from workcard.web.partner import _Call, _conninfo

SIZES = (1, 8, 16)
WARM_UP, ROUNDS = 50, 300


def _check(answers: Any) -> None:
    if any(isinstance(a, Exception) for a in answers):
        raise RuntimeError(f"a call was refused: {answers}")


def _median_cpu(group: Callable[[], None]) -> float:
    for _ in range(WARM_UP):
        group()
    samples = []
    for _ in range(ROUNDS):
        started = time.thread_time()
        group()
        samples.append(time.thread_time() - started)
    return median(samples) * 1000


def _session_cpu(
    maker: Any, route: Any, make_payload: Callable[[], Any], partner: PartnerCall, size: int
) -> float:
    def group() -> None:
        calls = [_Call(partner, make_payload()) for _ in range(size)]
        with maker() as session:
            answers = route._handle(session, calls)
            session.commit()
        _check(answers)

    return _median_cpu(group)


def _driver_cpu(
    conninfo: str, route: Any, make_payload: Callable[[], Any], partner: PartnerCall, size: int
) -> float:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(connect(conninfo))
    try:

        def group() -> None:
            calls = [_Call(partner, make_payload()) for _ in range(size)]
            _check(loop.run_until_complete(route._handle_pg(conn, calls)))

        return _median_cpu(group)
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


def run() -> list[dict[str, Any]]:
    rng = random.Random(20261123)  # noqa: S311 - reproducible test data
    rows: list[dict[str, Any]] = []
    with _http.workspace() as (url, workdir), var_dir(workdir / "var"):
        bodies, authorization = seed(url, PEOPLE, rng)
        codes, _ = letter_codes(url)
        client_id, secret = base64.b64decode(authorization.split()[1]).decode().split(":", 1)
        partner = PartnerCall(client_id, secret, "/bench", "bench")
        engine = make_engine(url)
        maker = make_sessionmaker(engine)
        requests = [PermitVerifyRequest.model_validate_json(b) for b in bodies]
        kinds = (
            ("verifications", credentials_api._check, lambda: VerificationRequest(qr_text=rng.choice(codes))),
            ("permits_verify", permits_api._verify, lambda: rng.choice(requests)),
        )
        ways = (
            ("driver", lambda *a: _driver_cpu(_conninfo(engine.url), *a)),
            ("session", lambda *a: _session_cpu(maker, *a)),
        )
        try:
            for way, measure in ways:
                for name, route, make_payload in kinds:
                    one = None
                    for size in SIZES:
                        ms = measure(route, make_payload, partner, size)
                        one = ms if size == 1 else one
                        print(
                            f"   {way} {name}: group of {size:2d}  {ms:6.2f} ms CPU, {ms / size:5.2f} ms a call",
                            flush=True,
                        )
                        rows.append(result(
                            f"group_commit/{name}_{way}_{size}", ms, "ms CPU", baseline=one,
                            ratio=ms / size / one if one else None,
                            notes=f"CPU of one group of {size} call(s) of the real handler and commit "
                            f"({'on the driver, as on PostgreSQL' if way == 'driver' else 'through a Session, as on SQLite'}), "
                            f"in process, median of {ROUNDS} groups after {WARM_UP} warm-up; baseline = a group of "
                            "1; ratio = the cost of a call in this group size / in a group of 1",
                        ))  # fmt: skip
        finally:
            engine.dispose()
    return rows
