"""Process and port helpers shared by the embedded services."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path


class ServiceError(RuntimeError):
    """A local service cannot start or be reached; the message names the fix."""


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def require_free_port(port: int, what: str, fix: str) -> None:
    """Fail with one clear line when another process already listens on `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise ServiceError(
                f"port {port} for {what} is already taken by another process: stop that "
                f"process or {fix}") from None


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0,
                 sig: int = signal.SIGTERM) -> None:
    """Ask a child process to stop with `sig`; kill it if it still runs after `grace_s`."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
