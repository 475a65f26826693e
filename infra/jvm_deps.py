"""JVM dependencies: resolved once from Maven Central into `.local/jars/<profile>/`."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from infra.settings import PROJECT_ROOT

POM = PROJECT_ROOT / "infra" / "jvm" / "pom.xml"
JARS_HOME = PROJECT_ROOT / ".local" / "jars"
PROFILES = ("kafka", "spark")
_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*\.jar$")


class DependencyError(RuntimeError):
    """A JVM dependency is missing; the message says how to get it."""


def jar_dir(profile: str) -> Path:
    return JARS_HOME / profile


def _marker(profile: str) -> Path:
    return jar_dir(profile) / ".complete"


def ensure_resolved(profile: str, quiet: bool = False) -> Path:
    """Copy the profile's jars (with their dependencies) into `.local/jars/<profile>/` once."""
    target = jar_dir(profile)
    marker = _marker(profile)
    if marker.exists() and marker.read_text() == POM.read_text():
        return target
    if shutil.which("mvn") is None:
        raise DependencyError("Maven ('mvn') is not installed: run `apt-get install -y maven` "
                              "(needed once to fetch the Kafka/Spark jars)")
    if not quiet:
        print(f"resolving {profile} jars from Maven Central into {target} ...", file=sys.stderr)
    shutil.rmtree(target, ignore_errors=True)
    cmd = ["mvn", "-q", "-B", "-f", str(POM), "-P", profile, "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={target}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise DependencyError(f"could not resolve the {profile} jars from Maven Central "
                              f"({' '.join(tail)}): check the network and rerun `make setup`")
    marker.write_text(POM.read_text())
    return target


def _artifact(name: str) -> str:
    return _VERSION_SUFFIX.sub("", name)


def spark_extra_jars() -> list[str]:
    """The resolved jars pyspark lacks (Kafka source, Delta, JDBC), skipping ones it ships."""
    import pyspark

    bundled = {_artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    folder = ensure_resolved("spark", quiet=True)
    return sorted(str(p) for p in folder.glob("*.jar") if _artifact(p.name) not in bundled)


def kafka_classpath() -> str:
    folder = ensure_resolved("kafka", quiet=True)
    return ":".join(sorted(str(p) for p in folder.glob("*.jar")))


def main() -> None:
    for profile in PROFILES:
        ensure_resolved(profile)


if __name__ == "__main__":
    main()
