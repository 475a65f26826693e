#!/usr/bin/env python
"""Fill a database's gold tables with synthetic data for the dashboard (a try-out or benchmark).

    .venv/bin/python scripts/seed_dashboard.py [--database fleetlake_dashboard_bench]
        [--cars 100] [--minutes 1000] [--alerts 1000000]

Works on the local cluster (`fleetlake services up`): creates the database if needed (owned by
the pipeline role), applies the migrations with the reader grants, replaces the gold tables' rows
(dashboard/seed.py), and prints the command that serves a dashboard on it. The defaults make
1 million alerts and 100k device-minute rows ending now (about 30 s).
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psycopg2 import extensions, sql  # noqa: E402

from dashboard.seed import SeedSize, seed_gold  # noqa: E402
from infra.settings import Settings, load_settings  # noqa: E402
from serving.db import connect  # noqa: E402
from serving.migrate import apply_migrations  # noqa: E402


def ensure_database(settings: Settings, name: str) -> str:
    """The owner DSN of database `name` on the cluster, created if it does not exist."""
    admin = settings.effective_pg_dsn
    conn = connect(admin, "fleetlake-seed")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return extensions.make_dsn(admin, dbname=name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="fleetlake_dashboard_bench")
    parser.add_argument("--cars", type=int, default=SeedSize.cars)
    parser.add_argument("--minutes", type=int, default=SeedSize.minutes)
    parser.add_argument("--alerts", type=int, default=SeedSize.alerts)
    args = parser.parse_args(argv)
    settings = load_settings()
    dsn = ensure_database(settings, args.database)
    apply_migrations(dsn, settings.local.pg_reader)
    size = SeedSize(args.cars, args.minutes, args.alerts)
    print(f"seeding {args.database}: {size.alerts:,} alerts, {size.cars * size.minutes:,} "
          "device-minute rows ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    seed_gold(dsn, size, datetime.now(timezone.utc))
    print(f"seeded in {time.monotonic() - started:.1f} s. Serve a dashboard on it with:\n"
          f"  FLEETLAKE_CONFIG=<a copy of fleetlake.toml with [local] pg_database = "
          f'"{args.database}"> .venv/bin/fleetlake dashboard', file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
