"""Subcommands `audit`, `maintain`, `dq` and `replay`: arguments and entry points.

`fleetlake/cli.py` calls `add_parsers`; each command builds its Spark session here (small:
these are batch tools that may run beside the pipeline) and prints results on stdout,
summaries and progress on stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

from pyspark.sql import SparkSession

from infra.settings import Settings
from ops import render

FORMAT_HELP = "output format (default: table)"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _keep_stdout_for_results() -> None:
    """Send what the JVM prints (Delta's VACUUM writes to its stdout) to stderr, so stdout holds
    only the command's results (JSON, CSV). Call before the JVM starts: it inherits fd 1."""
    import os

    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:
        return
    sys.stdout.flush()
    results = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(results, "w", buffering=1)


def spark_session(settings: Settings, app_name: str) -> SparkSession:
    """The command's Spark session (driver memory capped at 2g: it runs beside the pipeline)."""
    from infra.spark import build_spark

    _keep_stdout_for_results()
    memory = settings.spark.driver_memory
    if memory.lower().endswith("g") and memory[:-1].isdigit() and int(memory[:-1]) > 2:
        settings = dataclasses.replace(settings, spark=dataclasses.replace(
            settings.spark, driver_memory="2g"))
    return build_spark(settings, app_name=app_name)


def _cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from ops import audit
    from ops.catalog import lake_table

    table = lake_table(args.table)
    spark = spark_session(settings, "fleetlake-audit")
    if args.action == "history":
        print(audit.history_report(spark, settings, table, args.limit, args.format))
        return 0
    if args.action == "show":
        text, summary = audit.show_report(spark, settings, table, args.as_of, args.where,
                                          args.limit, args.format)
    else:
        text, summary = audit.diff_report(spark, settings, table, args.from_version,
                                          args.to_version, args.limit, args.format)
    _stderr(summary)
    print(text)
    return 0


def _add_audit(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="time travel: table history, a past version, a diff")
    actions = audit.add_subparsers(dest="action", required=True)
    table_help = "a table such as silver/telemetry or gold/alerts"

    history = actions.add_parser("history", help="versions of a table and who wrote them")
    history.add_argument("table", help=table_help)
    history.add_argument("--limit", type=int, default=20, help="newest N versions (0 = all)")

    show = actions.add_parser("show", help="rows of a table as of a version or timestamp")
    show.add_argument("table", help=table_help)
    show.add_argument("--as-of", required=True, metavar="VERSION|TIMESTAMP",
                      help="a version number or a time such as 2026-01-31T12:00:00Z")
    show.add_argument("--where", metavar="CONDITION",
                      help="filter over the table's columns, e.g. \"car_id = 'car-01'\"")
    show.add_argument("--limit", type=int, default=20, help="at most N rows (0 = all)")

    diff = actions.add_parser("diff", help="rows added, removed and changed between versions")
    diff.add_argument("table", help=table_help)
    diff.add_argument("--from", dest="from_version", required=True,
                      metavar="VERSION|TIMESTAMP")
    diff.add_argument("--to", dest="to_version", required=True, metavar="VERSION|TIMESTAMP")
    diff.add_argument("--limit", type=int, default=100, help="at most N changed rows (0 = all)")
    for parser in (history, show, diff):
        parser.add_argument("--format", choices=render.FORMATS, default="table",
                            help=FORMAT_HELP)
    audit.set_defaults(func=_cmd_audit)


def _cmd_maintain(settings: Settings, args: argparse.Namespace) -> int:
    import json
    from contextlib import ExitStack

    from infra.lease import LeaseHeldError, current_holder, lake_lease
    from ops.maintain import maintain_lake, summary_line, tables_to_maintain

    spark = spark_session(settings, "fleetlake-maintain")
    tables = tables_to_maintain(spark, settings, args.tables.split(",") if args.tables else None)
    with ExitStack() as stack:
        try:
            stack.enter_context(lake_lease(settings, "maintain"))
            beside = False
        except LeaseHeldError:
            holder = current_holder(settings)
            if holder is None or holder.purpose != "pipeline":
                raise
            beside = True
            _stderr(f"maintain: {holder} is running: only the tables it appends to are "
                    f"optimized, the others are vacuumed and checkpointed")
        reports = maintain_lake(spark, settings, beside_pipeline=beside, tables=tables,
                                vacuum=not args.no_vacuum, log=_stderr)
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in reports], indent=2))
    else:
        for report in reports:
            print(report.line())
        print(summary_line(reports))
    return 0


def _add_maintain(sub: argparse._SubParsersAction) -> None:
    maintain = sub.add_parser("maintain", help="OPTIMIZE/cluster, VACUUM and checkpoint tables")
    maintain.add_argument("--tables", metavar="A,B",
                          help="only these tables, e.g. silver/telemetry,gold/alerts "
                               "(default: all)")
    maintain.add_argument("--no-vacuum", action="store_true", help="skip VACUUM")
    maintain.add_argument("--json", action="store_true", help="print the reports as JSON")
    maintain.set_defaults(func=_cmd_maintain)


def _cmd_dq(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from infra.lease import current_holder
    from ops.dq.report import run_report

    running = False
    if not args.no_postgres:
        from serving.migrate import apply_migrations

        apply_migrations(settings.effective_pg_dsn,
                         settings.local.pg_reader if settings.uses_local_pg else None)
        holder = current_holder(settings)
        running = holder is not None and holder.purpose == "pipeline"
    spark = spark_session(settings, "fleetlake-dq")
    report = run_report(spark, settings, pipeline_running=running, log=_stderr,
                        write_postgres=not args.no_postgres)
    if args.json:
        print(json.dumps(report.summary(), indent=2, default=str))
    else:
        rows = [[r.suite, r.name, r.severity, "ok" if r.success else "FAILED"]
                for r in report.results]
        print(render.render(["table", "expectation", "severity", "result"], rows, "table"))
    failed = [r for r in report.results if not r.success]
    _stderr(f"dq report {report.run_id}: {len(report.results) - len(failed)}/"
            f"{len(report.results)} expectations met; Data Docs: {report.docs_index}")
    for result in report.critical_failures:
        _stderr(f"dq report: critical expectation failed: {result.label} "
                f"(observed: {json.dumps(result.observed, default=str)[:200]})")
    return 0 if report.success else 1


def _add_dq(sub: argparse._SubParsersAction) -> None:
    dq = sub.add_parser("dq", help="data-quality report (Great Expectations)")
    actions = dq.add_subparsers(dest="action", required=True)
    report = actions.add_parser("report", help="validate every table; Data Docs under "
                                               "[dq] reports_dir; exit 1 on a critical failure")
    report.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    report.add_argument("--no-postgres", action="store_true",
                        help="do not store the results in PostgreSQL gold.dq_results")
    dq.set_defaults(func=_cmd_dq)


def _cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from infra.lease import current_holder, lake_lease
    from ops.replay import LAYERS, ReplayError, run_replay

    layers = tuple(part.strip() for part in args.layers.split(",") if part.strip())
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown or not layers:
        raise ReplayError(f"--layers takes {' and/or '.join(LAYERS)} (comma-separated), "
                          f"not {', '.join(unknown) or 'nothing'}")
    if args.from_version is not None and args.from_version < 0:
        raise ReplayError("--from-version takes a bronze version number (0 or more)")
    with ExitStack() as stack:
        if args.dry_run:
            holder = current_holder(settings)
            if holder is not None:
                _stderr(f"replay (dry run): {holder} is running: counts may be out of date")
        else:
            stack.enter_context(lake_lease(settings, "replay"))
        spark = spark_session(settings, "fleetlake-replay")
        result = run_replay(spark, settings, since=args.since, from_version=args.from_version,
                            layers=layers, dry_run=args.dry_run, log=_stderr)
    rows = [[name, c["added"], c["removed"], c["changed"]] for name, c in result.changes.items()]
    title = "would change" if args.dry_run else "changed"
    print(f"replay {result.replay_id} ({result.scope}){' (dry run)' if args.dry_run else ''}:")
    print(render.render(["table", "added", "removed", title], rows, "table"))
    if not args.dry_run:
        synced = sum(sum(c.values()) for c in result.postgres.values())
        print(f"postgres: {synced} row(s) brought in line with Delta"
              f"{'; dq_batch_metrics: one replay row appended' if result.dq_row else ''}")
    return 0


def _add_replay(sub: argparse._SubParsersAction) -> None:
    replay = sub.add_parser("replay", help="recompute silver, quarantine and gold from bronze "
                                           "with the current config")
    scope = replay.add_mutually_exclusive_group()
    scope.add_argument("--since", metavar="TIMESTAMP",
                       help="only bronze rows ingested since then (default: all of bronze)")
    scope.add_argument("--from-version", type=int, metavar="V",
                       help="only bronze rows added in bronze versions V and later")
    replay.add_argument("--layers", default="silver,gold",
                        help="silver (silver + quarantine) and/or gold (default: both)")
    replay.add_argument("--dry-run", action="store_true",
                        help="print what would change per table, change nothing")
    replay.set_defaults(func=_cmd_replay)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add `audit`, `maintain`, `dq` and `replay` to the `fleetlake` parser."""
    _add_audit(sub)
    _add_maintain(sub)
    _add_dq(sub)
    _add_replay(sub)


def user_errors() -> tuple[type[Exception], ...]:
    """Exception types whose message is a complete one-line error for the user."""
    from infra.lease import LeaseError
    from ops.errors import OpsError

    return (OpsError, LeaseError)
