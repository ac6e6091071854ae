"""Online verification of scanned permit codes under concurrent load, against a trivial route of the same
server in the same run.

A fresh PostgreSQL database is migrated and seeded as for ``partner_verify`` (employers, a few hundred
foreign nationals with valid permits, a partner client with the scope ``permits:verify`` and a high rate
limit); then every permit gets its notification letter's code from the real
``credentials.service.letter_code`` (the first call makes the signing key, under the same
``WORKCARD_VAR_DIR`` the server is then started with, so the server finds the key files). The real server
(``workcard serve --workers 2``) runs as a subprocess; keep-alive connections then alternate, round by
round, between ``POST /api/v1/verifications`` (``{"qr_text": <a random seeded letter code>}``) and
``GET /api/v1/ping``. Goal: verifications req/s ≥ 0.5 × ping req/s. The server, the rounds and the
result rows are ``benchmarks/_http.py``'s ``compare_with_ping``."""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from benchmarks import _http
from benchmarks._common import Stopwatch
from benchmarks.bench_partner_verify import PEOPLE, seed
from workcard import audit
from workcard.config import get_settings
from workcard.credentials import service as credentials
from workcard.credentials.models import Verification
from workcard.db import make_engine
from workcard.permits.models import Foreigner, Permit

GOAL = 0.5
PATH = "/api/v1/verifications"


@contextlib.contextmanager
def var_dir(path: Path) -> Iterator[None]:
    """Point this process's settings at ``path`` (WORKCARD_VAR_DIR), as start_server does for the
    server, so that the signing key made while seeding is the one the server reads."""
    before = os.environ.get("WORKCARD_VAR_DIR")
    os.environ["WORKCARD_VAR_DIR"] = str(path)
    get_settings.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("WORKCARD_VAR_DIR", None)
        else:
            os.environ["WORKCARD_VAR_DIR"] = before
        get_settings.cache_clear()


def letter_codes(url: str) -> tuple[list[str], dict[str, str]]:
    """The letter code of every seeded permit (real service call), and permit number -> holder name."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Permit, Foreigner.passport_name)
                .join(Foreigner, Foreigner.id == Permit.foreigner_id)
                .order_by(Permit.id)
            ).all()
            codes = [credentials.letter_code(session, permit) for permit, _ in rows]
            holders = {permit.number: name for permit, name in rows}
            session.commit()  # the signing key's row and its audit record
    finally:
        engine.dispose()
    return codes, holders


def sanity_check(
    base: str, codes: list[str], holders: dict[str, str], authorization: str, rng: random.Random
) -> None:
    """The requests the load sends must be real checks that answer ``valid`` for the right permit; returns
    how many were sent."""
    sample = rng.sample(codes, min(20, len(codes)))
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get(_http.PING).json() == {"status": "ok"}
        for code in sample:
            resp = client.post(PATH, json={"qr_text": code}, headers={"Authorization": authorization})
            body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
            permit = body.get("permit") or {}
            if (
                resp.status_code != 200
                or body.get("verdict") != "valid"
                or holders.get(permit.get("permit_number", "")) != permit.get("holder_name")
            ):
                raise RuntimeError(f"{PATH} answered {resp.status_code} {resp.text[:300]} for {code}")
    return len(sample)


def run() -> list[dict[str, Any]]:
    rng = random.Random(20261122)  # noqa: S311 - reproducible test data
    with _http.workspace() as (url, workdir):
        with Stopwatch() as seeding:
            _, authorization = seed(url, PEOPLE, rng)
        with Stopwatch() as coding, var_dir(workdir / "var"):  # the directory start_server gives the server
            codes, holders = letter_codes(url)
        if not codes:
            raise RuntimeError("no letter codes were made")

        def recorded(conn: Connection, sent: int) -> str:
            verdicts = dict(
                conn.execute(select(Verification.verdict, func.count()).group_by(Verification.verdict)).all()
            )
            audited = conn.scalar(
                select(func.count())
                .select_from(audit.AuditRecord)
                .where(audit.AuditRecord.action == "permit.verify_code")
            )
            rows = ", ".join(f"{n} {verdict}" for verdict, n in sorted(verdicts.items()))
            return (f"verification rows: {rows or 'none'}, {audited} permit.verify_code audit records, for ≥ "
                    f"{sent} answers; seeding {seeding.seconds:.1f} s + letter codes {coding.seconds:.1f} s")  # fmt: skip

        return _http.compare_with_ping(
            url, workdir, name="online_verify", path=PATH,
            bodies=[json.dumps({"qr_text": code}) for code in codes], authorization=authorization,
            sanity_check=lambda base: sanity_check(base, codes, holders, authorization, rng), checks=recorded,
            label="verifications", label_one="verification", what=f"POST {PATH} (a random seeded letter code)",
            seeded=f"{len(codes)} permits with letter codes", goal=GOAL, detailed_notes=True,
        )  # fmt: skip
