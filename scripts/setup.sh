#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh machine: system packages, .venv, JVM jars, the
# Spark JVM's class archive.
# Fast when everything is already there (stamps under .local/).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v runuser >/dev/null 2>&1 || need_apt+=(util-linux)
# the dashboard's browser test drives Debian's Chromium (Playwright never downloads one)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing system packages: ${need_apt[*]} -- install them with apt-get (needs root)" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]} with apt-get ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian's package starts its own cluster on 5432; fleetlake runs its own under .local/
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | while read -r ver name; do
      pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
    done
  fi
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "setup: Python >= 3.11 is required (found $("$PY" --version 2>&1))" >&2; exit 1; }

stamp=.local/.venv-stamp
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv and installing Python dependencies (about 2 minutes) ..." >&2
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e .
  echo "$want" > "$stamp"
fi

.venv/bin/python -m infra.jvm_deps
# the Spark JVM's class archive: sessions start in about half the time (infra/class_archive.py)
.venv/bin/python -m fleetlake.jvm_warmup
echo "setup: ready" >&2
