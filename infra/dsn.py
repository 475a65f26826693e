"""PostgreSQL connection strings: check, strip and redact passwords; the local pgpass file.

A DSN may carry a password (`postgresql://user:pw@host/db` or `password=pw`). fleetlake never
prints, logs or passes one on a command line: messages go through `redact`, printed DSNs through
`without_password`, and the embedded cluster's DSNs carry `passfile=` instead of a password.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import quote

from psycopg2 import ProgrammingError, extensions

MASK = "****"
# Best-effort password spotting for strings libpq cannot parse (never echoed anyway).
_URI_PASSWORD = re.compile(r"^[a-z]+://[^@/?#:]*:([^@/?#]*)@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"\bpassword\s*=\s*('(?:\\.|[^'\\])*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"[?&]password=([^&#]*)", re.IGNORECASE)


def parse(dsn: str) -> dict[str, str] | None:
    """The DSN's parameters (URI or key=value), or None when libpq cannot parse it."""
    try:
        return extensions.parse_dsn(dsn)
    except ProgrammingError:
        return None


def password_of(dsn: str | None) -> str | None:
    """The password written in `dsn`, if any (also spotted in a DSN libpq cannot parse)."""
    if not dsn:
        return None
    params = parse(dsn)
    if params is not None:
        return params.get("password") or None
    for pattern in (_URI_PASSWORD, _QUERY_PASSWORD, _KEYWORD_PASSWORD):
        match = pattern.search(dsn)
        if match and match.group(1):
            return match.group(1).strip("'")
    return None


def without_password(dsn: str) -> str:
    """`dsn` minus its password (unchanged when it has none); libpq then asks pgpass/PGPASSWORD."""
    params = parse(dsn)
    if params is None or "password" not in params:
        return dsn
    params.pop("password")
    return extensions.make_dsn(**params)


def redact(text: str, *dsns: str | None) -> str:
    """`text` with every password of `dsns` (as written and URL-encoded) replaced by ****."""
    for dsn in dsns:
        password = password_of(dsn)
        if password:
            for form in {password, quote(password, safe=""), quote(password)}:
                text = text.replace(form, MASK)
    return text


def error_line(exc: BaseException, *dsns: str | None) -> str:
    """The first line of a driver error, for one-line messages, without any password of `dsns`."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return redact(lines[0], *dsns) if lines else type(exc).__name__


def local_dsn(user: str, port: int, database: str, passfile: str) -> str:
    """URI of a role on the embedded cluster: its password comes from `passfile`."""
    return (f"postgresql://{quote(user, safe='')}@127.0.0.1:{port}/{quote(database, safe='')}"
            f"?passfile={quote(passfile, safe='/')}")


# --- the pgpass file (https://www.postgresql.org/docs/current/libpq-pgpass.html) ------------

def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


def _split(line: str) -> list[str]:
    fields, current, chars = [], [], iter(line)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    return [*fields, "".join(current)]


def read_passfile(path: Path) -> dict[str, str]:
    """Role → password of the `*:*:*:role:password` lines of a pgpass file ({} when absent)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    found = {}
    for line in text.splitlines():
        fields = _split(line)
        if len(fields) == 5 and not line.startswith("#") and fields[:3] == ["*", "*", "*"]:
            found.setdefault(fields[3], fields[4])
    return found


def ensure_passfile(path: Path, roles: list[str]) -> dict[str, str]:
    """Give every role in `roles` a generated password in the pgpass file at `path` (mode 0600).

    Existing passwords are kept; the file is replaced atomically and is never readable by
    group or others (libpq ignores a pgpass file that is).
    """
    passwords = read_passfile(path)
    missing = [role for role in roles if role not in passwords]
    if missing:
        passwords.update({role: secrets.token_urlsafe(24) for role in missing})
        text = "# fleetlake: generated passwords of the embedded PostgreSQL; keep mode 0600\n"
        text += "".join(f"*:*:*:{_escape(r)}:{_escape(p)}\n" for r, p in passwords.items())
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(partial, path)
    os.chmod(path, 0o600)
    return passwords
