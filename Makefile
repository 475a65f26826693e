# The two commands of the README: `make demo` (run everything) and `make test` (run the tests).
.PHONY: setup demo test stop status

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/fleetlake demo

# Unit tests (static DataFrames, tmp_path tables) on two workers, each with its own Spark
# session; then the integration tests on two workers too (each has its own topic, lake and
# database on the shared Kafka and PostgreSQL), except those that stop or kill a shared
# service (marked `exclusive`): they run last, one at a time.
test: setup
	.venv/bin/fleetlake services up
	.venv/bin/python -m pytest -ra -n 2 --dist loadfile tests/unit
	.venv/bin/python -m pytest -ra -n 2 --dist loadfile -m "not exclusive" tests/integration
	.venv/bin/python -m pytest -ra -m exclusive tests/integration

stop:
	-.venv/bin/fleetlake services down

status:
	.venv/bin/fleetlake services status
