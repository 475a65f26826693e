"""`fleetlake demo` (the README's first command): services, live traffic, pipeline, dashboard."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from infra.procs import require_free_port
from infra.services import services_up
from infra.settings import Settings



def _spawn(cmd: list[str], log_path: Path) -> subprocess.Popen:
    """A child in a session of its own: Ctrl-C in the terminal reaches the demo only, which
    passes one SIGINT on (a second one would make the pipeline exit at once, not stop)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab")  # noqa: SIM115 - lives as long as the child
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, rate: float, port: int) -> int:
    """Start everything, print where to look, and stop the children on Ctrl-C."""
    require_free_port(port, "the dashboard", "pass another --port to `fleetlake demo`")
    status = services_up(settings, log=lambda m: print(m, file=sys.stderr))
    logs = Path(settings.local.home) / "logs"
    cli = [sys.executable, "-m", "fleetlake.cli",
           *(["--config", settings.config_path] if settings.config_path else [])]
    # Started in the background by a shell, SIGINT is ignored, and children would inherit that
    # (and never stop on the SIGINT passed on to them). SIGTERM and a closed terminal stop the
    # children as Ctrl-C does: they have sessions of their own, so nothing else reaches them.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    children = {
        "pipeline": _spawn([*cli, "pipeline", "run", "--no-services"], logs / "pipeline.log"),
        "producer": _spawn([*cli, "produce", "--rate", str(rate), "--forever",
                            "--faults", "default"], logs / "producer.log"),
        "dashboard": _spawn([*cli, "dashboard", "--port", str(port)], logs / "dashboard.log"),
    }
    print(f"""
fleetlake demo is running:
  dashboard   http://127.0.0.1:{port}   (first numbers appear ~30 s after start)
  kafka       {status['kafka_bootstrap']}  topic {settings.topic}  ({rate:.0f} events/s simulated)
  postgres    {status['pg_dsn']}  (schema gold)
  lake        {status['lake_root']}
  logs        {logs}/pipeline.log, producer.log, dashboard.log
Stop with Ctrl-C; then `make stop` stops Kafka and PostgreSQL.
""", file=sys.stderr, flush=True)
    try:
        while True:
            for name, proc in children.items():
                if proc.poll() is not None:
                    print(f"demo: {name} exited with {proc.returncode}; see {logs}/{name}.log",
                          file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("demo: stopping ...", file=sys.stderr)
        return 0
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in children.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
