"""`fleetlake dq report`: validate every table with Great Expectations (GX Core 1.x).

One run: each suite of ops/dq/suites.py is validated against its table's current version
(Spark DataFrames, in an ephemeral GX context), the Data Docs site is rebuilt under
`[dq] reports_dir` (index.html), and the results go to PostgreSQL gold.dq_results. The report
fails (`Report.success` false, `dq report` exits 1) when any critical expectation fails; a
missing table is a failed critical expectation too.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pyspark.sql import DataFrame, SparkSession

from infra.settings import Settings
from ops.dq import suites as S
from ops.dq.frames import report_frames

UTC = timezone.utc
SITE = "fleetlake"
Log = Callable[[str], None]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation on one table."""

    suite: str
    name: str
    kind: str
    column: str | None
    severity: str
    success: bool
    observed: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.suite}: {self.name}"


@dataclass
class Report:
    """One data-quality run."""

    run_id: str
    run_at: datetime
    results: list[CheckResult] = field(default_factory=list)
    docs_index: str | None = None

    @property
    def critical_failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == S.CRITICAL]

    @property
    def success(self) -> bool:
        return not self.critical_failures

    def summary(self) -> dict[str, Any]:
        """The JSON summary of `dq report --json`."""
        return {"run_id": self.run_id, "run_at": self.run_at.isoformat(),
                "success": self.success, "docs": self.docs_index,
                "critical_failures": [r.label for r in self.critical_failures],
                "warnings": [r.label for r in self.results
                             if not r.success and r.severity != S.CRITICAL],
                "results": [{"table": r.suite, "expectation": r.name, "type": r.kind,
                             "column": r.column, "severity": r.severity, "success": r.success,
                             "observed": r.observed} for r in self.results]}


def _observed(result: Any) -> dict[str, Any]:
    observed = {k: v for k, v in (result.result or {}).items()
                if k in ("observed_value", "element_count", "unexpected_count",
                         "unexpected_percent", "partial_unexpected_list", "missing_count")}
    info = result.exception_info or {}
    if info.get("raised_exception"):
        observed["error"] = str(info.get("exception_message", "")).splitlines()[0][:300]
    return observed


def _context(settings: Settings):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    Path(settings.dq.reports_dir).mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(SITE, {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": settings.dq.reports_dir},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
    return context


def _validate(context, name: str, checks: list[S.Check], frame: DataFrame, run_id: str,
              run_at: datetime) -> list[CheckResult]:
    import great_expectations as gx

    asset_name = name.replace("/", ".")
    source = context.data_sources.add_spark(f"lake.{asset_name}")
    batch = source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe("current")
    suite = context.suites.add(gx.ExpectationSuite(name=asset_name))
    for check in checks:
        suite.add_expectation(check.expectation())
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name=asset_name))
    outcome = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY",
                             run_id=gx.RunIdentifier(run_name=run_id, run_time=run_at))
    results = []
    for result in outcome.results:
        config = result.expectation_config
        results.append(CheckResult(name, (config.meta or {}).get("name", config.type),
                                   config.type, config.kwargs.get("column"),
                                   config.severity.value, bool(result.success),
                                   _observed(result)))
    return results


def _missing(name: str) -> CheckResult:
    return CheckResult(name, "table exists", "table_exists", None, S.CRITICAL, False,
                       {"error": "the table does not exist yet: run the pipeline first"})


def run_report(spark: SparkSession, settings: Settings, *, pipeline_running: bool,
               now: datetime | None = None, log: Log = print,
               write_postgres: bool = True) -> Report:
    """Validate every suite, rebuild the Data Docs, store the results; the Report."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    run_at = (now or datetime.now(UTC)).astimezone(UTC)
    report = Report(f"dq-{run_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}", run_at)
    all_checks = S.suites(settings, run_at, pipeline_running)
    frames = report_frames(spark, settings, list(all_checks))
    context = _context(settings)
    for name, checks in all_checks.items():
        frame = frames.get(name)
        if frame is None:
            report.results.append(_missing(name))
            continue
        cached = frame.persist()
        try:
            results = _validate(context, name, checks, cached, report.run_id, run_at)
        finally:
            cached.unpersist()
        report.results.extend(results)
        failed = [r.name for r in results if not r.success]
        log(f"dq: {name}: {len(results) - len(failed)}/{len(results)} expectations met"
            f"{' (failed: ' + '; '.join(failed) + ')' if failed else ''}")
    urls = context.build_data_docs(site_names=[SITE])
    report.docs_index = str(urls.get(SITE, "")).removeprefix("file://") or None
    if write_postgres:
        from ops.dq.results import write_results

        write_results(settings.effective_pg_dsn, report)
    return report
