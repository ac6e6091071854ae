"""Partner verification under concurrent load, against a trivial route of the same server in the same run.

A fresh PostgreSQL database is migrated and seeded with employers, a few hundred foreign nationals and
their valid permits, and a partner client with the scope ``permits:verify``. The real server
(``workcard serve --workers 2``) runs as a subprocess; keep-alive connections then alternate, round by
round, between ``POST /api/v1/permits/verify`` (a random seeded permit with its holder's name) and
``GET /api/v1/ping``. Goal (the issue): verify req/s ≥ 0.6 × ping req/s. The server, the rounds and the
result rows are ``benchmarks/_http.py``'s ``compare_with_ping``."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
from typing import Any

import httpx
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.orm import Session

from benchmarks import _http
from benchmarks._common import Stopwatch
from workcard import audit
from workcard.db import make_engine
from workcard.iam import service as iam
from workcard.iam.roles import Scope
from workcard.permits import rules
from workcard.permits.models import Employer, Foreigner, Permit, PermitSerial

PEOPLE = int(os.environ.get("WORKCARD_BENCH_PEOPLE", "400"))
GOAL = 0.6
PATH = "/api/v1/permits/verify"

EMPLOYERS = [
    ("Tianjin Bohai Precision Machinery Co., Ltd.", "12", "Tianjin", "18 Haitai Huake 2nd Road, Binhai"),
    ("Beijing Zhongguancun Software Park Co., Ltd.", "11", "Beijing", "8 Dongbeiwang West Road, Haidian"),
    (
        "Shanghai Lujiazui Financial Consulting Co., Ltd.",
        "31",
        "Shanghai",
        "501 Yincheng Middle Road, Pudong",
    ),
    ("Shenzhen Nanshan Robotics Co., Ltd.", "44", "Shenzhen", "9 Keji South 12th Road, Nanshan"),
    ("Suzhou Industrial Park Biomedicine Co., Ltd.", "32", "Suzhou", "218 Xinghu Street, SIP"),
    ("Hangzhou West Lake Language School", "33", "Hangzhou", "77 Wensan Road, Xihu"),
    ("Chengdu Tianfu Aerospace Components Co., Ltd.", "51", "Chengdu", "1480 Tianfu Avenue North"),
    ("Wuhan Optics Valley Photonics Co., Ltd.", "42", "Wuhan", "1 Guanggu Avenue, Donghu"),
]
# (nationality, given names, surnames) as printed in the passports' machine-readable zones or visual zones.
NAMES = [
    ("GBR", ["Oliver", "Amelia", "Harry James", "Isla", "George"], ["Smith", "O'Neill", "Taylor", "Brown"]),
    ("USA", ["Emma", "Liam", "Olivia Grace", "Noah"], ["Johnson", "Williams", "García-López", "Miller"]),
    ("DEU", ["Jürgen", "Anna-Lena", "Lukas", "Sophie"], ["Müller", "Schröder", "Weiß", "Becker"]),
    ("FRA", ["Jean-Luc", "Léa", "Théo", "Chloé"], ["Lefèvre", "Dubois", "Moreau", "D'Artagnan"]),
    ("ESP", ["José", "María del Carmen", "Álvaro", "Lucía"], ["García", "Fernández", "Núñez", "Pérez"]),
    ("VNM", ["Văn Minh", "Thị Lan", "Đức Anh", "Thu Hà"], ["Nguyễn", "Trần", "Lê", "Phạm"]),
    ("JPN", ["Haruto", "Yui", "Sota", "Hina"], ["Yamamoto", "Sato", "Suzuki", "Takahashi"]),
    ("KOR", ["Minjun", "Seoyeon", "Jiho", "Hayoon"], ["Kim", "Lee", "Park", "Choi"]),
    (
        "RUS",
        ["Aleksandr", "Ekaterina", "Dmitrii", "Anastasiia"],
        ["Ivanov", "Smirnova", "Kuznetsov", "Popova"],
    ),
    ("IND", ["Aarav", "Priya", "Vihaan", "Ananya"], ["Sharma", "Patel", "Reddy", "Iyer"]),
    ("BRA", ["João", "Beatriz", "Gabriel", "Mariana"], ["Silva", "Gonçalves", "Araújo", "Santos"]),
    ("NGA", ["Chinedu", "Ngozi", "Oluwaseun", "Amaka"], ["Okafor", "Adeyemi", "Eze", "Balogun"]),
]
POSITIONS = ["Senior Engineer", "Language Teacher", "Research Scientist", "Product Manager", "Chief Designer"]


def _uscc(rng: random.Random, province: str) -> str:
    body = "91" + province + "0100" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return rules.check_uscc(body + rules.uscc_check_char(body))


def seed(url: str, people: int, rng: random.Random) -> tuple[list[str], str]:
    """Seed the database; return (request bodies, Authorization header of the partner)."""
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    with engine.begin() as conn:
        employer_rows = [
            {"name": n, "uscc": _uscc(rng, p), "province": p, "city": c, "address": a,
             "created_at": now - dt.timedelta(days=900)}
            for n, p, c, a in EMPLOYERS
        ]  # fmt: skip
        employers = list(
            conn.execute(insert(Employer).returning(Employer.id, Employer.province), employer_rows)
        )
        persons: list[dict[str, Any]] = []
        used: set[tuple[str, str]] = set()
        while len(persons) < people:
            nationality, given, family = rng.choice(NAMES)
            name = rules.check_passport_name(f"{rng.choice(given)} {rng.choice(family)}")
            passport = rng.choice("ABCEGKPS") + f"{rng.randrange(10**7, 10**8)}"
            if (nationality, passport) in used:
                continue
            used.add((nationality, passport))
            persons.append({
                "employer_id": rng.choice(employers)[0], "passport_name": name, "chinese_name": None,
                "nationality": nationality, "passport_number": passport,
                "passport_expiry": today + dt.timedelta(days=rng.randrange(1500, 3600)),
                "date_of_birth": dt.date(rng.randrange(1962, 2000), rng.randrange(1, 13), rng.randrange(1, 29)),
                "sex": rng.choice("MF"), "photo": None, "created_at": now - dt.timedelta(days=800), "version": 1,
            })  # fmt: skip
        ids = list(conn.execute(insert(Foreigner).returning(Foreigner.id), persons).scalars())
        province_of = dict(employers)
        serials: dict[tuple[str, int], int] = {}
        permits = []
        for fid, person in zip(ids, persons, strict=True):
            valid_from = today - dt.timedelta(days=rng.randrange(0, 700))
            valid_until = valid_from + dt.timedelta(days=rng.randrange(730, 1826))
            province = province_of[person["employer_id"]]
            issued = dt.datetime.combine(valid_from, dt.time(1, 30), dt.UTC) - dt.timedelta(days=14)
            serial = serials[(province, issued.year)] = serials.get((province, issued.year), 0) + 1
            permits.append({
                "number": rules.make_permit_number(province, issued.year, serial), "foreigner_id": fid,
                "employer_id": person["employer_id"], "category": rng.choice("AABBC"),
                "position": rng.choice(POSITIONS), "work_location": "Headquarters", "valid_from": valid_from,
                "valid_until": valid_until, "status": "valid", "paper": False, "issued_at": issued,
                "cancelled_at": None, "cancel_reason": None, "version": 1,
            })  # fmt: skip
        conn.execute(insert(Permit), permits)
        conn.execute(
            insert(PermitSerial), [{"province": p, "year": y, "last": n} for (p, y), n in serials.items()]
        )
    with Session(engine) as session:
        issued_secret = iam.create_partner(
            session, actor="system:bench", name="Benchmark partner (social insurance)",
            scopes=[Scope.PERMITS_VERIFY.value], rate_limit_per_minute=100_000,
        )  # fmt: skip
        session.commit()
        client_id = issued_secret.client.client_id
    engine.dispose()
    bodies = []
    for person, permit in zip(persons, permits, strict=True):
        body: dict[str, str] = {"permit_number": permit["number"], "holder_name": person["passport_name"]}
        if rng.random() < 1 / 3:  # some partners also send the passport number
            body["passport_number"] = person["passport_number"]
        bodies.append(json.dumps(body, ensure_ascii=False))
    token = base64.b64encode(f"{client_id}:{issued_secret.secret}".encode()).decode()
    return bodies, f"Basic {token}"


def sanity_check(base: str, bodies: list[str], authorization: str, rng: random.Random) -> int:
    """The requests the load sends must be real successful verifications, not errors; returns how many
    were sent."""
    sample = rng.sample(bodies, 20)
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get(_http.PING).json() == {"status": "ok"}
        for body in sample:
            resp = client.post(
                PATH, content=body.encode(),
                headers={"Authorization": authorization, "Content-Type": "application/json"},
            )  # fmt: skip
            if resp.status_code != 200 or resp.json().get("result") != "valid":
                raise RuntimeError(f"verify answered {resp.status_code} {resp.text[:300]} for {body}")
    return len(sample)


def run() -> list[dict[str, Any]]:
    rng = random.Random(20261121)  # noqa: S311 - reproducible test data
    with _http.workspace() as (url, workdir):
        with Stopwatch() as seeding:
            bodies, authorization = seed(url, PEOPLE, rng)

        def audited(conn: Connection, sent: int) -> str:
            records = conn.scalar(
                select(func.count())
                .select_from(audit.AuditRecord)
                .where(audit.AuditRecord.action == "permit.verify")
            )
            return f"{records} verify audit records for ≥ {sent} answers; seeding {seeding.seconds:.1f} s"

        return _http.compare_with_ping(
            url, workdir, name="partner_verify", path=PATH, bodies=bodies, authorization=authorization,
            sanity_check=lambda base: sanity_check(base, bodies, authorization, rng), checks=audited,
            label="verify", label_one="verify", seeded=f"{PEOPLE} permits", goal=GOAL,
        )  # fmt: skip
