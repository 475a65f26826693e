"""The fault campaign (scripts/fault_campaign.py, tests/integration/test_fault_campaign.py):
faults injected into a running pipeline, each followed by checks that nothing was lost or
duplicated and that PostgreSQL equals Delta."""
