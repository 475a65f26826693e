"""The one error type of the operations commands a user can hit (bad input, missing table, ...).

The CLI prints its message as one line (`fleetlake: error: ...`) and exits 1.
"""


class OpsError(Exception):
    """Wrong input or state for an operations command; the message names it and the fix."""
