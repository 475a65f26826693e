#!/usr/bin/env python
"""Measure how long each dashboard page takes to render against a big database.

    .venv/bin/python scripts/bench_dashboard.py [--database fleetlake_dashboard_bench] [--seed]
        [--runs 5] [--browser] [--json]

--seed first fills the database (scripts/seed_dashboard.py: 1M alerts, 100k device-minute rows).
Server side: each page's script run (all its queries + building every element) in Streamlit's
AppTest, as the read-only role, with the query caches emptied before each run ("cold") and kept
("warm"). --browser also serves `fleetlake dashboard` on the database and times, in Debian's
headless Chromium, a click in the sidebar until the page's title, charts, tables and map are
drawn, and the first load of the app in a new tab. Also EXPLAINs every query the pages ran:
a Seq Scan on a growing table is reported.
Prints one JSON object (--json) or a table; the medians are what the README quotes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psycopg2 import extensions  # noqa: E402

from dashboard.benchkit import PAGES, explain, render_page, time_reruns  # noqa: E402
from infra.settings import load_settings  # noqa: E402

QUERY = {"car": {"car": "car-0001"}}


def server_side(dsn: str, runs: int) -> tuple[dict, list]:
    results, queries = {}, []
    for page in PAGES:
        rendered = render_page(dsn, page, QUERY.get(page))
        assert not rendered.app.exception and not rendered.app.error, page
        queries += rendered.queries
        cold = time_reruns(rendered, runs, clear_cache=True)
        warm = time_reruns(rendered, runs, clear_cache=False)
        results[page] = {"cold_ms": _stats(cold), "warm_ms": _stats(warm),
                         "queries": len(rendered.queries)}
    return results, queries


def _stats(seconds: list[float]) -> dict:
    ms = sorted(1000 * s for s in seconds)
    return {"median": round(statistics.median(ms), 1), "max": round(ms[-1], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="fleetlake_dashboard_bench")
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--browser", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.seed:
        from seed_dashboard import main as seed

        seed(["--database", args.database])
    owner = extensions.make_dsn(settings.effective_pg_dsn, dbname=args.database)
    reader = extensions.make_dsn(owner, user=settings.local.pg_reader)
    pages, queries = server_side(reader, args.runs)
    plans = [explain(reader, text, params) for text, params in queries]
    report = {"database": args.database, "server": pages,
              "unindexed": sorted({t for p in plans for t in p.unindexed}),
              "slowest_query_ms": round(max(p.ms for p in plans), 2),
              "load_average": os.getloadavg()}
    if args.browser:
        from browser_timing import time_pages  # noqa: PLC0415 - only with --browser

        report["browser"] = time_pages(settings, args.database, args.runs)
    print(json.dumps(report) if args.json else _table(report))
    return 0


def _table(report: dict) -> str:
    lines = [f"{'page':14} {'cold ms (median/max)':>22} {'warm ms':>16} {'browser ms':>16}"]
    for page, r in report["server"].items():
        browser = report.get("browser", {}).get(page)
        lines.append(f"{page:14} {r['cold_ms']['median']:>11} / {r['cold_ms']['max']:<8}"
                     f" {r['warm_ms']['median']:>8} / {r['warm_ms']['max']:<6}"
                     + (f" {browser['median']:>8} / {browser['max']:<6}" if browser else ""))
    if "browser" in report:
        first = report["browser"]["first_load"]
        lines.append(f"first load of the app in a new tab: {first['median']} / {first['max']} ms")
    lines.append(f"Seq Scans on growing tables: {report['unindexed'] or 'none'}; slowest query "
                 f"{report['slowest_query_ms']} ms; load average {report['load_average']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
