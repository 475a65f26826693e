"""The lake's lease on a real PostgreSQL: one holder per lake, named in the refusal, freed by
PostgreSQL when the holder dies (kill -9)."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from infra.lease import LeaseHeldError, current_holder, lake_lease

pytestmark = pytest.mark.integration


@pytest.fixture
def lake(settings, fresh_pg_dsn):
    return dataclasses.replace(settings, pg_dsn=fresh_pg_dsn)


def test_one_holder_per_lake_and_the_refusal_names_it(lake, tmp_path):
    other_lake = dataclasses.replace(lake, lake_root=str(tmp_path / "other"))
    with lake_lease(lake, "pipeline"):
        holder = current_holder(lake)
        assert (holder.purpose, holder.description.split(" on ")[0]) == (
            "pipeline", f"pipeline (pid {os.getpid()}")
        with pytest.raises(LeaseHeldError) as refused:
            with lake_lease(lake, "replay"):
                pass
        assert str(refused.value).startswith(
            f"replay refused: pipeline (pid {os.getpid()} on ")
        assert f"holds the lease of lake {lake.lake_root} (one writer at a time per lake)" in \
            str(refused.value)
        with lake_lease(other_lake, "replay"):  # another lake: its own lease
            assert current_holder(other_lake).purpose == "replay"
    assert current_holder(lake) is None
    with lake_lease(lake, "replay"):
        assert current_holder(lake).purpose == "replay"


def test_a_killed_holder_leaves_no_stale_lease(lake):
    script = textwrap.dedent(f"""
        import dataclasses, time
        from infra.settings import load_settings
        from infra.lease import lake_lease
        s = dataclasses.replace(load_settings(), lake_root={lake.lake_root!r},
                                pg_dsn={lake.pg_dsn!r})
        with lake_lease(s, "pipeline"):
            print("held", flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeldError, match=f"pipeline \\(pid {holder.pid} on "):
            with lake_lease(lake, "maintain"):
                pass
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    with lake_lease(lake, "maintain"):  # PostgreSQL ended the dead session's lock
        assert current_holder(lake).purpose == "maintain"
