"""Run the benchmarks: ``python -m benchmarks`` runs every ``benchmarks/bench_*.py``;
``python -m benchmarks NAME ...`` runs only those (``bench_partner_verify`` or ``partner_verify``).

Results go to ``benchmarks/results.json`` (rows of benchmarks not run this time are kept) and to the table
between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` in ``docs/performance.md``. A benchmark that
cannot run here (no PostgreSQL) is recorded as skipped; one that crashes makes the exit status 1."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import operator
import os
import re
import subprocess  # noqa: S404 - asks git which code was measured
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, Skip, machine, result

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
_GOAL_RE = re.compile(r"^\s*(ratio|value)\s*(<=|>=|<|>)\s*([0-9.]+)")
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def available() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def resolve(args: list[str]) -> list[str]:
    known = available()
    chosen = []
    for arg in args:
        stem = Path(arg).stem
        stem = stem if stem.startswith("bench_") else f"bench_{stem}"
        if stem not in known:
            raise SystemExit(f"unknown benchmark {arg!r}; known: {', '.join(known)}")
        chosen.append(stem)
    return chosen or known


def short(module: str) -> str:
    return module.removeprefix("bench_")


def command_line(args: list[str]) -> str:
    if not args and os.environ.get("MAKELEVEL"):
        return "make bench"
    return " ".join([".venv/bin/python -m benchmarks", *args])


def goal_met(row: dict[str, Any]) -> bool | None:
    match = _GOAL_RE.match(row.get("goal") or "")
    if not match:
        return None
    measured = row.get(match.group(1))
    if measured is None:
        return None
    return bool(_OPS[match.group(2)](measured, float(match.group(3))))


def run_one(module: str, command: str) -> tuple[list[dict[str, Any]], bool]:
    """(rows, crashed)."""
    print(f"== {module}", flush=True)
    started = time.monotonic()
    crashed = False
    try:
        rows = importlib.import_module(f"benchmarks.{module}").run()
    except Skip as exc:
        print(f"   skipped: {exc}", flush=True)
        rows = [result(short(module), None, "", notes=f"skipped: {exc}")]
    except Exception as exc:
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        rows = [result(short(module), None, "", notes=f"failed: {type(exc).__name__}: {first}")]
        crashed = True
    for row in rows:
        row["command"] = command
        if not row["name"].startswith(short(module)):
            row["name"] = f"{short(module)}/{row['name']}"
    print(f"   done in {time.monotonic() - started:.0f} s", flush=True)
    for row in rows:
        print("   " + json.dumps(row, ensure_ascii=False), flush=True)
    return rows, crashed


def merge(old: list[dict[str, Any]], new: list[dict[str, Any]], modules: list[str]) -> list[dict[str, Any]]:
    prefixes = [short(m) for m in modules]

    def replaced(row: dict[str, Any]) -> bool:
        name = str(row.get("name", ""))
        return any(name == p or name.startswith(p + "/") for p in prefixes)

    return [r for r in old if not replaced(r)] + new


def load_results() -> list[dict[str, Any]]:
    try:
        data = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def code_version() -> str:
    """The commit measured, and whether src/ had changes not yet committed (WORKCARD_BENCH_CODE overrides,
    for a run on an exported snapshot)."""
    if os.environ.get("WORKCARD_BENCH_CODE"):
        return os.environ["WORKCARD_BENCH_CODE"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()  # noqa: S603, S607
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()  # noqa: S603, S607
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha} + uncommitted changes in src/" if dirty else sha


def table(rows: list[dict[str, Any]], info: dict[str, Any], when: str) -> str:
    lines = [
        f"Last run: {when}, on {info['cpus']} CPU(s) {info['cpu_model']}, "
        f"{info['memory_gib']} GiB, {info['os']}, Python {info['python']}, {info['postgres']}.",
        "",
        "| Benchmark | Value | Unit | Baseline | Ratio | Goal | Met | Command | Notes |",
        "| --- | ---: | --- | ---: | ---: | --- | --- | --- | --- |",
    ]
    for r in rows:
        met = goal_met(r)
        met_text = "—" if met is None else ("yes" if met else "**no**")
        notes = str(r.get("notes") or "").replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {r['name']} | {fmt(r['value'])} | {r['unit'] or ''} | {fmt(r['baseline'])} | {fmt(r['ratio'])} "
            f"| {r['goal'] or '—'} | {met_text} | `{r['command']}` | {notes} |"
        )
    return "\n".join(lines)


def write_doc(rows: list[dict[str, Any]], info: dict[str, Any], when: str) -> None:
    block = f"{START}\n{table(rows, info, when)}\n{END}"
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def main(argv: list[str]) -> int:
    modules = resolve(argv)
    command = command_line(argv)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") + f", code {code_version()}"
    new: list[dict[str, Any]] = []
    crashed = False
    for module in modules:
        rows, failed = run_one(module, command)
        new += rows
        crashed = crashed or failed
    rows = merge(load_results(), new, modules)
    RESULTS.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    write_doc(rows, machine(), when)
    print(f"wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")
    missed = [r["name"] for r in new if goal_met(r) is False]
    if missed:
        print("goal missed: " + ", ".join(missed))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
