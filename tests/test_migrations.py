"""Alembic migrations are the only way the schema is made; models and migrations agree."""

from __future__ import annotations

from workcard.migrate import check


def test_alembic_check(engine, database_url):
    check(database_url)  # raises if a model changed without a migration
