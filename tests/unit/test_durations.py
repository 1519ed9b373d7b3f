from __future__ import annotations

import pytest
from hypothesis import given
from strategies import durations

from twin.durations import format_duration, parse_duration


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("15min", 900), ("24h", 86400), ("14d", 14 * 86400),
                                          ("2w", 14 * 86400), ("10y", 10 * 365 * 86400), ("0.5h", 1800)])
def test_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["14", "fortnight", "14 parsecs", "", None, True, 1.5, "1.5s", "d14"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_seconds_pass_through():
    # a scenario holds its durations as seconds already parsed
    assert parse_duration(14) == 14


def test_scenario_refuses_a_bare_number():
    from twin.scenario import Scenario

    with pytest.raises(ValueError, match="expected a duration string"):
        Scenario.model_validate({"name": "x", "duration": 14})


def test_scenario_holds_seconds_and_writes_the_text_back():
    from twin.scenario import Scenario

    s = Scenario.model_validate({"name": "x", "duration": "24h", "evaluation": {"start": "2h"}})
    assert s.duration == 86400 and s.evaluation.start == 7200 and s.outputs.sample_interval == 900
    d = s.to_dict()
    assert d["duration"] == "24h" and d["evaluation"]["start"] == "2h" and d["outputs"]["sample_interval"] == "15min"
    assert Scenario.model_validate(d) == s


@given(durations)
def test_round_trip(d):
    n, unit = d
    s = parse_duration(f"{n}{unit}")
    assert parse_duration(format_duration(s)) == s
