-- The PostgreSQL mirror of the gold Delta tables (DESIGN.md "Tables"), plus the sync ledger.
-- Applied once by serving/migrate.py inside a transaction; never edit after release: add 0002_*.
-- Column names, types and keys must match serving/tables.py.

CREATE TABLE gold.alerts (
    alert_id        text PRIMARY KEY,
    event_id        text,
    car_id          text,
    event_ts        timestamptz,
    alert_type      text,
    severity        text,
    message         text,
    observed_value  double precision,
    threshold       double precision
);
CREATE INDEX alerts_event_ts_idx ON gold.alerts (event_ts DESC);
CREATE INDEX alerts_car_event_ts_idx ON gold.alerts (car_id, event_ts DESC);
CREATE INDEX alerts_type_event_ts_idx ON gold.alerts (alert_type, event_ts DESC);

CREATE TABLE gold.device_minute_kpis (
    car_id             text,
    window_start       timestamptz,
    events             bigint,
    avg_speed_kmph     double precision,
    max_speed_kmph     double precision,
    max_engine_temp_c  double precision,
    min_fuel_level     double precision,
    alerts             bigint,
    PRIMARY KEY (car_id, window_start)
);
CREATE INDEX device_minute_kpis_window_start_idx ON gold.device_minute_kpis (window_start);

CREATE TABLE gold.fleet_minute_kpis (
    window_start               timestamptz PRIMARY KEY,
    active_cars                bigint,
    events                     bigint,
    avg_speed_kmph             double precision,
    alerts                     bigint,
    overspeed_alerts           bigint,
    engine_overheat_alerts     bigint,
    low_fuel_alerts            bigint,
    gps_invalid_alerts         bigint,
    sustained_overheat_alerts  bigint,
    fuel_drop_alerts           bigint,
    gps_jump_alerts            bigint,
    speed_anomaly_alerts       bigint
);

CREATE TABLE gold.device_latest (
    car_id           text PRIMARY KEY,
    event_id         text,
    trip_id          text,
    event_ts         timestamptz,
    speed_kmph       double precision,
    fuel_level       double precision,
    engine_temp_c    double precision,
    latitude         double precision,
    longitude        double precision,
    gps_valid        boolean,
    kafka_timestamp  timestamptz
);

CREATE TABLE gold.dq_batch_metrics (
    query_id            text,
    batch_id            bigint,
    processed_at        timestamptz,
    rows_in             bigint,
    valid_rows          bigint,
    quarantined_rows    bigint,
    duplicate_rows      bigint,
    quarantine_reasons  jsonb,
    PRIMARY KEY (query_id, batch_id)
);
CREATE INDEX dq_batch_metrics_processed_at_idx ON gold.dq_batch_metrics (processed_at);

-- One row per (sync application, Spark micro-batch) applied: the exactly-once guard.
CREATE TABLE gold.sync_ledger (
    app_id      text,
    batch_id    bigint,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    rows        jsonb NOT NULL,
    PRIMARY KEY (app_id, batch_id)
);
