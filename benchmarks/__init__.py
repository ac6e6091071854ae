"""Benchmarks of the platform on PostgreSQL: ``make bench`` or ``python -m benchmarks [NAME ...]``.

Every ``benchmarks/bench_*.py`` module exposes ``run() -> list[dict]``; ``benchmarks.__main__`` runs them,
writes ``benchmarks/results.json`` and rewrites the table in ``docs/performance.md``."""
