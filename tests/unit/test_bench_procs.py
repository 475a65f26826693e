"""The bench's peak RSS counts each address space of the pipeline's tree once
(fleetlake/bench/procs.tree_rss)."""
from __future__ import annotations

from fleetlake.bench.procs import tree_rss

PY, JAVA = "/usr/bin/python3.11", "/usr/lib/jvm/java-17/bin/java"
MB = 2**20


def test_a_vfork_child_of_the_jvm_before_exec_is_not_counted_again():
    tree = [(10, 1, PY, 160 * MB), (11, 10, JAVA, 921 * MB), (12, 11, JAVA, 921 * MB)]
    assert tree_rss(tree) == (160 + 921) * MB


def test_children_running_other_programs_count():
    tree = [(10, 1, PY, 160 * MB), (11, 10, JAVA, 921 * MB), (13, 11, "/usr/bin/readlink", MB),
            (14, 11, PY, 50 * MB)]  # e.g. a Python worker Spark started
    assert tree_rss(tree) == (160 + 921 + 1 + 50) * MB
    assert tree_rss([]) == 0
