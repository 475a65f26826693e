"""A command run as a measured child: wall time, peak RSS and CPU time of its whole process tree.

The pipeline is a Python process and a JVM (Spark's driver) it starts; RSS is summed over the
live tree every `interval_s` (its peak is a sample, so a spike shorter than that can be
missed), each address space once (`tree_rss`), CPU time is the user+system time of every
process of the tree, exited ones included.
"""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def tree_rss(processes: list[tuple[int, int, str, int]]) -> int:
    """Σ RSS over (pid, parent pid, executable, rss) rows, each address space once.

    A child running its parent's executable is a copy of the parent not yet replaced by
    `exec`: the JVM starts its shell commands (`readlink`, `chmod`, ...) by vfork, whose child
    shares the parent's pages until exec, so its RSS is the JVM's own (measured: a sample every
    0.1 s saw a 921 MB JVM twice). Counting it would double the JVM."""
    exe = {pid: path for pid, _, path, _ in processes}
    return sum(rss for pid, parent, path, rss in processes if exe.get(parent) != path)


@dataclass
class TreeUsage:
    """What a process tree used while it ran."""

    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0
    returncode: int | None = None


@dataclass
class MeasuredProcess:
    """A child process (own session) whose tree is sampled until it exits."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    interval_s: float = 0.5
    usage: TreeUsage = field(default_factory=TreeUsage)

    def start(self) -> "MeasuredProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._children_cpu = _children_cpu_s()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in wait()
        self._started = time.monotonic()
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self._cpu: dict[int, float] = {}
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
        except psutil.NoSuchProcess:
            return
        while self.proc.poll() is None:
            rows = []
            for proc in [root, *self._children(root)]:
                try:
                    with proc.oneshot():
                        rows.append((proc.pid, proc.ppid(), proc.exe(), proc.memory_info().rss))
                        times = proc.cpu_times()
                        self._cpu[proc.pid] = times.user + times.system
                except psutil.Error:
                    continue
            self.usage.peak_rss_mb = max(self.usage.peak_rss_mb, tree_rss(rows) / 2**20)
            time.sleep(self.interval_s)

    @staticmethod
    def _children(root: psutil.Process) -> list[psutil.Process]:
        try:
            return root.children(recursive=True)
        except psutil.Error:
            return []

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def interrupt(self) -> None:
        """SIGINT to the process group (the pipeline stops its queries and exits)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout_s: float) -> TreeUsage:
        """Wait for the exit (SIGKILL after `timeout_s`); the tree's usage."""
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._sampler.join(timeout=10)
        self._log.close()
        self.usage.wall_s = time.monotonic() - self._started
        self.usage.returncode = self.proc.returncode
        # exited descendants that were reaped count in our children's rusage: take the larger
        self.usage.cpu_s = max(sum(self._cpu.values()), _children_cpu_s() - self._children_cpu)
        return self.usage


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
