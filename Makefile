# The two commands of the README: `make demo` (run everything) and `make test` (run the tests).
.PHONY: setup demo test stop status

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/fleetlake demo

# Unit tests (static DataFrames, tmp_path tables) on two workers, each with its own Spark
# session; integration tests one at a time (they share Kafka and PostgreSQL, one stops it).
test: setup
	.venv/bin/fleetlake services up
	.venv/bin/python -m pytest -ra --durations=15 -n 2 --dist loadfile tests/unit
	.venv/bin/python -m pytest -ra --durations=15 tests/integration

stop:
	-.venv/bin/fleetlake services down

status:
	.venv/bin/fleetlake services status
