"""The energy optimiser: a GA over setpoint blocks scored on forks of the twin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin import Twin
from twin.errors import ConfigError
from twin.evaluate import persistence

SCEN = Path(__file__).resolve().parents[2] / "scenarios"
REF = SCEN / "reference_24h.yaml"


def _opt(**kw):
    base = {"every": "6h", "horizon": "6h", "lookahead": "0s", "forecast": "perfect", "population": 6,
            "generations": 2, "elite": 2,
            "variables": [{"target": f"controllers.do_reactor{z}.setpoint", "bounds": [0.8, 3.0], "block": "3h"}
                          for z in (3, 4, 5)]}
    base.update(kw)
    return base


def _twin(**kw) -> Twin:
    return Twin.from_scenario(REF, overrides={"optimiser": _opt(**kw), "duration": "12h", "evaluation.end": "12h"})


@pytest.fixture(scope="module")
def optimised():
    return _twin().run_to_end()


def test_perfect_forecast_prediction_equals_the_realised_window(optimised):
    """With a perfect forecast the fork that scored the chosen plan saw exactly the future the
    plant then lived: predicted and realised figures agree."""
    real = [e for e in optimised.events if e["kind"] == "optimiser_realised"]
    assert real
    for e in real:
        for k, v in e["data"]["predicted"].items():
            assert e["data"]["realised"][k] == pytest.approx(v, rel=1e-9, abs=1e-9)


def test_applied_schedule_respects_bounds_and_equals_what_was_logged(optimised):
    plans = [e for e in optimised.events if e["kind"] == "optimiser_plan"]
    assert len(plans) == 2
    logged = sorted((s["at_s"], s["target"], s["value"]) for e in plans for s in e["data"]["schedule"])
    applied = sorted((e["time_s"], e["data"]["target"], e["data"]["new"]) for e in optimised.events
                     if e["kind"] == "set" and e["source"] == "optimiser")
    assert applied == logged
    assert all(0.8 <= v <= 3.0 for _, _, v in logged)
    t, _, v = optimised.series("control.do_reactor3.setpoint")
    for at, target, value in logged:
        if target.endswith("do_reactor3.setpoint"):
            after = (t > at) & (t < at + 3 * 3600)
            assert np.all(v[after, 0] == value)
    for e in plans:
        d = e["data"]
        assert d["wall_s"] > 0 and len(d["generations"]) == 2
        split = d["time_split"]  # where the decision's time went: every evaluated candidate is counted once
        assert split["candidates"] == d["evaluations"]
        assert min(split["fork_s"], split["simulate_s"], split["objective_s"], split["evaluations_s"]) >= 0
        _held_to_the_default_control(d, "electricity_cost")


def _held_to_the_default_control(d, key):
    """A plan adds no hours above any limit and keeps EQI within the allowance of the default
    control on the same forecast, when some candidate does (the default control is in the
    population, so one always does unless it is outside the bounds); among those it is no
    dearer than the default or than keeping the current settings (both in the population)."""
    base, cur, p = d["baseline_default_control"], d["baseline_current_setpoints"], d["predicted"]
    for k in ("SNH", "Ntot", "TSS"):
        assert p[f"hours_above_{k}"] <= base[f"hours_above_{k}"] + 1e-9
    assert p["EQI_kg_d"] <= d["eqi_cap_kg_d"] + 1e-9
    assert d["eqi_cap_kg_d"] == pytest.approx(base["EQI_kg_d"] * 1.01, rel=1e-12)
    assert p[key] <= base[key] + 1e-9
    feasible = all(cur[f"hours_above_{k}"] <= base[f"hours_above_{k}"] for k in ("SNH", "Ntot", "TSS")) \
        and cur["EQI_kg_d"] <= d["eqi_cap_kg_d"]
    if feasible:
        assert p[key] <= cur[key] + 1e-9


def test_the_reference_is_the_default_control_not_the_last_plan():
    """The second decision is held to the default control as it would have run, not to the first
    plan's settings nor to the state the first plan left: its reference figures are those of the
    reference twin (the default control since the first decision) over the horizon, and differ
    from the default settings applied to the running plant's state."""
    tw = _twin(generations=1)
    defaults = [tw.read(f"controllers.do_reactor{z}.setpoint") for z in (3, 4, 5)]
    assert tw.optimiser.defaults == defaults
    tw.optimiser.decide(tw)
    tw.advance("6h")
    second = tw.optimiser.decide(tw)
    assert tw.optimiser.defaults == defaults
    base = second["baseline_default_control"]
    obj = tw.optimiser.objective(tw)
    t0 = tw.now
    ref = tw.optimiser.reference_twin(tw, obj.columns).fork()
    assert [ref.read(f"controllers.do_reactor{z}.setpoint") for z in (3, 4, 5)] == defaults
    ref.advance("6h")
    again = obj(ref, t0, t0 + 6 * 3600)
    assert again["EQI_kg_d"] == pytest.approx(base["EQI_kg_d"], rel=1e-9)
    assert again["electricity_cost"] == pytest.approx(base["electricity_cost"], rel=1e-9)
    here = tw.fork()  # the default settings on the running plant's state: another figure
    here.plan.changes = []
    for (target, *_), value in zip(tw.optimiser.blocks(), defaults):
        here.set(target, value, reason="test")
    here.advance("6h")
    assert obj(here, t0, t0 + 6 * 3600)["EQI_kg_d"] != pytest.approx(base["EQI_kg_d"], rel=1e-9)


def test_same_seed_same_plan():
    a = _twin(generations=1)
    b = _twin(generations=1)
    pa, pb = a.optimiser.decide(a), b.optimiser.decide(b)
    assert pa["schedule"] == pb["schedule"]
    assert pa["predicted"] == pb["predicted"]


def test_ga_finds_the_known_optimum_of_a_pure_cost_problem():
    """One variable, no effluent limits or weights: less air always costs less, so the optimum
    is the lower bound. The GA reaches it (the mutation is clipped at the bounds)."""
    tw = _twin(variables=[{"target": "controllers.do_reactor5.setpoint", "bounds": [0.5, 3.0], "block": "6h"}],
               limits={}, eqi_tolerance=None, population=8, generations=6, elite=1, mutation_sigma_fraction=0.5,
               mutation_indpb=1.0)
    d = tw.optimiser.decide(tw)
    assert d["schedule"][0]["value"] == pytest.approx(0.5, abs=0.05)


def test_persistence_forecast_replays_the_last_day():
    """The persistence forecast replaces the horizon's influent with the same hours a day
    earlier: the optimiser does not read the running twin's future."""
    tw = Twin.from_scenario(SCEN / "reference_year.yaml")
    now, h = 3 * 86400, 86400
    fc = persistence(tw.shared, now, h, 86400)
    table, new = tw.shared.tables[-1], fc.tables[-1]
    t = table.times_s
    inside = (t >= now) & (t <= now + h)
    back = np.searchsorted(t, t[inside] - 86400)
    assert np.array_equal(new.values[inside], table.values[back])
    assert not np.array_equal(new.values[inside], table.values[inside])
    assert np.array_equal(new.values[~inside], table.values[~inside])
    assert tw.shared.tables[-1] is table  # the twin's own tables are untouched


def test_optimiser_settings_are_checked_before_the_run():
    with pytest.raises(ConfigError, match=r"optimiser\.variables\[0\]\.target"):
        _twin(variables=[{"target": "controllers.do_reactor7.setpoint", "bounds": [0.5, 3.0], "block": "3h"}])
    with pytest.raises(ConfigError, match="does not divide the horizon"):
        _twin(variables=[{"target": "controllers.do_reactor5.setpoint", "bounds": [0.5, 3.0], "block": "4h"}])


def test_nsga2_applies_a_pareto_point_within_the_eqi_tolerance():
    """NSGA-II over (cost, EQI, CO2): the applied plan is on the logged front, and it is the
    cheapest front point whose EQI is within the tolerance of the default control (or the
    lowest-EQI point when none is)."""
    tw = _twin(algorithm="nsga2", population=8, generations=2, elite=2)
    d = tw.optimiser.decide(tw)
    front = d["pareto_front"]
    assert front and d["algorithm"] == "nsga2"
    p = d["predicted"]
    assert any(pt["cost"] == p["electricity_cost"] and pt["EQI_kg_d"] == p["EQI_kg_d"] for pt in front)
    limit = d["baseline_default_control"]["EQI_kg_d"] * 1.01
    ok = [pt for pt in front if pt["EQI_kg_d"] <= limit]
    if ok:
        assert p["electricity_cost"] == min(pt["cost"] for pt in ok)
    else:
        assert p["EQI_kg_d"] == min(pt["EQI_kg_d"] for pt in front)


def test_the_search_leaves_the_global_random_state_alone():
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    tw = _twin(generations=1)
    tw.optimiser.decide(tw)
    assert random.random() == expected


def test_bsm1_plant_without_machines_is_optimised_on_its_operational_cost_index():
    """BSM1 has no machines and no tariff: the optimiser minimises the horizon's BSM1 OCI
    (AE + PE + 5 SP + ME); with a perfect forecast the predicted figures are the realised ones,
    and the plan's OCI is never above keeping the current setpoints unless it violates less."""
    opt = _opt(objective="bsm1_oci", every="4h", horizon="4h", population=6, generations=1,
               variables=[{"target": "controllers.do_reactor5.setpoint", "bounds": [0.8, 3.0], "block": "2h"},
                          {"target": "reactor4.kla_per_d", "bounds": [150, 240], "block": "2h"}])
    tw = Twin.from_scenario(SCEN / "quickstart_24h.yaml", overrides={"optimiser": opt, "duration": "8h",
                                                                      "evaluation.end": "8h"}).run_to_end()
    plans = [e for e in tw.events if e["kind"] == "optimiser_plan"]
    real = [e for e in tw.events if e["kind"] == "optimiser_realised"]
    assert len(plans) == 2 and real
    for e in plans:
        d = e["data"]
        assert {"OCI", "AE_kWh_d", "PE_kWh_d", "SP_kg_d"} <= set(d["predicted"])
        _held_to_the_default_control(d, "OCI")
        assert "operational cost index" in e["message"]
    for e in real:
        assert e["data"]["realised"]["OCI"] == pytest.approx(e["data"]["predicted"]["OCI"], rel=1e-9)


def test_electricity_objective_without_machines_is_refused():
    with pytest.raises(ConfigError, match="bsm1_oci"):
        Twin.from_scenario(SCEN / "quickstart_24h.yaml", overrides={"optimiser": _opt(variables=[
            {"target": "controllers.do_reactor5.setpoint", "bounds": [0.8, 3.0], "block": "3h"}])})


def test_noisy_forecast_has_the_stated_error_and_none_at_zero():
    from twin.evaluate import noisy

    tw = Twin.from_scenario(SCEN / "reference_year.yaml")
    sh = tw.shared
    horizon = 200 * 86400
    for seed in (1, 2):
        new = noisy(sh, 0, horizon, 0.2, 6 * 3600, seed)
        t = sh.tables[0].times_s
        sel = t <= horizon
        base = sh.tables[0].values[sel]
        pos = np.all(base > 0, axis=0)  # columns that are never zero (a zero stays zero)
        r = np.log(new.tables[0].values[sel][:, pos] / base[:, pos])
        assert pos[0] and pos[1:].sum() >= 3
        # flow and concentrations: two error processes of the stated spread, correlated in time
        assert np.std(r[:, 0]) == pytest.approx(0.2, rel=0.15)
        assert np.std(r[:, 1]) == pytest.approx(0.2, rel=0.15)
        assert np.allclose(r[:, 1:], r[:, [1]], atol=1e-9)  # one load error keeps the composition
        lag = int(6 * 3600 / np.median(np.diff(t)))  # one correlation time: exp(-1)
        assert np.corrcoef(r[:-lag, 0], r[lag:, 0])[0, 1] == pytest.approx(np.exp(-1), abs=0.12)
        assert np.array_equal(new.tables[0].values[~sel], sh.tables[0].values[~sel])
    zero = noisy(sh, 0, horizon, 0.0, 6 * 3600, 1)
    assert np.array_equal(zero.tables[0].values, sh.tables[0].values)


def test_noisy_forecast_prediction_misses_the_realised_day_but_repeats_for_a_seed():
    kw = {"forecast": "noisy", "forecast_error": {"sd": 0.3, "correlation_time": "3h"}}
    a = _twin(**kw).run_to_end()
    b = _twin(**kw).run_to_end()
    plans = lambda tw: [e["data"]["schedule"] for e in tw.events if e["kind"] == "optimiser_plan"]  # noqa: E731
    assert plans(a) == plans(b)
    real = [e for e in a.events if e["kind"] == "optimiser_realised"]
    assert real and any(abs(e["data"]["error"]["electricity_cost"]) > 1e-6 for e in real)


def test_mixer_speed_is_a_setting_with_its_power_recorded():
    """``equipment.mixers.ZONE.speed_rpm`` is read and set like any target; the recorded power per
    volume follows the power-number law (P ~ N^3), and a fork keeps the changed speed."""
    tw = Twin.from_scenario(REF, overrides={"duration": "2h", "evaluation.end": "2h"})
    assert tw.read("equipment.mixers.reactor1.speed_rpm") == 37.0
    tw.advance("30min")
    _, _, before = tw.series("mixing.reactor1.power_W_m3")
    tw.set("equipment.mixers.reactor1.speed_rpm", 37.0 / 2.0, reason="half speed")
    fork = tw.fork()
    assert fork.read("equipment.mixers.reactor1.speed_rpm") == 18.5
    tw.advance("30min")
    _, _, after = tw.series("mixing.reactor1.power_W_m3")
    assert after[-1, 0] == pytest.approx(before[-1, 0] / 8.0, rel=1e-12)
    assert any(e["kind"] == "set" and e["data"]["target"] == "equipment.mixers.reactor1.speed_rpm" for e in tw.events)
    with pytest.raises(ConfigError, match="no mixers entry for 'reactor3'"):
        tw.set("equipment.mixers.reactor3.speed_rpm", 10.0, reason="x")


def test_a_mixer_below_its_suspension_power_is_a_constraint_not_a_saving():
    """Mixer speed as a decision variable: less speed always costs less, but below the zone's
    minimum power per volume the plan is infeasible. The plan stays at or above the speed of that
    minimum (P ~ N^3) and never above the default; without a minimum the variable is refused."""
    var = [{"target": "equipment.mixers.reactor1.speed_rpm", "bounds": [15.0, 40.0], "block": "6h"}]
    kw = dict(variables=var, limits={}, eqi_tolerance=None, population=10, generations=6, elite=1,
              mutation_sigma_fraction=0.3, mutation_indpb=1.0)
    with pytest.raises(ConfigError, match=r"optimiser\.variables\[0\]\.target.*min_power_w_m3"):
        _twin(**kw)
    tw = Twin.from_scenario(REF, overrides={"optimiser": _opt(**kw), "duration": "12h", "evaluation.end": "12h",
                                            "equipment.mixers.reactor1.min_power_w_m3": 4.0})
    default_w_m3 = 2 * 0.3 * 1000.0 * (37.0 / 60.0) ** 3 * 2.0 ** 5 / 0.9 / 1000.0  # reactor1: 1000 m3
    n_min = 37.0 * (4.0 / default_w_m3) ** (1.0 / 3.0)
    d = tw.optimiser.decide(tw)
    speed = d["schedule"][0]["value"]
    assert n_min - 1e-6 <= speed <= 37.0
    assert d["predicted"]["hours_outside_mixing.reactor1.power_W_m3"] == 0.0
    assert d["predicted"]["energy_cost"] <= d["baseline_default_control"]["energy_cost"]


def test_process_ranges_are_checked_and_heat_is_priced_as_fuel():
    with pytest.raises(ConfigError, match=r"optimiser\.ranges\.sludge_tank\.T_F: not a recorded signal"):
        _twin(ranges={"sludge_tank.T_F": [30, 38]})
    tw = Twin.from_scenario(REF, overrides={
        "optimiser": _opt(ranges={"sludge_tank.T_C": [34.0, 38.0]}, generations=1,
                          variables=[{"target": "controllers.sludge_tank_temperature.setpoint", "bounds": [30.0, 38.0],
                                      "block": "6h"}]),
        "duration": "12h", "evaluation.end": "12h", "equipment.heating.source": "fuel",
        "equipment.heating.fuel_price_per_kwh": 0.05})
    d = tw.optimiser.decide(tw)
    for fig in (d["predicted"], d["baseline_default_control"]):
        assert fig["heat_kWh"] > 0
        assert fig["heat_cost"] == pytest.approx(0.05 * fig["heat_kWh"], rel=1e-12)
        assert fig["energy_cost"] == pytest.approx(fig["electricity_cost"] + fig["heat_cost"], rel=1e-12)
    # a colder tank costs less heat, but a range is hard: the default control keeps it, so the plan must
    assert d["baseline_default_control"]["hours_outside_sludge_tank.T_C"] == 0.0
    assert d["predicted"]["hours_outside_sludge_tank.T_C"] == 0.0


def test_the_reference_runs_the_default_control_beside_the_plant(optimised):
    """The reference twin has run the default control since the first decision on the influent the
    plant lived: with a perfect forecast, the default control's predicted figures of a window are
    its realised ones, and after a plan they differ from the running plant's."""
    plans = [e["data"] for e in optimised.events if e["kind"] == "optimiser_plan"]
    real = [e["data"] for e in optimised.events if e["kind"] == "optimiser_realised"]
    assert real and all("realised_default_control" in r for r in real)
    for p, r in zip(plans, real):
        for k, v in p["baseline_default_control"].items():
            assert r["realised_default_control"][k] == pytest.approx(v, rel=1e-9, abs=1e-9)
    assert optimised.optimiser.reference_twin(optimised, ["power.aeration_kW"]).plan.changes == []
    # the reference twin is saved with the optimiser: a fork carries it and continues it alike
    fork = optimised.fork()
    a = optimised.optimiser.reference_twin(optimised, ["power.aeration_kW"])
    b = fork.optimiser.reference_twin(fork, ["power.aeration_kW"])
    assert a is not b and a.now == b.now


@pytest.fixture(scope="module")
def looked_ahead():
    """Decisions every 6 h on a 6-h horizon with a 3-h lookahead: the first decision's window
    runs to 9 h, the second's is cut at the run's end (12 h)."""
    return _twin(lookahead="3h").run_to_end()


def test_lookahead_scores_past_the_horizon_and_predicts_the_plan_window(looked_ahead):
    """With a lookahead the plan is scored on its horizon and the tail after it under the default
    control's values; the figures it predicts for its own window still equal the realised ones
    (perfect forecast), and the tail stops at the run's end."""
    plans = [e["data"] for e in looked_ahead.events if e["kind"] == "optimiser_plan"]
    real = [e["data"] for e in looked_ahead.events if e["kind"] == "optimiser_realised"]
    assert plans[0]["lookahead_s"] == 3 * 3600 and "lookahead_s" not in plans[1]
    scored = plans[0]["scored"]
    # the scored window is longer: it holds the plan window's energy and more
    assert scored["predicted"]["electricity_kWh"] > plans[0]["predicted"]["electricity_kWh"] > 0
    assert scored["predicted"]["EQI_kg_d"] <= plans[0]["eqi_cap_kg_d"] + 1e-9
    for k in ("SNH", "Ntot", "TSS"):
        assert scored["predicted"][f"hours_above_{k}"] <= scored["baseline_default_control"][f"hours_above_{k}"] + 1e-9
    assert real
    for r in real:
        for k, v in r["predicted"].items():
            assert r["realised"][k] == pytest.approx(v, rel=1e-9, abs=1e-9)
        assert "plan_window" not in r["predicted"]


def test_lookahead_hands_back_to_the_default_control_only_when_no_decision_follows(looked_ahead):
    """The evaluated tail runs the default values; the applied plan carries that hand-back only
    where no later decision replaces the plan before the horizon's end (none here: the next
    decision comes at the horizon's end, and the last plan ends with the run)."""
    defaults = looked_ahead.optimiser.defaults
    assert defaults is not None
    plans = [e["data"] for e in looked_ahead.events if e["kind"] == "optimiser_plan"]
    for d in plans:
        assert all(s["at_s"] < 12 * 3600 for s in d["schedule"])
        assert len(d["schedule"]) == 6  # 3 variables x 2 blocks, no hand-back
    opt = looked_ahead.optimiser
    genes = np.full(6, 1.0)
    tail = opt._changes(genes, 0, True, tail=True)
    assert [(t, v) for t, _tg, v in tail if t == 6 * 3600] == [(6 * 3600, round(x, 6)) for x in defaults]


def test_persistence_forecast_longer_than_its_period_never_reads_the_future():
    """A horizon longer than the persistence period repeats the last period seen: the forecast
    is the same whatever the influent after the decision time is."""
    import copy

    tw = Twin.from_scenario(SCEN / "reference_year.yaml")
    now, h = 3 * 86400, 2 * 86400 + 7200
    fc = persistence(tw.shared, now, h, 86400)
    starts = np.cumsum([0] + [dur for _, dur, _ in tw.shared.phases[:-1]])
    changed = copy.copy(tw.shared)
    changed.tables = []
    for start, table in zip(starts, tw.shared.tables):
        t2 = copy.copy(table)
        t2.values = table.values.copy()
        t2.values[start + table.times_s > now] *= 3.0  # a different future
        changed.tables.append(t2)
    fc2 = persistence(changed, now, h, 86400)
    seen = 0
    for start, a, b in zip(starts, fc.tables, fc2.tables):
        inside = (start + a.times_s >= now) & (start + a.times_s <= now + h)
        seen += int(np.sum(inside))
        assert np.array_equal(a.values[inside], b.values[inside])
    assert seen > 0
    start, table, new = starts[-1], tw.shared.tables[-1], fc.tables[-1]
    t = start + table.times_s
    second = (t > now + 86400) & (t <= now + 2 * 86400)
    assert np.any(second)
    back = np.searchsorted(t, t[second] - 2 * 86400)
    assert np.array_equal(t[back], t[second] - 2 * 86400)
    assert np.array_equal(new.values[second], table.values[back])


def test_limit_margin_holds_plans_to_tightened_limits():
    """With ``limit_margin`` the plan may not have more hours than the default control above each
    limit times (1 - margin): the tightened hours are logged, never fewer than the hours above
    the limit itself, and the plan keeps to the default control's."""
    tw = _twin(limit_margin=0.6, generations=1)
    d = tw.optimiser.decide(tw)
    p, base = d["predicted"], d["baseline_default_control"]
    assert any(base[f"hours_above_{k}_tightened"] > 0 for k in ("SNH", "Ntot", "TSS"))
    for k in ("SNH", "Ntot", "TSS"):
        assert p[f"hours_above_{k}_tightened"] >= p[f"hours_above_{k}"]
        assert p[f"hours_above_{k}_tightened"] <= base[f"hours_above_{k}_tightened"] + 1e-9
    plain = _twin(generations=1)
    assert "hours_above_SNH_tightened" not in plain.optimiser.decide(plain)["predicted"]


def test_fallback_drops_the_plan_for_the_default_control_when_the_signal_rises():
    """``optimiser.fallback``: while a plan is applied a measured signal that rises above its
    threshold drops the rest of the plan and sets the default control's values until the next
    decision. The influent flow of this day rises from about 14,000 to 18,000 m3/d over the
    first plan (0-6 h) and stays above 17,000 through the second (6-12 h): the first plan is
    dropped when the flow passes 17,000; the second, made while the flow already read above,
    is not (the safeguard arms at a reading at or below its threshold). An unknown signal is
    refused before the run."""
    tw = _twin(fallback={"signal": "raw_influent.Q", "above": 17000.0, "hold": "15min"}, generations=1)
    defaults = list(tw.optimiser.defaults)
    tw.run_to_end()
    falls = [e for e in tw.events if e["kind"] == "optimiser_fallback"]
    plans = [e for e in tw.events if e["kind"] == "optimiser_plan"]
    assert len(plans) == 2 and len(falls) == 1
    assert plans[0]["time_s"] + 3 * 3600 < falls[0]["time_s"] < plans[1]["time_s"]
    assert falls[0]["data"]["value"] > 17000.0
    t, _, v = tw.series("control.do_reactor3.setpoint")
    after = (t > falls[0]["time_s"]) & (t < plans[1]["time_s"])
    assert np.any(after) and np.all(v[after, 0] == defaults[0])
    with pytest.raises(ConfigError, match=r"optimiser\.fallback\.signal"):
        _twin(fallback={"signal": "sensor.no_such_analyser", "above": 1.0})


def test_fallback_on_the_influent_flow_against_the_plans_forecast():
    """``above_forecast``: the influent flow is compared with what the plan's forecast said of it
    at that time. With a perfect forecast the flow never exceeds 1.5 times the forecast; at 0.5
    times it does at once, and the logged threshold is half the flow the plant then had. Several
    safeguards may be given; a signal the forecast does not give, or no threshold or two, is
    refused before the run."""
    flow = "raw_influent.Q"
    calm = _twin(fallback=[{"signal": flow, "above_forecast": 1.5, "hold": "0s"},
                           {"signal": "sensor.effluent_ammonia", "above": 100.0}], generations=1).run_to_end()
    assert not [e for e in calm.events if e["kind"] == "optimiser_fallback"]
    storm = _twin(fallback=[{"signal": "sensor.effluent_ammonia", "above": 100.0},
                            {"signal": flow, "above_forecast": 0.5, "hold": "0s", "every": "30min"}],
                  generations=1).run_to_end()
    falls = [e for e in storm.events if e["kind"] == "optimiser_fallback"]
    plans = [e for e in storm.events if e["kind"] == "optimiser_plan"]
    assert len(falls) == len(plans) == 2
    for p, f in zip(plans, falls):
        assert f["time_s"] == p["time_s"] and f["data"]["safeguard"] == 1
        assert f["data"]["above"] == pytest.approx(0.5 * f["data"]["value"], rel=0.1)
    with pytest.raises(ConfigError, match=r"optimiser\.fallback\.signal: above_forecast .* raw_influent\.Q$"):
        _twin(fallback={"signal": "sensor.effluent_ammonia", "above_forecast": 1.3})
    for bad in ({"signal": flow}, {"signal": flow, "above": 1.0, "above_forecast": 1.3}):
        with pytest.raises(ConfigError, match="one threshold"):
            _twin(fallback=bad)


def test_fallback_against_the_plans_own_prediction():
    """``above_plan``: the reading is compared with the chosen plan's simulation of the
    concentration it measures, plus a margin. With a perfect forecast the plant does what the
    plan predicted: the true effluent ammonia read at the recorded samples never exceeds the
    prediction by a millionth; the noisy analyser (noise sd 0.5 g/m3) exceeds it by 0 at once,
    and the logged threshold is the plant's own effluent ammonia then. A flow or a turbidity is
    refused before the run (the plan predicts concentrations)."""
    calm = _twin(fallback=[{"signal": "effluent.SNH", "above_plan": 1e-6, "hold": "0s", "every": "5min"}],
                 generations=1).run_to_end()
    assert not [e for e in calm.events if e["kind"] == "optimiser_fallback"]
    noisy = _twin(fallback=[{"signal": "sensor.effluent_ammonia", "above_plan": 0.0, "hold": "0s",
                             "every": "5min"}], generations=1).run_to_end()
    falls = [e for e in noisy.events if e["kind"] == "optimiser_fallback"]
    plans = [e for e in noisy.events if e["kind"] == "optimiser_plan"]
    assert len(falls) == len(plans) == 2
    t, _, v = noisy.series("effluent.SNH_g_m3")
    for p, f in zip(plans, falls):
        assert p["time_s"] <= f["time_s"] < p["time_s"] + 3600
        assert f["data"]["value"] > f["data"]["above"]
        assert f["data"]["above"] == pytest.approx(float(np.interp(f["time_s"], t, v[:, 0])), rel=1e-9)
    for signal in ("raw_influent.Q", "sensor.effluent_turbidity"):
        with pytest.raises(ConfigError, match=r"optimiser\.fallback\.signal: above_plan"):
            _twin(fallback={"signal": signal, "above_plan": 1.0})
