"""The `fleetlake` command line: settings are built once here and passed down."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from infra.settings import ConfigError, Settings, load_settings

NOT_YET = {
    "replay": "rebuilding layers from bronze",
    "audit": "Delta time-travel audits",
    "dq": "data-quality reports",
    "maintain": "table maintenance (OPTIMIZE/VACUUM)",
    "bench": "the end-to-end benchmark",
}


def _cmd_services(settings: Settings, args: argparse.Namespace) -> int:
    from infra.services import services_down, services_status, services_up

    log = (lambda msg: print(msg, file=sys.stderr))
    if args.action == "up":
        status = services_up(settings, log=log)
    elif args.action == "down":
        services_down(settings, log=log)
        status = services_status(settings)
    else:
        status = services_status(settings)
    if args.json:
        print(json.dumps(status))
    else:
        for key, value in status.items():
            print(f"{key:16} {value}")
    return 0


def _cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from ingestion.cli import produce_command

    return produce_command(settings, args)


def _cmd_pipeline(settings: Settings, args: argparse.Namespace) -> int:
    from fleetlake.runner import run_pipeline

    return run_pipeline(settings, available_now=args.available_now, ensure=not args.no_services)


def _cmd_dashboard(settings: Settings, args: argparse.Namespace) -> int:
    from dashboard.serve import serve_dashboard

    return serve_dashboard(settings, port=args.port)


def _cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from fleetlake.demo import run_demo

    return run_demo(settings, rate=args.rate, port=args.port)


def _cmd_not_yet(name: str) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        print(f"fleetlake {name}: {NOT_YET[name]} is not available yet in this version "
              "(see the open issues)", file=sys.stderr)
        return 2
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetlake", description=__doc__)
    parser.add_argument("--config", help="TOML with rules and thresholds (else FLEETLAKE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    services = sub.add_parser("services", help="start/stop/inspect local Kafka and PostgreSQL")
    services.add_argument("action", choices=["up", "down", "status"])
    services.add_argument("--json", action="store_true")
    services.set_defaults(func=_cmd_services)

    produce = sub.add_parser("produce", help="send simulated telemetry to Kafka")
    from ingestion.cli import add_produce_arguments

    add_produce_arguments(produce)
    produce.set_defaults(func=_cmd_produce)

    pipeline = sub.add_parser("pipeline", help="run the streaming pipeline")
    pipeline.add_argument("action", choices=["run"])
    pipeline.add_argument("--available-now", action="store_true",
                          help="process everything in the topic through every layer, then exit")
    pipeline.add_argument("--no-services", action="store_true",
                          help="do not start local services (they must already run)")
    pipeline.set_defaults(func=_cmd_pipeline)

    dashboard = sub.add_parser("dashboard", help="serve the Streamlit dashboard")
    dashboard.add_argument("--port", type=int, default=8501)
    dashboard.set_defaults(func=_cmd_dashboard)

    demo = sub.add_parser("demo", help="services + live traffic + pipeline + dashboard")
    demo.add_argument("--rate", type=float, default=500.0, help="simulated events/s")
    demo.add_argument("--port", type=int, default=8501)
    demo.set_defaults(func=_cmd_demo)

    for name in NOT_YET:
        stub = sub.add_parser(name, help=f"{NOT_YET[name]} (not available yet)")
        stub.add_argument("rest", nargs=argparse.REMAINDER)
        stub.set_defaults(func=_cmd_not_yet(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(config_path=args.config)
        return args.func(settings, args)
    except KeyboardInterrupt:
        print("fleetlake: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line for errors a user can hit
        if _is_user_error(exc):
            print(f"fleetlake: error: {exc}", file=sys.stderr)
            return 1
        raise


def _is_user_error(exc: Exception) -> bool:
    from infra.jvm_deps import DependencyError
    from infra.procs import ServiceError
    from infra.spark import JavaMissingError
    from ingestion.admin import KafkaUnavailableError

    return isinstance(exc, (ConfigError, ServiceError, DependencyError, JavaMissingError,
                            KafkaUnavailableError))


if __name__ == "__main__":
    sys.exit(main())
