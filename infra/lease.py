"""One writer at a time per lake: the pipeline, a replay or a maintenance run holds its lease.

The lease is a PostgreSQL session-level advisory lock keyed by the lake root, held on its own
connection for the holder's whole run (`with lake_lease(settings, "pipeline"): ...`).
PostgreSQL releases it when that connection ends, so a killed holder (kill -9, a lost machine)
never leaves a stale lease behind. Who holds it is read from pg_stat_activity: the holder's
application_name names its purpose, process id and host.

Why PostgreSQL rather than a lock file in the lake: every fleetlake deployment has one, and an
atomic create-if-absent file is not portable across the lake's storages (local disk, object
stores). While PostgreSQL is unreachable the lock is gone with its connection: a keeper thread
takes it again as soon as the server answers, and logs an error if another holder was faster
(`Lease.lost` is then set), which needs PostgreSQL down and another command started meanwhile.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

import psycopg2
from psycopg2 import extensions

from infra.settings import Settings

log = logging.getLogger("fleetlake.lease")

LEASE_LOCK_CLASS = 0x666C6C73  # first key of pg_advisory_lock(int, int); the second: the lake
APP_PREFIX = "fleetlake lease"
KEEPER_INTERVAL_S = 5.0

_HOLDER_SQL = """
SELECT a.application_name, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %s AND l.objid::bigint = %s
"""


class LeaseError(RuntimeError):
    """The lake's lease cannot be taken; the message says why and what to do."""


class LeaseHeldError(LeaseError):
    """Another fleetlake process holds the lake's lease."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lake's lease, as its connection announced itself."""

    purpose: str  # "pipeline", "replay", "maintain" (empty when unknown)
    description: str  # e.g. "pipeline (pid 4242 on host-1)"
    since: datetime | None

    def __str__(self) -> str:
        if self.since is None:
            return self.description
        return f"{self.description} since {self.since.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


@dataclass
class Lease:
    """A held lease; `lost` is set if it could not be taken back after a PostgreSQL outage."""

    purpose: str
    lake_root: str
    lost: threading.Event = field(default_factory=threading.Event)


def lake_key(lake_root: str) -> int:
    """Second advisory-lock key: a stable 31-bit hash of the normalised lake root."""
    root = lake_root.rstrip("/")
    if "://" not in root:
        root = os.path.abspath(root)
    return zlib.crc32(root.encode("utf-8")) & 0x7FFF_FFFF


def _application_name(purpose: str) -> str:
    host = socket.gethostname()[:24]
    return f"{APP_PREFIX} {purpose} pid {os.getpid()} on {host}"[:63]


def _parse(application_name: str | None) -> tuple[str, str]:
    """(purpose, description) from a holder's application_name."""
    if not application_name or not application_name.startswith(APP_PREFIX):
        return "", "another fleetlake process"
    purpose, _, rest = application_name[len(APP_PREFIX) + 1:].partition(" pid ")
    return purpose, (f"{purpose} (pid {rest})" if rest else purpose)


def _connect(settings: Settings, purpose: str) -> extensions.connection:
    dsn = settings.effective_pg_dsn
    try:
        conn = psycopg2.connect(dsn, connect_timeout=10, application_name=_application_name(
            purpose), keepalives=1, keepalives_idle=30, keepalives_interval=10,
            keepalives_count=3)
    except psycopg2.OperationalError as exc:
        from serving.db import is_transient

        if not is_transient(exc):
            raise  # a wrong user, password or database: fleetlake/cli.py says which to fix
        first = (str(exc).strip().splitlines() or ["no answer"])[0]
        raise LeaseError(f"cannot take the lake's lease: PostgreSQL unreachable ({first}); "
                         "start it with `fleetlake services up` or fix FLEETLAKE_PG_DSN") from None
    conn.autocommit = True
    return conn


def _try_lock(conn: extensions.connection, key: int) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (LEASE_LOCK_CLASS, key))
        return bool(cur.fetchone()[0])


def _holder(conn: extensions.connection, key: int) -> Holder | None:
    with conn.cursor() as cur:
        cur.execute(_HOLDER_SQL, (LEASE_LOCK_CLASS, key))
        row = cur.fetchone()
    return None if row is None else Holder(*_parse(row[0]), row[1])


def current_holder(settings: Settings) -> Holder | None:
    """Who holds the lease of `settings.lake_root` now (None: nobody)."""
    conn = _connect(settings, "probe")
    try:
        return _holder(conn, lake_key(settings.lake_root))
    finally:
        conn.close()


def refusal(purpose: str, holder: Holder | None, lake_root: str) -> str:
    """The one line that explains why `purpose` cannot run now and what to do."""
    who = str(holder) if holder else "another fleetlake process"
    return (f"{purpose} refused: {who} holds the lease of lake {lake_root} (one writer at a time "
            f"per lake); wait for it to finish or stop it, then run {purpose} again")


@contextmanager
def lake_lease(settings: Settings, purpose: str) -> Iterator[Lease]:
    """Hold the lake's lease for the block; raise LeaseHeldError at once if it is taken."""
    key = lake_key(settings.lake_root)
    conn = _connect(settings, purpose)
    if not _try_lock(conn, key):
        holder = _holder(conn, key)
        conn.close()
        raise LeaseHeldError(refusal(purpose, holder, settings.lake_root))
    lease = Lease(purpose, settings.lake_root)
    keeper = _Keeper(settings, purpose, key, conn, lease)
    keeper.start()
    try:
        yield lease
    finally:
        keeper.stop()


class _Keeper(threading.Thread):
    """Checks the lease connection; after an outage reconnects and takes the lock again."""

    def __init__(self, settings: Settings, purpose: str, key: int,
                 conn: extensions.connection, lease: Lease):
        super().__init__(name="fleetlake-lease", daemon=True)
        self.settings, self.purpose, self.key, self.conn, self.lease = (
            settings, purpose, key, conn, lease)
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(KEEPER_INTERVAL_S):
            try:
                with self.conn.cursor() as cur:
                    cur.execute("SELECT 1")
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                self._retake()

    def _retake(self) -> None:
        try:
            conn = _connect(self.settings, self.purpose)
        except LeaseError:
            return  # still down: try again on the next tick
        self.conn.close()
        self.conn = conn
        if _try_lock(conn, self.key):
            log.warning("lease of lake %s taken again after a PostgreSQL outage",
                        self.lease.lake_root)
            return
        if not self.lease.lost.is_set():
            self.lease.lost.set()
            log.error("the %s lost the lease of lake %s while PostgreSQL was unreachable: %s "
                      "holds it now; stop one of them", self.purpose, self.lease.lake_root,
                      _holder(conn, self.key) or "another process")

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)
        try:
            self.conn.close()  # ends the session: PostgreSQL releases the lock
        except psycopg2.Error:
            pass
