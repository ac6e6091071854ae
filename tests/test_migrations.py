"""Alembic migrations are the only way the schema is made; models and migrations agree."""

from __future__ import annotations

from workcard.migrate import check


def test_alembic_check(engine, database_url):
    check(database_url)  # raises if a model changed without a migration


def test_the_audit_lanes_go_back_to_one_chain_only_while_the_other_lanes_are_empty(
    committed_url,
):  # SPEC X5
    """Downgrading past 0003 makes the trail one chain again; with records in lanes 2-16 it refuses
    (they could not be chained), and nothing is changed."""
    import pytest
    from alembic import command
    from sqlalchemy import text

    from workcard import audit
    from workcard.db import make_engine
    from workcard.migrate import alembic_config, upgrade

    config = alembic_config(committed_url)
    command.downgrade(config, "0002")  # lanes 2-16 empty: back to one head, no lane column
    engine = make_engine(committed_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM audit_head")) == 1
    upgrade(committed_url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO audit_record (at, actor, action, subject_type, subject_id, prev_hash, hash, lane) "
            f"VALUES (CURRENT_TIMESTAMP, 'a', 'x', 'x', '1', '{audit.genesis(2)}', 'h', 2)"
        ))  # fmt: skip
    with pytest.raises(RuntimeError, match="1 audit records are in lanes 2-16"):
        command.downgrade(config, "0002")
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM audit_head")) == audit.LANES
        assert conn.scalar(text("SELECT lane FROM audit_record WHERE hash = 'h'")) == 2
    engine.dispose()
