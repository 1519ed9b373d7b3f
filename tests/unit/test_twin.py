"""The twin as an object: advance, read, set, snapshot, fork, evaluate."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from twin import Twin
from twin.errors import ConfigError
from twin.evaluate import evaluate
from twin.objectives import WindowMeans
from twin.scenario import load_scenario

SCEN = Path(__file__).resolve().parents[2] / "scenarios"
QUICK = SCEN / "quickstart_24h.yaml"


@pytest.fixture(scope="module")
def quick():
    """The quickstart (BSM1, two loops with sensor noise, synthetic influent) advanced 3 h."""
    return Twin.from_scenario(QUICK).advance("3h")


def _same(a: Twin, b: Twin) -> bool:
    ta, ca, va = a.series()
    tb, cb, vb = b.series()
    return ca == cb and np.array_equal(ta, tb) and np.array_equal(va, vb, equal_nan=True)


def test_unchanged_fork_continues_bit_identically(quick):
    parent = quick.fork()
    child = parent.fork()
    parent.advance("4h")
    child.advance("4h")
    assert _same(parent, child)
    assert parent.events == child.events
    assert parent.read("reactor5.SO") == child.read("reactor5.SO")


def test_a_fork_shares_nothing_mutable_with_its_parent(quick):
    parent = quick.fork()
    witness = parent.fork()
    child = parent.fork()
    assert not np.shares_memory(parent.plant.x, child.plant.x)
    assert not np.shares_memory(parent.cp.P, child.cp.P)
    assert parent.loops[0].ctrl is not child.loops[0].ctrl
    assert parent.cp.advance is child.cp.advance  # compiled kernels are shared
    child.set("controllers.do_reactor5.setpoint", 1.0, reason="test: lower DO")
    child.set("reactor3.kla_per_d", 100.0, reason="test")
    for tw in (parent, child, witness):
        tw.advance("2h")
    assert _same(parent, witness)
    assert not _same(parent, child)
    assert parent.read("controllers.do_reactor5.setpoint") == 2.0
    assert child.read("controllers.do_reactor5.setpoint") == 1.0


def test_snapshot_and_restore_give_the_same_future(quick):
    tw = quick.fork()
    snap = tw.snapshot()
    tw.advance("2h")
    first = tw.series()
    so = tw.read("reactor5.SO")
    tw.restore(snap)
    tw.advance("2h")
    second = tw.series()
    assert np.array_equal(first[2], second[2], equal_nan=True)
    assert tw.read("reactor5.SO") == so


def test_set_is_logged_with_its_reason_and_bad_targets_are_named(quick):
    tw = quick.fork()
    tw.set("controllers.do_reactor5.setpoint", 1.5, reason="operator: night-time DO")
    ev = tw.events[-1]
    assert ev["kind"] == "set" and ev["message"] == "operator: night-time DO"
    assert ev["data"] == {"target": "controllers.do_reactor5.setpoint", "old": 2.0, "new": 1.5}
    assert ev["time_s"] == tw.now
    with pytest.raises(ConfigError, match="did you mean 'do_reactor5'"):
        tw.set("controllers.do_reactor4.setpoint", 1.0)
    with pytest.raises(ConfigError, match="no setting 'setpont'"):
        tw.set("controllers.do_reactor5.setpont", 1.0)
    with pytest.raises(ConfigError, match="no input"):
        tw.set("reactor3.kla", 1.0)


def test_series_reads_a_past_window(quick):
    tw = quick.fork().advance("1h")
    t, cols, v = tw.series(["reactor5.SO_g_m3"] if "reactor5.SO_g_m3" in tw.series()[1] else None,
                           tw.now - 1800, tw.now)
    assert t.size > 0 and t.min() >= tw.now - 1800 and t.max() <= tw.now


def test_schedule_sets_a_setpoint_per_block_and_logs_each_change():
    """A DO setpoint schedule of 4-hour blocks: the recorded setpoint follows it, and every
    change is an event."""
    values = [1.0, 1.5, 2.0, 2.5, 2.0, 1.5]
    tw = Twin.from_scenario(QUICK, overrides={
        "schedules": {"do": {"target": "controllers.do_reactor5.setpoint", "values": values, "block": "4h"}},
        "events": [{"at": "2h", "set": {"controllers.nitrate_reactor2.setpoint": 1.5}}]})
    tw.advance("24h")
    t, _, v = tw.series("control.do_reactor5.setpoint")
    block = ((t - tw.main_start_s) // (4 * 3600)).astype(int)
    inside = (t - tw.main_start_s) % (4 * 3600) != 0  # a sample at a boundary sees the old block
    assert np.array_equal(v[inside, 0], np.array(values)[block[inside] % 6])
    sets = [e for e in tw.events if e["kind"] == "set" and e["source"] == "schedule.do"]
    assert len(sets) == 6
    assert tw.read("controllers.nitrate_reactor2.setpoint") == 1.5


def test_schedule_and_event_targets_are_checked_before_the_run():
    with pytest.raises(ConfigError, match=r"schedules\.do\.target"):
        Twin.from_scenario(QUICK, overrides={"schedules": {"do": {"target": "controllers.do_reactor9.setpoint",
                                                                  "values": [1.0], "block": "1d"}}})
    with pytest.raises(ConfigError, match="do not fill the period"):
        Twin.from_scenario(QUICK, overrides={"schedules": {"do": {"target": "controllers.do_reactor5.setpoint",
                                                                  "values": [1.0, 2.0], "block": "5h"}}})


def test_set_override_reaches_keys_with_dots():
    s, _ = load_scenario(QUICK, ["inputs.reactor3.kla_per_d=180", "inputs[reactor4.kla_per_d]=170"])
    assert s.inputs["reactor3.kla_per_d"] == 180
    assert s.inputs["reactor4.kla_per_d"] == 170


CANDIDATES = [{"controllers.do_reactor5.setpoint": sp} for sp in (1.0, 1.5, 2.5)] + \
             [[(0, "controllers.do_reactor5.setpoint", 1.2), (3600, "controllers.do_reactor5.setpoint", 2.2)]]
OBJECTIVE = WindowMeans(("reactor5.kla_per_d", "effluent.SNH_g_m3"))


def _cols(tw):
    cols = tw.series()[1]
    return [c for c in OBJECTIVE.columns if c in cols]


def test_evaluator_results_do_not_depend_on_the_executor(quick):
    assert _cols(quick) == list(OBJECTIVE.columns)
    rec = list(OBJECTIVE.columns)
    serial = evaluate(quick, CANDIDATES, "2h", OBJECTIVE, executor="serial", record=rec)
    one = evaluate(quick, CANDIDATES, "2h", OBJECTIVE, executor="process", workers=1, record=rec)
    two = evaluate(quick, CANDIDATES, "2h", OBJECTIVE, executor="process", workers=2, record=rec)
    assert serial == one == two
    kla = [r["reactor5.kla_per_d"] for r in serial[:3]]
    assert kla[0] < kla[1] < kla[2]  # more air for a higher DO setpoint
    # a candidate evaluated by hand on a fork gives the same figure
    f = quick.fork(record=rec)
    t0 = f.now
    f.set("controllers.do_reactor5.setpoint", 1.0, reason="candidate")
    f.advance_to(t0 + 7201)
    assert OBJECTIVE(f, t0, t0 + 7200) == serial[0]
    assert quick.now == t0  # the evaluated twin did not move


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask.distributed not installed")
def test_dask_executor_gives_the_same_results(quick):
    from distributed import Client, LocalCluster

    rec = list(OBJECTIVE.columns)
    serial = evaluate(quick, CANDIDATES[:2], "1h", OBJECTIVE, executor="serial", record=rec)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert evaluate(quick, CANDIDATES[:2], "1h", OBJECTIVE, executor="dask", client=client, record=rec) == serial


def test_reference_plant_with_fleet_forks_exactly_and_kpis_change_nothing():
    """The reference plant with its eight loops, air header, instruments, weather, 124-asset
    fleet and maintenance agent: a fork continues bit-identically (series and event log), and
    reading the maintenance KPIs mid-run changes nothing."""
    tw = Twin.from_scenario(SCEN / "reference_10y.yaml", overrides={"duration": "40d", "evaluation.end": "40d"})
    tw.advance("20d")
    a, b = tw.fork(), tw.fork()
    a.agent.kpis(a.now, 168.0)
    for f in (a, b, tw):
        f.advance("5d")
    assert _same(a, b) and _same(a, tw)
    assert a.events == b.events == tw.events
    assert a.agent.kpis(a.now, 168.0) == b.agent.kpis(b.now, 168.0)


def test_a_fork_taken_while_work_orders_wait_for_crews_continues_exactly():
    """Failures beyond the crews' capacity leave work orders queued for a crew; a fork (and a fork
    of that fork, as the optimiser's reference twin is) re-queues them at the saved time: it
    continues bit-identically to its parent and its clock never runs back."""
    tw = Twin.from_scenario(SCEN / "reference_10y.yaml", overrides={"duration": "10d", "evaluation.end": "10d"})
    tw.advance("1d")
    fleet = tw.agent.fleet
    failing = [a for a in fleet.assets if a.type == "blower"][:2] + [a for a in fleet.assets if a.type == "valve"][:4]
    for a in failing:
        tw.agent.fail(int(fleet.rows_of(fleet.index[a.id])[0]), forced=True)
    tw.advance("1min")
    assert len(tw.agent.crews.queue) > 0  # work orders wait for a crew
    a = tw.fork()
    b = a.fork()
    start = tw.now
    for f in (tw, a, b):
        assert f.now == start
        f.advance("12h")
        assert f.now == start + 12 * 3600
    assert _same(a, tw) and _same(b, tw)
    assert a.events == b.events == tw.events
    later = [e["time_s"] for e in tw.events if e["time_s"] >= start]
    assert later == sorted(later)


def test_ammonia_cascade_sets_the_do_setpoint():
    """Ammonia-based aeration control: an outer PI on tank-5 ammonia drives the DO loop's
    setpoint within its limits; the DO setpoint then moves with the load, and the inner loop
    follows it. A cascade target that is not a loop's setpoint is refused before the run."""
    cascade = {"measurement": "reactor5.SNH", "actuator": "controllers.do_reactor5.setpoint", "setpoint": 1.0,
               "K": -0.5, "Ti_d": 0.05, "limits": [0.5, 3.0], "offset": 2.0, "sample_time": "5min"}
    tw = Twin.from_scenario(QUICK, overrides={"controllers.nh4_reactor5": cascade})
    tw.advance("24h")
    t, cols, v = tw.series(["control.do_reactor5.setpoint", "control.nh4_reactor5.output"])
    assert np.array_equal(v[1:, 0], v[1:, 1])  # the outer output is the inner setpoint
    assert v[:, 0].min() >= 0.5 and v[:, 0].max() <= 3.0
    assert np.ptp(v[:, 0]) > 0.1  # it moves with the load
    with pytest.raises(ConfigError, match=r"controllers\.nh4_reactor5\.actuator"):
        Twin.from_scenario(QUICK, overrides={"controllers.nh4_reactor5": {**cascade,
                                                                          "actuator": "controllers.do_reactor5.K"}})


def test_a_lean_fork_simulates_the_plant_exactly_as_a_full_one():
    """A lean fork (a candidate plan's: no instruments it does not record, no optimiser
    safeguards) leaves out only what does not act on the plant: after the same setpoint change
    its recorded plant and machine signals equal the full fork's bit for bit, and it records a
    sensor it is asked for exactly as the full fork reads it."""
    opt = {"every": "6h", "horizon": "6h", "lookahead": "0s", "forecast": "perfect", "population": 4,
           "generations": 1, "elite": 1,
           "fallback": [{"signal": "sensor.effluent_ammonia", "above": 3.0, "hold": "15min"}],
           "variables": [{"target": "controllers.do_reactor3.setpoint", "bounds": [0.8, 3.0], "block": "3h"}]}
    tw = Twin.from_scenario(SCEN / "reference_24h.yaml", overrides={"optimiser": opt, "duration": "12h",
                                                                     "evaluation.end": "12h"})
    tw.advance("2h")
    cols = ["effluent.SNH_g_m3", "reactor3_out.SO_g_m3", "power.aeration_kW", "sensor.effluent_nitrate"]
    full, lean = tw.fork(record=cols), tw.fork(record=cols, lean=True)
    assert {k for k in lean.parts if k.startswith("sensor.")} == {"sensor.effluent_nitrate"}
    assert not any(k.startswith("optimiser.fallback") for k in lean.env._tracked)
    assert any(k.startswith("optimiser.fallback") for k in full.env._tracked)
    again = lean.fork()  # a fork of a lean twin is lean, with its instruments
    assert again.lean and {k for k in again.parts if k.startswith("sensor.")} == {"sensor.effluent_nitrate"}
    for f in (full, lean):
        f.set("controllers.do_reactor3.setpoint", 1.2, reason="test")
        f.advance("3h")
    ta, ca, va = full.series()
    tb, cb, vb = lean.series()
    assert ca == cb == cols and np.array_equal(ta, tb) and np.array_equal(va, vb)
    assert ta.size > 30
