"""Gold from a whole silver table in one shot: the reference `update_gold` must always equal."""
from __future__ import annotations

from pyspark.sql import DataFrame

from gold.alerts import threshold_alerts
from gold.kpis import device_latest, device_minute_kpis, fleet_minute_kpis
from gold.stateful import stateful_alerts
from infra.settings import AlertRules


def gold_from_silver(silver_df: DataFrame, rules: AlertRules) -> dict[str, DataFrame]:
    """Every gold table except dq_batch_metrics, recomputed from all of `silver_df`."""
    alerts = threshold_alerts(silver_df, rules).unionByName(stateful_alerts(silver_df, rules))
    return {
        "alerts": alerts,
        "device_minute_kpis": device_minute_kpis(silver_df, alerts),
        "fleet_minute_kpis": fleet_minute_kpis(silver_df, alerts),
        "device_latest": device_latest(silver_df),
    }
