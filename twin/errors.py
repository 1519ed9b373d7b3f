"""Error types with a fixed meaning for the command line.

``ConfigError`` is a user error (bad scenario, flowsheet or data file): exit code 2,
one clear message, no traceback. ``SolverError`` is a failure of the numerical
integration (non-finite state, step-size collapse, negative flow): exit code 3.
"""

from __future__ import annotations


class ConfigError(Exception):
    """Invalid user input; the message names the file and the field."""


class SolverError(Exception):
    """The integration failed; the message names the simulated time and the unit."""

    def __init__(self, message: str, time_s: int | None = None, unit: str | None = None):
        super().__init__(message)
        self.time_s = time_s
        self.unit = unit
