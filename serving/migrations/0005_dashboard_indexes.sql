-- 0005: what the dashboard's queries (dashboard/queries.py) need beyond 0001-0002.
-- Every other dashboard query is served by the keys and indexes already there;
-- tests/integration/test_dashboard_indexes.py EXPLAINs every query the pages run.
-- * The freshness tile and stale-data banner read max(event_ts) of device_latest (the newest event
--   in gold) on every refresh: with this index it is one index lookup, whatever the fleet's size.

CREATE INDEX device_latest_event_ts_idx ON gold.device_latest (event_ts);
