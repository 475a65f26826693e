"""`fleetlake bench`: the end-to-end benchmark (the phases live in this package's modules).

Its arguments are defined here, apart from the heavy modules, so the CLI starts fast.
"""
from __future__ import annotations

import argparse


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events preloaded for the backlog phase (default 1,000,000)")
    parser.add_argument("--rate", type=float, default=2000.0,
                        help="events/s of the live phase (default 2000)")
    parser.add_argument("--cars", type=int, default=None,
                        help="cars of the live phase (default: producer.cars of the settings); "
                             "each reports every cars/rate seconds of event time")
    parser.add_argument("--live-seconds", type=float, default=150.0,
                        help="length of the live phase (default 150)")
    # low enough that a batch of 20 s (gold on a slow 2-core machine) holds <= 100 events
    parser.add_argument("--trickle-rate", type=float, default=5.0,
                        help="events/s of the small-batch phase (default 5)")
    parser.add_argument("--trickle-seconds", type=float, default=30.0)
    parser.add_argument("--skip-live", action="store_true", help="backlog phase only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--keep", action="store_true",
                        help="keep the phases' topics, lakes and databases")
