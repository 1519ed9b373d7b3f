"""Durations as human strings ("30s", "15min", "24h", "14d", "2w", "10y") parsed once into ticks.

Simulated time is counted in integer ticks of one second (:data:`TICKS_PER_DAY` per day):
integer ticks keep event times exact over multi-year horizons. A year is 365 days.
"""

from __future__ import annotations

import re

TICKS_PER_DAY = 86400
_UNITS = {
    "s": 1, "sec": 1, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "day": 86400, "days": 86400,
    "w": 7 * 86400, "wk": 7 * 86400, "y": 365 * 86400, "yr": 365 * 86400,
}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]+)\s*$")


def parse_duration(text: object) -> int:
    """Parse ``text`` into whole seconds; ValueError with the accepted forms if it does not parse.

    An int is taken as seconds already parsed (a scenario's durations are held as seconds) and
    returned unchanged, so that code handed either a scenario field or a user's string works."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string such as '15min', '24h', '14d' or '10y', got {text!r}")
    m = _PATTERN.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"cannot parse duration {text!r}: expected a number and a unit "
                         f"({', '.join(sorted(set(_UNITS)))}), e.g. '14d'")
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if abs(seconds - round(seconds)) > 1e-6:
        raise ValueError(f"duration {text!r} is not a whole number of seconds")
    return int(round(seconds))


def format_duration(seconds: int) -> str:
    """The shortest exact string for ``seconds`` (inverse of :func:`parse_duration`)."""
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def to_days(ticks: int | float) -> float:
    return ticks / TICKS_PER_DAY
