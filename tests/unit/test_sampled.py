"""Loops stepped in compiled code give the Python path's results sample for sample.

The compiled loop group (controllers.sampled) repeats the Python path's integrator calls and
arithmetic in the same order: every recorded column, every loop statistic and every event
must be equal (np.array_equal), for each PID form, anti-windup, derivative filter, rate
limit, sensor model (lags, noise, range) and actuator model, across schedule changes, and
in a fork.
"""

from __future__ import annotations

import numpy as np
import pytest

import controllers.sampled as sampled
from twin import Twin

SCEN = "scenarios/quickstart_24h.yaml"

VARIANTS = {
    "bsm1 pi": {},
    "derivative, setpoint weights": {"controllers.do_reactor5.Td_d": 0.0005, "controllers.do_reactor5.N": 8,
                                     "controllers.do_reactor5.b": 0.7, "controllers.do_reactor5.c": 0.5},
    "velocity form, rate limit": {"controllers.do_reactor5.form": "velocity",
                                  "controllers.do_reactor5.rate_max_per_d": 20000.0,
                                  "controllers.nitrate_reactor2.form": "velocity"},
    "clamping, saturating limits": {"controllers.do_reactor5.anti_windup": "clamping",
                                    "controllers.do_reactor5.limits": [0, 150],
                                    "controllers.nitrate_reactor2.anti_windup": "clamping"},
    "sensor and actuator models": {"controllers.do_reactor5.sensor": {"T90_min": 1, "order": 2, "noise_sd": 0.25,
                                                                      "range": [0, 10]},
                                   "controllers.nitrate_reactor2.sensor": {"T90_min": 10, "order": 8,
                                                                           "noise_sd": 0.1, "range": [0, 20]},
                                   "controllers.do_reactor5.actuator_dynamics": {"T90_min": 4, "order": 2}},
    "schedule changes": {"schedules": {"do_day": {"target": "controllers.do_reactor5.setpoint", "block": "2h",
                                                  "period": "8h", "values": [2.0, 1.2, 2.5, 1.6]}}},
}


def _run(overrides: dict, compiled: bool, seed: int):
    old = sampled.COMPILED
    sampled.COMPILED = compiled
    try:
        tw = Twin.from_scenario(SCEN, seed=seed, overrides={"duration": "8h", "evaluation.end": "8h", **overrides})
        tw.run_to_end()
        r = tw.result()
    finally:
        sampled.COMPILED = old
    return tw, r


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("seed", [3, 8])
def test_compiled_loops_equal_python_loops(name, seed):
    tw_c, a = _run(VARIANTS[name], True, seed)
    tw_p, b = _run(VARIANTS[name], False, seed)
    assert a.columns == b.columns
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert [(e["time_s"], e["kind"], e["message"]) for e in a.events.records] == \
        [(e["time_s"], e["kind"], e["message"]) for e in b.events.records]
    for la, lb in zip(tw_c.loops, tw_p.loops):
        assert la.stats.kpis() == lb.stats.kpis()
        assert (la.ctrl.integral, la.ctrl.derivative, la.ctrl.u_prev) == (lb.ctrl.integral, lb.ctrl.derivative,
                                                                          lb.ctrl.u_prev)
    assert tw_c.plant.steps == tw_p.plant.steps  # the same integration steps


def test_compiled_group_takes_many_samples_per_call(monkeypatch):
    calls = []
    tw = Twin.from_scenario(SCEN, overrides={"duration": "2h", "evaluation.end": "2h"})
    real = tw.cp.sampled

    def spy(*args):
        calls.append(args[5])  # samples in this call
        return real(*args)

    monkeypatch.setattr(tw.cp, "sampled", spy)
    tw.advance("1h")
    # 1-minute loops, 5-minute recorder, 15-minute influent: five samples per call
    assert calls and max(calls) == 5 and sum(calls) >= 55


def test_fork_of_compiled_loops_continues_identically():
    tw = Twin.from_scenario(SCEN, overrides={"duration": "6h", "evaluation.end": "6h"})
    tw.advance("97min")  # mid-way between two recorder samples
    f = tw.fork()
    tw.advance("3h")
    f.advance("3h")
    ta, ca, va = tw.env.recorder.table()
    tb, cb, vb = f.env.recorder.table()
    assert np.array_equal(ta, tb) and ca == cb and np.array_equal(va, vb, equal_nan=True)


def test_loop_under_test_falls_back_to_python():
    lp_state = []
    tw = Twin.from_scenario(SCEN, overrides={"duration": "2h", "evaluation.end": "2h"})
    lp = tw.loops[0]
    assert sampled.plain(lp)
    lp.busy = True
    lp_state.append(sampled.plain(lp))
    lp.busy = False
    lp.ctrl.set_manual(100.0)
    lp_state.append(sampled.plain(lp))
    assert lp_state == [False, False]


@pytest.mark.parametrize("overrides", [{}, {"equipment.pumps.lift_station.n_parallel": 2}])
def test_reference_plant_instruments_and_machines_equal_on_both_paths(overrides):
    """The reference plant: eight loops (one reads the air header's pressure), instruments on
    stream values with dead times, blowers, valves, pumps with staging and limits, mixers and
    heating: every column and every event (machine decisions included) equal on both paths."""
    out = []
    for compiled in (True, False):
        old = sampled.COMPILED
        sampled.COMPILED = compiled
        try:
            tw = Twin.from_scenario("scenarios/reference_24h.yaml",
                                    overrides={"duration": "10h", "evaluation.end": "10h", **overrides})
            tw.run_to_end()
            out.append(tw.result())
        finally:
            sampled.COMPILED = old
    a, b = out
    assert a.columns == b.columns and np.array_equal(a.values, b.values, equal_nan=True)
    ev = lambda r: [(e["time_s"], e["kind"], e["source"], e["message"]) for e in r.events.records]  # noqa: E731
    assert ev(a) == ev(b)
    if overrides:  # two lift pumps reach their limits: machine decisions were logged on both paths
        assert any(e[1] == "equipment" for e in ev(a))
