from __future__ import annotations

import pytest
from hypothesis import given
from strategies import durations

from twin.durations import format_duration, parse_duration


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("15min", 900), ("24h", 86400), ("14d", 14 * 86400),
                                          ("2w", 14 * 86400), ("10y", 10 * 365 * 86400), ("0.5h", 1800)])
def test_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["14", "fortnight", "14 parsecs", "", 14, None, "1.5s", "d14"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@given(durations)
def test_round_trip(d):
    n, unit = d
    s = parse_duration(f"{n}{unit}")
    assert parse_duration(format_duration(s)) == s
