"""Helpers of the dashboard tests: a database with known gold rows, and pages run by AppTest."""
from __future__ import annotations

from datetime import datetime, timezone

from psycopg2 import extensions
from streamlit.testing.v1 import AppTest

from dashboard.benchkit import PAGES, render_page
from infra.settings import Settings
from serving.migrate import apply_migrations

from .dashboard_rows import gold_rows, insert_rows

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)  # start of the newest KPI minute


def reader_dsn(owner_dsn: str, settings: Settings) -> str:
    """The read-only role's DSN on the same database (the owner's on an external server)."""
    if not settings.uses_local_pg:
        return owner_dsn
    return extensions.make_dsn(owner_dsn, user=settings.local.pg_reader)


def known_database(owner_dsn: str, settings: Settings, base: datetime = BASE) -> str:
    """Migrate (with reader grants), load the known rows; return the reader's DSN."""
    apply_migrations(owner_dsn, settings.local.pg_reader if settings.uses_local_pg else None)
    insert_rows(owner_dsn, gold_rows(base))
    return reader_dsn(owner_dsn, settings)


def open_page(dsn: str, page: str, query: dict | None = None, **settings) -> AppTest:
    """Run the app on `page` (a name of PAGES) with URL query parameters; fresh caches."""
    at = render_page(dsn, page, query, **settings).app
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def frame(at: AppTest, *columns: str):
    """The one DataFrame shown on the page that has all these columns."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) == 1, f"{len(found)} dataframes have columns {columns}"
    return found[0]
