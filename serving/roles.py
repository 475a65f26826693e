"""What a PostgreSQL role may change: the dashboard refuses a role that can write."""
from __future__ import annotations

from serving.db import connect
from serving.tables import SCHEMA

# One row for the connected role. has_table_privilege with a list is true if any applies; it
# counts ownership, PUBLIC, role membership and pg_write_all_data alike.
_WRITE_ACCESS = """
SELECT r.rolname, r.rolsuper, r.rolcreaterole,
       has_database_privilege(current_database(), 'CREATE'),
       n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'CREATE'),
       ARRAY(SELECT c.relname::text FROM pg_class c
             WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
               AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
             ORDER BY c.relname)
FROM pg_roles r LEFT JOIN pg_namespace n ON n.nspname = %(schema)s
WHERE r.rolname = current_user
"""


def write_access(dsn: str) -> tuple[str, list[str]]:
    """The connected role's name and every way it can change the database (empty: read-only)."""
    conn = connect(dsn, "fleetlake-role-check")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(_WRITE_ACCESS, {"schema": SCHEMA})
            role, superuser, createrole, create_db, create_schema, tables = cur.fetchone()
    finally:
        conn.close()
    found = [what for held, what in (
        (superuser, "is a superuser"),
        (createrole, "may create roles"),
        (create_db, "may create schemas in the database"),
        (create_schema, f"may create tables in schema {SCHEMA}"),
    ) if held]
    if tables:
        shown = ", ".join(f"{SCHEMA}.{t}" for t in tables[:3])
        found.append(f"may write {shown}" + (", ..." if len(tables) > 3 else ""))
    return role, found
