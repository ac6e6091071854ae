"""The hash-chained audit trail (SPEC X5) and `workcard audit verify`."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, insert, select, update
from typer.testing import CliRunner

from workcard import audit, clock
from workcard.config import get_settings
from workcard.db import make_engine, make_sessionmaker
from workcard.migrate import upgrade


def _write(db, n=3):
    for i in range(n):
        audit.record(db, actor="staff:1:a", action="x.change", subject_type="x", subject_id=i,
                     before={"v": i}, after={"v": i + 1})  # fmt: skip
    return db.scalars(select(audit.AuditRecord).where(audit.AuditRecord.action == "x.change")
                      .order_by(audit.AuditRecord.id)).all()[-n:]  # fmt: skip


def test_records_are_written_at_commit_in_order(db):  # SPEC X5
    audit.record(db, actor="a", action="first", subject_type="x", subject_id=1)
    audit.record(db, actor="a", action="second", subject_type="x", subject_id=2)
    db.commit()
    actions = db.scalars(select(audit.AuditRecord.action).order_by(audit.AuditRecord.id)).all()
    assert actions[-2:] == ["first", "second"]
    assert audit.verify(db).ok


def test_rolled_back_records_are_not_written(db):  # SPEC X3
    audit.record(db, actor="a", action="never", subject_type="x", subject_id=1)
    db.rollback()
    assert db.scalar(select(audit.AuditRecord).where(audit.AuditRecord.action == "never")) is None


def test_intact_chain_verifies(db):  # SPEC X5
    _write(db)
    report = audit.verify(db)
    assert report.ok and report.checked >= 3


def test_changed_record_detected(db):  # SPEC X5
    recs = _write(db)
    db.execute(update(audit.AuditRecord).where(audit.AuditRecord.id == recs[1].id).values(after={"v": 99}))
    report = audit.verify(db)
    assert any(f"record {recs[1].id}: content" in p for p in report.problems)


def test_deleted_record_detected(db):  # SPEC X5
    recs = _write(db)
    db.execute(delete(audit.AuditRecord).where(audit.AuditRecord.id == recs[1].id))
    report = audit.verify(db)
    assert any(f"record {recs[2].id}: link broken" in p for p in report.problems)


def test_deleted_last_record_detected(db):  # SPEC X5
    recs = _write(db)
    db.execute(delete(audit.AuditRecord).where(audit.AuditRecord.id == recs[-1].id))
    assert not audit.verify(db).ok


def test_cli_verify(tmp_path, monkeypatch):  # SPEC X5
    from workcard.cli import app

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    maker = make_sessionmaker(make_engine(url))
    with maker() as session:
        _write(session)
        session.commit()
    monkeypatch.setenv("WORKCARD_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        ok = CliRunner().invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0 and "intact: 3 record(s)" in ok.output
        with maker() as session:
            first = session.scalar(select(audit.AuditRecord.id).order_by(audit.AuditRecord.id))
            session.execute(
                update(audit.AuditRecord).where(audit.AuditRecord.id == first).values(actor="someone")
            )
            session.commit()
        broken = CliRunner().invoke(app, ["audit", "verify"])
        assert broken.exit_code == 1 and "BROKEN" in broken.output
    finally:
        get_settings.cache_clear()


def test_savepoint_rollback_forgets_only_its_own_records_and_events(db):  # SPEC X3, X5
    from workcard import events

    seen = []
    events.subscribe("test.savepoint", lambda ev: seen.append(ev.payload["n"]))
    audit.record(db, actor="a", action="outer.kept", subject_type="x", subject_id=1)
    events.publish(db, "test.savepoint", "x", 1, n=1)
    try:
        with db.begin_nested():
            audit.record(db, actor="a", action="inner.dropped", subject_type="x", subject_id=2)
            events.publish(db, "test.savepoint", "x", 2, n=2)
            raise ValueError
    except ValueError:
        pass
    with db.begin_nested():
        audit.record(db, actor="a", action="inner.kept", subject_type="x", subject_id=3)
        events.publish(db, "test.savepoint", "x", 3, n=3)
    assert seen == []  # a released savepoint is not a commit
    db.commit()
    actions = db.scalars(
        select(audit.AuditRecord.action)
        .where(audit.AuditRecord.subject_type == "x")
        .order_by(audit.AuditRecord.id)
    ).all()
    assert actions == ["outer.kept", "inner.kept"]
    assert seen == [1, 3]


def test_reading_the_trail_inside_a_savepoint_loses_no_record(db):  # SPEC X3, X5
    audit.record(db, actor="t", action="test.outer", subject_type="x", subject_id=1)
    savepoint = db.begin_nested()
    audit.record(db, actor="t", action="test.inner", subject_type="x", subject_id=2)
    db.scalars(select(audit.AuditRecord)).all()  # a read of the trail before the savepoint ends
    savepoint.rollback()
    db.commit()
    actions = db.scalars(
        select(audit.AuditRecord.action).where(audit.AuditRecord.action.like("test.%"))
    ).all()
    assert actions == ["test.outer"]  # the outer record kept, the rolled-back one gone
    assert audit.verify(db).ok


def _append_to_lane(db, lane, n=2):
    """Append ``n`` records to ``lane`` as a group of partner calls does on PostgreSQL: linked to the
    lane's head (``audit.chain``), inserted with their lane, the head moved."""
    head = db.get(audit.AuditHead, lane)
    rows = [
        {"actor": "partner:p", "action": "lane.test", "subject_type": "x", "subject_id": str(i),
         "before": None, "after": {"i": i}, "request_id": None, "at": clock.now()}
        for i in range(n)
    ]  # fmt: skip
    last = audit.chain(rows, head.last_hash)
    db.execute(insert(audit.AuditRecord), [{**row, "lane": lane} for row in rows])
    head.count, head.last_hash = head.count + n, last
    db.flush()
    return db.scalars(
        select(audit.AuditRecord).where(audit.AuditRecord.lane == lane).order_by(audit.AuditRecord.id)
    ).all()[-n:]


def test_the_migration_makes_every_lane_with_its_own_genesis(db):  # SPEC X5
    heads = {h.id: h.last_hash for h in db.scalars(select(audit.AuditHead))}
    assert set(heads) == set(range(1, audit.LANES + 1))
    fresh = [lane for lane, last in heads.items() if last == audit.genesis(lane)]
    assert len({audit.genesis(lane) for lane in fresh}) == len(fresh)
    assert audit.genesis(1) == "0" * 64  # the one chain's, before there were lanes: still valid


def test_lanes_interleaved_with_lane_one_verify(db):  # SPEC X5
    _write(db, 2)
    _append_to_lane(db, 5)
    _write(db, 1)
    _append_to_lane(db, 16, 3)
    db.commit()
    report = audit.verify(db)
    assert report.ok, report.problems


def test_a_changed_or_moved_record_in_a_lane_is_detected(db):  # SPEC X5
    recs = _append_to_lane(db, 7, 3)
    db.execute(update(audit.AuditRecord).where(audit.AuditRecord.id == recs[1].id).values(after={"i": 9}))
    assert any(f"record {recs[1].id}: content" in p for p in audit.verify(db).problems)
    db.rollback()
    recs = _append_to_lane(db, 7, 3)
    db.execute(update(audit.AuditRecord).where(audit.AuditRecord.id == recs[1].id).values(lane=8))
    problems = audit.verify(db).problems
    assert any(f"record {recs[1].id}: link broken" in p for p in problems)  # not where lane 8 ended
    assert any(f"record {recs[2].id}: link broken" in p for p in problems)  # lane 7 lost a link
    db.execute(update(audit.AuditRecord).where(audit.AuditRecord.id == recs[1].id).values(lane=40))
    assert any("lane 40, which does not exist" in p for p in audit.verify(db).problems)


def test_a_lane_cut_short_or_without_its_head_is_detected(db):  # SPEC X5
    recs = _append_to_lane(db, 3, 2)
    db.execute(delete(audit.AuditRecord).where(audit.AuditRecord.id == recs[-1].id))
    assert any(p.startswith("lane 3: ends at record") for p in audit.verify(db).problems)
    db.rollback()
    db.execute(delete(audit.AuditHead).where(audit.AuditHead.id == 12))
    assert "lane 12: its head is missing (deleted)" in audit.verify(db).problems


def test_verify_reads_one_snapshot_while_lanes_are_written(committed_url):  # SPEC X5
    """Lanes commit independently, so a record can commit after one with a higher id: a walk that read
    each batch in a snapshot of its own missed it or counted a lane past its head. In one snapshot the
    walk is exact whatever is written meanwhile."""
    import threading

    if committed_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time")
    maker = make_sessionmaker(make_engine(committed_url))
    stop = threading.Event()

    def write(lane):
        with maker() as session:
            while not stop.is_set():
                _append_to_lane(session, lane, 1)
                session.commit()

    writers = [threading.Thread(target=write, args=(lane,)) for lane in (4, 5, 6)]
    for writer in writers:
        writer.start()
    try:
        reports = []
        deadline = time.monotonic() + 60  # on a loaded machine the writers may start late
        while len(reports) < 5 or reports[-1].checked <= reports[0].checked:
            with maker() as session:
                reports.append(audit.verify(session, batch=2))
            if time.monotonic() > deadline:
                break
    finally:
        stop.set()
        for writer in writers:
            writer.join(10)
    assert all(r.ok for r in reports), [r.problems[:3] for r in reports]
    assert reports[-1].checked > reports[0].checked  # the lanes were written during the walks
