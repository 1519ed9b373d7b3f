"""Planned maintenance placed in cheap, low-load hours (``fleet.planned_start: cheapest``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from agents.maintenance import WorkOrder
from twin import Twin
from twin.errors import ConfigError

SCEN = Path(__file__).resolve().parents[2] / "scenarios"


def _twin(start: str = "cheapest", **fleet_kw) -> Twin:
    fleet = yaml.safe_load((SCEN / "reference_10y.yaml").read_text())["fleet"]
    fleet["file"] = str(SCEN / fleet["file"])
    fleet.update(planned_start=start, planned_hours=[0, 24], **fleet_kw)
    fleet["crews"] = {**fleet.get("crews", {}), "shift_start_h": 0, "shift_end_h": 24}
    return Twin.from_scenario(SCEN / "reference_24h.yaml", overrides={"fleet": fleet, "duration": "3d",
                                                                     "evaluation.end": "3d"})


def test_planned_work_starts_in_the_hours_of_least_price_times_logged_inflow():
    """The agent logs the plant's inflow hourly; a planned order starts at the allowed hour of the
    next 24 h whose forecast weight (the tariff's price x the inflow logged a day earlier, summed
    over the work's hours) is the least; with every hour allowed, that is a cheap, low-inflow
    hour, not the first one."""
    tw = _twin()
    tw.advance("30h")
    agent = tw.agent
    assert len(agent.inflow_h) >= 24 and all(q > 0 for q in agent.inflow_h.values())
    i = next(k for k, a in enumerate(agent.fleet.assets) if a.type == "centrifugal_pump" and not agent.busy[k])
    hours = agent.fleet.types["centrifugal_pump"].replace_h
    now = tw.now
    chosen = agent.cheapest_start(now, hours)
    starts = [now] + [now - now % 3600 + 3600 * k for k in range(1, 25)]
    weights = {t: sum(agent.outage_weight(t + 3600 * j) for j in range(int(np.ceil(hours)))) for t in starts}
    assert weights[chosen] == min(weights.values())
    assert chosen != now and weights[chosen] < weights[now]  # waiting pays here
    agent.busy[i] = True
    agent._start_work(WorkOrder(i, "preventive", "test", now))
    tw.advance_to(chosen + 60)
    assert agent.down_since.get(i) == chosen  # taken down for the work at the chosen hour


def test_first_allowed_hour_is_unchanged_and_cheapest_needs_the_process_model():
    tw = _twin(start="first")
    assert tw.agent.outage_weight is None
    with pytest.raises(ConfigError, match="planned_start"):
        _twin(process_model=False)


def test_a_fork_continues_the_planned_starts_of_its_parent():
    """The inflow log is saved with the agent: a fork taken mid-run plans the same start as its
    parent and continues bit-identically."""
    tw = _twin()
    tw.advance("28h")
    f = tw.fork()
    assert f.agent.inflow_h == tw.agent.inflow_h
    assert f.agent.cheapest_start(f.now, 6.0) == tw.agent.cheapest_start(tw.now, 6.0)
    tw.advance("10h")
    f.advance("10h")
    assert tw.events == f.events
