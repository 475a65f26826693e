"""The `fleetlake` command line: settings are built once here and passed down."""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Callable

import psycopg2

from infra.dsn import error_line, redact
from infra.settings import ConfigError, Settings, load_settings

NOT_YET = {
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
            print(f"{key:16} {'(not set)' if value is None else value}")
    return 0


def _cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from ingestion.cli import produce_command

    return produce_command(settings, args)


def _cmd_pipeline(settings: Settings, args: argparse.Namespace) -> int:
    from fleetlake.runner import repair_pipeline, run_pipeline

    if args.action == "repair":
        return repair_pipeline(settings, ensure=not args.no_services)
    return run_pipeline(settings, available_now=args.available_now, ensure=not args.no_services)


def _cmd_dashboard(settings: Settings, args: argparse.Namespace) -> int:
    from dashboard.serve import serve_dashboard

    return serve_dashboard(settings, port=args.port, allow_writer=args.allow_writer)


def _cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from fleetlake.demo import run_demo

    return run_demo(settings, rate=args.rate, port=args.port)


def _cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from fleetlake.bench.command import bench_command

    return bench_command(settings, args)


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
    pipeline.add_argument("action", choices=["run", "repair"],
                          help="run the queries, or repair their checkpoints from the journal")
    pipeline.add_argument("--available-now", action="store_true",
                          help="process everything in the topic through every layer, then exit")
    pipeline.add_argument("--no-services", action="store_true",
                          help="do not start local services (they must already run)")
    pipeline.set_defaults(func=_cmd_pipeline)

    dashboard = sub.add_parser("dashboard", help="serve the Streamlit dashboard")
    dashboard.add_argument("--port", type=int, default=8501)
    dashboard.add_argument("--allow-writer", action="store_true",
                           help="start even if the dashboard's role can write (not recommended)")
    dashboard.set_defaults(func=_cmd_dashboard)

    demo = sub.add_parser("demo", help="services + live traffic + pipeline + dashboard")
    demo.add_argument("--rate", type=float, default=500.0, help="simulated events/s")
    demo.add_argument("--port", type=int, default=8501)
    demo.set_defaults(func=_cmd_demo)

    bench = sub.add_parser("bench", help="measure throughput, freshness and resources")
    from fleetlake.bench import add_bench_arguments

    add_bench_arguments(bench)
    bench.set_defaults(func=_cmd_bench)

    from ops.cli import add_parsers as add_ops_parsers

    add_ops_parsers(sub)  # audit, maintain, dq, replay

    for name in NOT_YET:
        stub = sub.add_parser(name, help=f"{NOT_YET[name]} (not available yet)")
        stub.add_argument("rest", nargs=argparse.REMAINDER)
        stub.set_defaults(func=_cmd_not_yet(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = None
    try:
        settings = load_settings(config_path=args.config)
        return args.func(settings, args)
    except KeyboardInterrupt:
        print("fleetlake: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line for errors a user can hit
        # Nothing printed may hold a password written in a DSN, not even a traceback.
        secrets = (settings.pg_dsn, settings.pg_reader_dsn) if settings else ()
        if _is_user_error(exc):
            print(redact(f"fleetlake: error: {_one_line(exc)}", *secrets), file=sys.stderr)
        else:
            print(redact("".join(traceback.format_exception(exc)), *secrets), file=sys.stderr,
                  end="")
        return 1


def _one_line(exc: Exception) -> str:
    from serving.db import is_transient

    if isinstance(exc, psycopg2.OperationalError) and not is_transient(exc):
        return (f"PostgreSQL refused the connection ({error_line(exc)}): check the user, "
                "password and database of FLEETLAKE_PG_DSN / FLEETLAKE_PG_READER_DSN "
                "(the embedded cluster: `fleetlake services up`)")
    return str(exc)


def _is_user_error(exc: Exception) -> bool:
    from fleetlake.checkpoint_check import CheckpointDamagedError
    from fleetlake.runner import LakeOutOfSpaceError, LegacyLakeError
    from infra.jvm_deps import DependencyError
    from infra.procs import ServiceError
    from infra.spark import JavaMissingError
    from ingestion.admin import KafkaUnavailableError
    from ops.cli import user_errors
    from serving.db import PostgresUnavailableError, is_transient
    from serving.migrate import MigrationError

    if isinstance(exc, psycopg2.OperationalError):
        return not is_transient(exc)  # wrong user, password or database: the user's to fix
    return isinstance(exc, (ConfigError, ServiceError, DependencyError, JavaMissingError,
                            KafkaUnavailableError, PostgresUnavailableError, MigrationError,
                            LegacyLakeError, LakeOutOfSpaceError, CheckpointDamagedError,
                            *user_errors()))


if __name__ == "__main__":
    sys.exit(main())
