# The two commands of the README: `make demo` (run everything) and `make test` (run the tests).
.PHONY: setup demo test stop status

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/fleetlake demo

test: setup
	.venv/bin/fleetlake services up
	.venv/bin/python -m pytest -ra

stop:
	-.venv/bin/fleetlake services down

status:
	.venv/bin/fleetlake services status
