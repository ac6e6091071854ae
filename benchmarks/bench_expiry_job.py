"""The expiry job (SPEC W4) on 1,000,000 permits: one day's due cohort, against a bare UPDATE of the same rows.

A fresh PostgreSQL database is migrated and seeded in SQL (``INSERT ... SELECT generate_series``): 2,000
employers, 1,000,000 foreign nationals and one permit each, with valid-until dates spread evenly over three
years around the first measured day (about 900 permits end on any one day). Permits that ended before that
day are already ``expired`` (earlier runs of the job did it) and 2 % are ``cancelled``.

Then, for several consecutive days D (in increasing order, so that only D's cohort is ever due):
(a) the bare ``UPDATE permit SET status='expired' WHERE status='valid' AND valid_until < D+1`` in a
transaction, timed, then rolled back; (b) the real job, ``workcard.permits.jobs.expire_due`` in a loop with a
commit after each call (as ``workcard jobs expire-permits`` does), with the clock frozen at D+1, timed and
committed. Both see warm caches (the cohort is read once before either). Afterwards the job's work is
checked: exactly the cohort changed, the audit records and events name each of its permits once (one
record per permit or one per batch), and the audit chain verifies.
Goal (the issue): job time ≤ 2 × bare UPDATE time."""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from typing import Any

from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from benchmarks._common import Stopwatch, fresh_database, median, result
from workcard import audit, clock
from workcard.db import make_engine, make_sessionmaker
from workcard.permits import rules
from workcard.permits.jobs import expire_due
from workcard.permits.models import Employer

PERMITS = int(os.environ.get("WORKCARD_BENCH_PERMITS", "1000000"))
DAYS = int(os.environ.get("WORKCARD_BENCH_DAYS", "7"))
EMPLOYERS = 2000
SPREAD_DAYS = 1096  # valid_until spread over three years
GOAL = 2.0
SEED_BUDGET_S = 60
PROVINCES = ["11", "12", "31", "44", "32", "33", "51", "42", "37", "35", "21", "50"]


def _mod11_2_sql(body: str, length: int = 12) -> str:
    """ISO 7064 MOD 11-2 of a ``length``-digit SQL expression, inlined with the weights of
    ``rules.mod11_2`` (0–10; 10 is written X)."""
    weights = [pow(2, length - i, 11) for i in range(length)]
    terms = " + ".join(f"substr({body}, {i + 1}, 1)::int * {w}" for i, w in enumerate(weights))
    return f"(12 - ({terms}) % 11) % 11"


FOREIGNERS_SQL = """
INSERT INTO foreigner (id, employer_id, passport_name, chinese_name, nationality, passport_number,
                       passport_expiry, date_of_birth, sex, photo, created_at, version)
SELECT g,
       1 + g % :employers,
       (ARRAY['Oliver','Amelia','Jürgen','Léa','José','Văn Minh','Haruto','Minjun','Aleksandr','Priya',
              'João','Chinedu','Emma','Liam','Sophie','Álvaro'])[1 + g % 16] || ' ' ||
       (ARRAY['Smith','O''Neill','Müller','Lefèvre','García','Nguyễn','Yamamoto','Kim','Ivanov','Sharma',
              'Gonçalves','Okafor','Johnson','Becker','Núñez','Dubois','Taylor'])[1 + (g / 16) % 17],
       NULL,
       (ARRAY['GBR','USA','DEU','FRA','ESP','VNM','JPN','KOR','RUS','IND','BRA','NGA'])[1 + g % 12],
       'E' || lpad(g::text, 8, '0'),
       :today + 1500 + g % 2000,
       DATE '1962-01-01' + (g * 37) % 13500,
       CASE WHEN g % 2 = 0 THEN 'M' ELSE 'F' END,
       NULL,
       now() - interval '3 years',
       1
FROM generate_series(1, CAST(:n AS int)) AS g
"""

# valid_until = first_day - SPREAD/2 + (g*7919 mod SPREAD): about n/SPREAD permits end on each day.
PERMITS_SQL = """
INSERT INTO permit (id, number, foreigner_id, employer_id, category, position, work_location, valid_from,
                    valid_until, status, paper, issued_at, cancelled_at, cancel_reason, version)
SELECT p.g,
       p.body || CASE c.v WHEN 10 THEN 'X' ELSE c.v::text END,
       p.g, p.employer_id,
       (ARRAY['A','A','B','B','C'])[1 + p.g % 5],
       (ARRAY['Senior Engineer','Language Teacher','Research Scientist','Product Manager','Chief Designer'])
         [1 + p.g % 5],
       p.city || ' headquarters',
       p.valid_from, p.valid_until,
       CASE WHEN p.g % 50 = 0 THEN 'cancelled' WHEN p.valid_until < :first_day THEN 'expired' ELSE 'valid' END,
       false,
       p.issued_at,
       CASE WHEN p.g % 50 = 0 THEN p.issued_at + interval '200 days' END,
       CASE WHEN p.g % 50 = 0 THEN 'Employment ended' END,
       CASE WHEN p.g % 50 = 0 OR p.valid_until < :first_day THEN 2 ELSE 1 END
FROM (
  SELECT g, e.id AS employer_id, e.city, u.valid_until, u.valid_until - (365 + g % 1461) AS valid_from,
         ((u.valid_until - (365 + g % 1461) - 14)::timestamp + time '01:30') AT TIME ZONE 'UTC' AS issued_at,
         e.province || to_char(u.valid_until - (365 + g % 1461) - 14, 'YY') || lpad(g::text, 8, '0') AS body
  FROM generate_series(1, CAST(:n AS int)) AS g
  JOIN employer AS e ON e.id = 1 + g % :employers
  CROSS JOIN LATERAL (SELECT :first_day - CAST(:half AS int) + ((g::bigint * 7919) % :spread)::int AS valid_until) AS u
) AS p
CROSS JOIN LATERAL (SELECT CHECK_DIGIT AS v) AS c
""".replace("CHECK_DIGIT", _mod11_2_sql("p.body"))


def _employers(engine: Engine, rng: random.Random) -> None:
    rows = []
    for i in range(1, EMPLOYERS + 1):
        province = PROVINCES[i % len(PROVINCES)]
        body = (
            "91"
            + province
            + "0100"
            + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
        )
        rows.append({
            "id": i, "name": f"Employer No. {i} Co., Ltd.", "uscc": body + rules.uscc_check_char(body),
            "province": province, "city": f"City {province}", "address": f"{i} Development Avenue",
            "created_at": dt.datetime.now(dt.UTC) - dt.timedelta(days=2000),
        })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Employer), rows)


SCHEMA_SQL = """
SELECT 'constraint' AS kind, conname AS name, pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE conrelid = CAST(:table AS regclass) AND contype IN ('u', 'f')
UNION ALL
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
WHERE i.indrelid = CAST(:table AS regclass) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1, 2
"""


def _schema(conn: Any, table: str) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in conn.execute(text(SCHEMA_SQL), {"table": table})]


def _bulk_load(conn: Any, table: str, sql: str, params: dict[str, Any]) -> None:
    """Fill ``table`` with its secondary indexes, unique and foreign keys set aside, then put them back
    exactly as the migration made them (checked), which is several times faster than row by row."""
    before = _schema(conn, table)
    for kind, name, _definition in before:
        if kind == "constraint":
            conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        else:
            conn.execute(text(f'DROP INDEX "{name}"'))
    conn.execute(text(sql), params)
    for kind, name, definition in before:
        if kind == "constraint":
            conn.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
        else:
            conn.execute(text(definition))
    if _schema(conn, table) != before:
        raise RuntimeError(f"seeding changed the indexes or constraints of {table}")


def seed(engine: Engine, first_day: dt.date, n: int) -> float:
    """Seed ``n`` permits; return the seconds it took."""
    started = time.perf_counter()
    _employers(engine, random.Random(7))  # noqa: S311 - test data
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        _bulk_load(conn, "foreigner", FOREIGNERS_SQL, {"employers": EMPLOYERS, "today": first_day, "n": n})
        _bulk_load(
            conn, "permit", PERMITS_SQL,
            {"first_day": first_day, "half": SPREAD_DAYS // 2, "spread": SPREAD_DAYS, "employers": EMPLOYERS, "n": n},
        )  # fmt: skip
        for table in ("employer", "foreigner", "permit"):
            conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        conn.execute(text("VACUUM ANALYZE employer, foreigner, permit"))
    return time.perf_counter() - started


def check_numbers(engine: Engine) -> None:
    """The SQL-made permit numbers are what rules.make_permit_number makes."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT p.number, e.province, p.issued_at, p.id FROM permit p JOIN employer e ON e.id = p.employer_id "
                 "WHERE p.id IN (1, 2, 3, 777, 4242, 99991) OR p.id = (SELECT max(id) FROM permit)")
        ).all()  # fmt: skip
    for number, province, issued_at, pid in rows:
        expected = rules.make_permit_number(province, issued_at.year, pid)
        if number != expected or not rules.is_valid_permit_number(number):
            raise RuntimeError(f"seeded permit {pid} has number {number}, expected {expected}")


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        out = {
            str(s): int(n)
            for s, n in conn.execute(text("SELECT status, count(*) FROM permit GROUP BY status"))
        }
        out["audit"] = int(conn.scalar(text("SELECT count(*) FROM audit_record")) or 0)
        out["max_audit_id"] = int(conn.scalar(text("SELECT coalesce(max(id), 0) FROM audit_record")) or 0)
        out["max_event_id"] = int(conn.scalar(text("SELECT coalesce(max(id), 0) FROM domain_event")) or 0)
    return out


def _covered(rows: list[tuple[str, Any]], key: str) -> list[int]:
    """Permit ids that audit records or events name: one each (subject id) or a batch (a list of permits)."""
    ids: list[int] = []
    for subject_id, data in rows:
        listed = (data or {}).get(key) if isinstance(data, dict) else None
        if isinstance(listed, list):
            ids += [int(p["id"]) for p in listed]
        else:
            ids.append(int(subject_id))
    return ids


def bare_update(engine: Engine, due_before: dt.date) -> tuple[float, int]:
    """Time the bare UPDATE of the cohort and its COMMIT (the job commits too), then put the rows back
    (untimed) so that the job finds the same cohort."""
    with engine.connect() as conn:
        with Stopwatch() as sw:
            trans = conn.begin()
            rows = conn.execute(
                text("UPDATE permit SET status = 'expired' WHERE status = 'valid' AND valid_until < :day"),
                {"day": due_before},
            ).rowcount
            trans.commit()
        with conn.begin():
            conn.execute(
                text("UPDATE permit SET status = 'valid' WHERE status = 'expired' AND version = 1 "
                     "AND valid_until = :day"),
                {"day": due_before - dt.timedelta(days=1)},
            )  # fmt: skip
    return sw.seconds, int(rows)


def run_job(engine: Engine, due_before: dt.date) -> tuple[float, int, int]:
    """Run the job as ``workcard jobs expire-permits`` does, with the clock at 02:00 of ``due_before``
    in China. Returns (seconds, permits expired, calls)."""
    maker = make_sessionmaker(engine)
    at = dt.datetime.combine(due_before, dt.time(2, 0), tzinfo=clock.CHINA)
    total = calls = 0
    with clock.frozen(at), Stopwatch() as sw:
        while True:
            with maker() as session:
                done = expire_due(session)
                session.commit()
            total += done
            calls += 1
            if done == 0:
                break
    return sw.seconds, total, calls


def check_day(engine: Engine, day: dt.date, before: dict[str, int], after: dict[str, int]) -> int:
    """The job changed exactly the day's cohort and recorded each of its permits in the audit trail and in
    the events, once (one record per permit or one per batch, either is accepted). Returns how many
    audit records the job wrote."""
    with engine.connect() as conn:
        cohort = {
            int(i)
            for i in conn.scalars(
                text("SELECT id FROM permit WHERE valid_until = :day AND status = 'expired' AND version = 2"),
                {"day": day},
            )
        }
        audited = conn.execute(
            text("SELECT subject_id, after FROM audit_record WHERE id > :last AND action = 'permit.expire'"),
            {"last": before["max_audit_id"]},
        ).all()
        events = conn.execute(
            text(
                "SELECT subject_id, payload FROM domain_event WHERE id > :last AND type LIKE 'permit%.expired'"
            ),
            {"last": before["max_event_id"]},
        ).all()
        still_due = conn.scalar(
            text("SELECT count(*) FROM permit WHERE status = 'valid' AND valid_until <= :day"), {"day": day}
        )
    problems = []
    n = len(cohort)
    if (
        after.get("valid", 0) != before.get("valid", 0) - n
        or after.get("expired", 0) != before.get("expired", 0) + n
    ):
        problems.append(
            f"valid/expired changed by {before.get('valid', 0) - after.get('valid', 0)}, cohort {n}"
        )
    if after.get("cancelled") != before.get("cancelled"):
        problems.append("cancelled permits changed")
    if after["audit"] != before["audit"] + len(audited):
        problems.append("audit records other than permit.expire were written")
    for what, ids in (
        ("audit records", _covered(audited, "permits")),
        ("events", _covered(events, "permits")),
    ):
        if sorted(ids) != sorted(cohort):
            problems.append(f"{what} name {len(ids)} permits ({len(set(ids))} distinct), the cohort has {n}")
    if still_due:
        problems.append(f"{still_due} due permits still valid")
    if problems:
        raise RuntimeError(f"expiry job on {day}: " + "; ".join(problems))
    return len(audited)


def run() -> list[dict[str, Any]]:
    first_day = clock.today() + dt.timedelta(days=30)
    bare_s: list[float] = []
    job_s: list[float] = []
    ratios: list[float] = []
    cohorts: list[int] = []
    records: list[int] = []
    with fresh_database() as url:
        from workcard.migrate import upgrade

        upgrade(url)
        engine = make_engine(url)
        try:
            seed_s = seed(engine, first_day, PERMITS)
            print(f"   seeded {PERMITS:,} permits in {seed_s:.1f} s", flush=True)
            check_numbers(engine)
            for k in range(DAYS):
                day = first_day + dt.timedelta(days=k)
                due_before = day + dt.timedelta(days=1)
                with engine.connect() as conn:  # warm the cache for both contestants
                    conn.execute(
                        text("SELECT * FROM permit WHERE status = 'valid' AND valid_until = :d"), {"d": day}
                    ).all()
                before = counts(engine)
                b, cohort = bare_update(engine, due_before)
                j, expired, calls = run_job(engine, due_before)
                if expired != cohort:
                    raise RuntimeError(
                        f"{day}: the job expired {expired} permits, the bare UPDATE matched {cohort}"
                    )
                records.append(check_day(engine, day, before, counts(engine)))
                bare_s.append(b)
                job_s.append(j)
                ratios.append(j / b)
                cohorts.append(cohort)
                print(f"   {day}: cohort {cohort}, bare UPDATE {b * 1000:7.1f} ms, job {j * 1000:7.1f} ms "
                      f"({calls} calls), ratio {j / b:5.2f}", flush=True)  # fmt: skip
            with Session(engine) as session:
                report = audit.verify(session)
            if not report.ok or report.checked != sum(records):
                raise RuntimeError(f"audit chain: {report.checked} records, problems {report.problems[:3]}")
        finally:
            engine.dispose()
    per_row_us = median([j / c * 1e6 for j, c in zip(job_s, cohorts, strict=True)])
    setup = (f"{PERMITS:,} permits, {DAYS} consecutive days, cohort {min(cohorts)}–{max(cohorts)} permits/day; "
             "job = expire_due loop with a commit per call (as `workcard jobs expire-permits`), "
             "bare = the same UPDATE and its COMMIT (rows put back untimed), warm cache")  # fmt: skip
    return [
        result(
            "expiry_job/one_day_cohort", median(job_s) * 1000, "ms", baseline=median(bare_s) * 1000,
            ratio=median(ratios), goal=f"ratio <= {GOAL:g}",
            notes=(f"{setup}; per-day ratios {', '.join(f'{r:.2f}' for r in ratios)}; ratio of medians "
                   f"{median(job_s) / median(bare_s):.2f}; checked: only the cohort changed, audit records and "
                   f"events cover each permit once ({sum(records)} audit records for {sum(cohorts)} permits), "
                   f"the audit chain verifies"),
        ),
        result("expiry_job/per_permit", per_row_us, "µs", notes="job time per expired permit, median of days"),
        result("expiry_job/seed", seed_s, "s", goal=f"value <= {SEED_BUDGET_S}",
               notes=f"seeding {PERMITS:,} permits + foreigners with generate_series, VACUUM ANALYZE"),
    ]  # fmt: skip
