"""The Spark JVM's class archive (CDS): classes loaded once at set-up, mapped at every start.

A fresh Spark JVM spends most of its first seconds loading and verifying classes (Spark, Delta,
Kafka, Scala): measured here, a session plus one small Delta write and read took 16-18 s cold
and 10-11 s with the archive. `make setup` records the archive (fleetlake/jvm_warmup.py) into
`.local/jvm/`, under a key of everything its classes come from: the JVM build, pyspark's jars and
the resolved extra jars. A changed key (a JDK update, a new jar) means no archive until the next
`make setup`; a session never uses an archive of another key (the JVM would refuse it anyway,
after a warning on stdout, which `--json` output must not get).
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Sequence

from infra.settings import PROJECT_ROOT

ARCHIVE_HOME = PROJECT_ROOT / ".local" / "jvm"
_FORMAT = "1"  # bump when the recording workload or the options below change
# the JVM reports an archive it cannot map on stdout; the key already rules that out
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def _java_home() -> Path | None:
    """The JVM pyspark launches: JAVA_HOME, else the `java` on PATH (as pyspark's scripts do)."""
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    return Path(os.path.realpath(java)).parent.parent if java else None


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.name} {stat.st_size} {stat.st_mtime_ns}"


def archive_key(extra_jars: Sequence[str]) -> str | None:
    """What the archive's classes come from, hashed; None without a JVM to key on."""
    import pyspark

    home = _java_home()
    libjvm = home / "lib" / "server" / "libjvm.so" if home else None
    if libjvm is None or not libjvm.is_file():
        return None
    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("*.jar"))
    parts = [_FORMAT, str(home.resolve()), _stamp(libjvm)]
    parts += [_stamp(p) for p in jars] + [_stamp(Path(p)) for p in extra_jars]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def archive_path(key: str, home: Path = ARCHIVE_HOME) -> Path:
    return home / f"spark-{key}.jsa"


def use_options(key: str | None, home: Path = ARCHIVE_HOME) -> str:
    """JVM options that map the archive of `key`, or "" when there is none for it."""
    if key is None or not archive_path(key, home).is_file():
        return ""
    return f"-XX:SharedArchiveFile={archive_path(key, home)} {_QUIET}"


def record_options(target: Path) -> str:
    """JVM options that write every class the JVM loaded to `target` when it exits."""
    return f"-XX:ArchiveClassesAtExit={target}"


def stale_archives(key: str, home: Path = ARCHIVE_HOME) -> list[Path]:
    """Archives of other keys (an older JVM or jar set): nothing maps them any more."""
    return sorted(p for p in home.glob("spark-*.jsa") if p != archive_path(key, home))
