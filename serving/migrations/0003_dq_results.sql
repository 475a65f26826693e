-- 0003: results of `fleetlake dq report` (Great Expectations), for the dashboard.
-- One row per (report run, table, expectation). `suite` is the validated table (a contract name
-- such as silver/telemetry, or lake/accounting for the layer-count identities); `severity`
-- critical means a failure makes `dq report` exit non-zero; `observed` is GX's result (observed
-- value, unexpected counts, a sample of unexpected values).

CREATE TABLE gold.dq_results (
    run_id            text NOT NULL,
    run_at            timestamptz NOT NULL,
    suite             text NOT NULL,
    expectation       text NOT NULL,
    expectation_type  text NOT NULL,
    column_name       text,
    severity          text NOT NULL,
    success           boolean NOT NULL,
    observed          jsonb,
    PRIMARY KEY (run_id, suite, expectation)
);
CREATE INDEX dq_results_run_at_idx ON gold.dq_results (run_at DESC);
