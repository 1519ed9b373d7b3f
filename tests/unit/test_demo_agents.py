"""The demonstration's two agents together: the optimiser decides on a fork in which two aeration
blowers have failed and, with the same search, on an unchanged fork; the main twin's decision
is the same as without the comparison."""

from __future__ import annotations

from twin.demo import _optimiser_part

TINY = {"horizon": "3h", "lookahead": "1h", "block": "3h", "population": 4, "generations": 1}


def test_optimiser_plans_on_a_fork_with_blowers_out_and_the_main_decision_is_unchanged():
    quiet = []
    with_outage = _optimiser_part({**TINY, "outage": {"horizon": "3h", "population": 4, "generations": 1}},
                                  quiet.append)
    without = _optimiser_part({**TINY, "outage": None}, quiet.append)
    out = with_outage["with_blowers_out"]
    assert out["failed"] == ["B-01", "B-02"]
    assert out["two_blowers_out"]["blowers_out_of_service"] == 2 and out["every_blower_up"]["blowers_out_of_service"] == 0
    # the outage changes what the optimiser predicts for the same hours and the same search
    assert out["two_blowers_out"]["predicted"]["electricity_kWh"] != out["every_blower_up"]["predicted"]["electricity_kWh"]
    # the failures happened on a fork only: the main twin decides and runs as without them
    assert with_outage["plan"] == without["plan"] and with_outage["optimised"] == without["optimised"]
    assert without["with_blowers_out"] is None
    assert any("B-01 and B-02 out" in line for line in quiet)
