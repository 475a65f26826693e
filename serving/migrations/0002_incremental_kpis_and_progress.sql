-- 0002: what the two-query pipeline adds to the PostgreSQL mirror.
-- * device_minute_kpis keeps, per car and minute, the exact sum of speeds and the alert count of
--   each type, so the KPIs are brought up to date incrementally and fleet_minute_kpis is their
--   sum (an average over exact sums is the same whatever batches the readings came in).
-- * pipeline_progress: one row per micro-batch of each streaming query (the dashboard's
--   pipeline health page reads it; the pipeline keeps the last few days).
-- Column names, types and keys must match serving/tables.py.

ALTER TABLE gold.device_minute_kpis
    ADD COLUMN speed_sum_kmph             numeric(38, 9),
    ADD COLUMN overspeed_alerts           bigint,
    ADD COLUMN engine_overheat_alerts     bigint,
    ADD COLUMN low_fuel_alerts            bigint,
    ADD COLUMN gps_invalid_alerts         bigint,
    ADD COLUMN sustained_overheat_alerts  bigint,
    ADD COLUMN fuel_drop_alerts           bigint,
    ADD COLUMN gps_jump_alerts            bigint,
    ADD COLUMN speed_anomaly_alerts       bigint;

CREATE TABLE gold.pipeline_progress (
    query_name        text NOT NULL,
    query_id          text NOT NULL,
    batch_id          bigint NOT NULL,
    batch_started_at  timestamptz NOT NULL,
    duration_ms       bigint NOT NULL,
    input_rows        bigint NOT NULL,
    source_lag        bigint,  -- Kafka: records not yet read; staging table: files not yet read
    reported_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (query_id, batch_id)
);
CREATE INDEX pipeline_progress_name_started_idx
    ON gold.pipeline_progress (query_name, batch_started_at DESC);
