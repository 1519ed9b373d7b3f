"""The reference plant in short runs: its loops and machines work together, and when the lift
station cannot keep up the excess bypasses treatment and shows in the effluent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from twin.run import run_scenario
from twin.scenario import validate_scenario

ROOT = Path(__file__).resolve().parents[2]


def _reference(**changes) -> dict:
    s = yaml.safe_load((ROOT / "scenarios" / "reference_24h.yaml").read_text())
    s.update(duration="6h", evaluation={"kind": "bsm1", "start": "0h", "end": "6h"})
    for key, value in changes.items():
        s[key] = value
    return s


def _reference_with_fleet():
    """The six-hour reference plant prepared with its equipment and the reference fleet (run to
    failure): (prepared run, equipment, maintenance agent)."""
    from twin.run import build_equipment, build_fleet, prepare

    s = _reference()
    s["fleet"] = {"file": "fleets/reference.yaml", "policies": {"default": {"kind": "rtf"}}}
    scen = validate_scenario(s, "ref6h")
    st = prepare(scen, ROOT / "scenarios")
    eq = build_equipment(st.env, st.plant, st.cp, scen.equipment)
    return st, eq, build_fleet(st.env, scen.fleet, ROOT / "scenarios", st.plant, st.cp, eq)


@pytest.fixture(scope="module")
def storm():
    """Six hours of 60 000 m3/d (about three times the dry-weather flow) after a dry start,
    with one lift pump available out of four, against the full station."""
    def run(n_pumps):
        s = _reference(influent={"kind": "constant", "values": {"Q": 60000.0}})
        s["equipment"]["pumps"]["lift_station"]["n_parallel"] = n_pumps
        return run_scenario(validate_scenario(s, "storm"), ROOT / "scenarios").kpis
    return run(4), run(1)


def test_all_loops_and_areas_report():
    k = run_scenario(validate_scenario(_reference(), "ref6h"), ROOT / "scenarios").kpis
    assert set(k["control"]) == {"do_reactor3", "do_reactor4", "do_reactor5", "nitrate_reactor2",
                                 "wet_well_level", "mlss_reactor5", "sludge_tank_temperature", "header_pressure"}
    assert k["energy"]["by_area"]["pumping"]["kWh"] > 0 and k["energy"]["by_area"]["aeration"]["kWh"] > 0
    assert k["control"]["do_reactor3"]["max_abs_error"] < 0.5
    assert k["control"]["sludge_tank_temperature"]["max_abs_error"] < 1.0
    assert k["energy"]["by_area"]["heating"]["kWh"] > 0
    # the header-pressure loop holds its setpoint (47 kPa) through blower staging: mean error
    # (IAE over the 0.25 d window) under 1 kPa
    assert k["control"]["header_pressure"]["IAE"] / 0.25 < 1.0


def test_higher_header_pressure_costs_blower_energy_at_the_same_do():
    """Holding the header 8 kPa higher than needed throttles the zone valves: the zones get the
    same air (DO held alike), the blowers compress it to a higher pressure and use more energy.
    Expected ratio from the adiabatic power formula: ((p2'/p1)^0.286 - 1) / ((p2/p1)^0.286 - 1)."""
    def run(setpoint):
        s = _reference()
        s["controllers"]["header_pressure"]["setpoint"] = setpoint
        return run_scenario(validate_scenario(s, "ref6h"), ROOT / "scenarios").kpis
    low, high = run(47.0), run(55.0)
    e_low = low["energy"]["by_area"]["aeration"]["kWh"]
    e_high = high["energy"]["by_area"]["aeration"]["kWh"]
    for k in (low, high):
        assert k["control"]["do_reactor3"]["max_abs_error"] < 0.5
    assert abs(high["control"]["do_reactor5"]["IAE"] - low["control"]["do_reactor5"]["IAE"]) < 0.01
    p1 = 101325.0
    # discharge = atmosphere + header + station losses (about 1 kPa at these flows)
    expected = (((p1 + 56e3) / p1) ** (0.4 / 1.4) - 1) / (((p1 + 48e3) / p1) ** (0.4 / 1.4) - 1)
    assert e_high / e_low == pytest.approx(expected, rel=0.03)


def test_insufficient_lift_capacity_bypasses_treatment(storm):
    full, one = storm
    assert one["hydraulics"]["bypass_m3"] > 1000.0 and one["hydraulics"]["bypass_hours"] > 1.0
    # the full station only spills while its level loop catches up with the step in inflow
    assert full["hydraulics"]["bypass_m3"] < 0.05 * one["hydraulics"]["bypass_m3"]
    # untreated sewage in the outfall: effluent quality worsens
    assert one["bsm1"]["effluent_avg"]["TSS"] > full["bsm1"]["effluent_avg"]["TSS"]
    assert one["bsm1"]["effluent_avg"]["CODt"] > full["bsm1"]["effluent_avg"]["CODt"]
    assert one["bsm1"]["EQI"] > full["bsm1"]["EQI"]


def test_failed_lift_pumps_during_rain_cause_bypass_and_violations():
    """Same seed, same storm flow (45 000 m3/d for six hours): with the fleet's lift pumps LP-01
    and LP-02 tripping an hour in, the station cannot keep up, the wet well spills, and the
    outfall breaks limits that the healthy station keeps."""
    def run(fail):
        s = _reference(influent={"kind": "constant", "values": {"Q": 45000.0}})
        s["fleet"] = {"file": "fleets/reference.yaml", "policies": {"default": {"kind": "rtf"}}}
        if fail:
            s["events"] = [{"at": "1h", "fail": ["LP-01", "LP-02"], "note": "lift pumps trip"}]
        return run_scenario(validate_scenario(s, "storm"), ROOT / "scenarios").kpis
    healthy, failed = run(False), run(True)
    assert healthy["hydraulics"]["bypass_m3"] < 0.05 * failed["hydraulics"]["bypass_m3"]
    assert failed["hydraulics"]["bypass_m3"] > 500.0
    v_h, v_f = healthy["bsm1"]["violations"], failed["bsm1"]["violations"]
    assert sum(v["pct_time"] for v in v_f.values()) > sum(v["pct_time"] for v in v_h.values())
    assert failed["maintenance"]["by_type"]["centrifugal_pump"]["failures"] >= 2


def test_standby_lift_pumps_do_not_age():
    """At dry-weather flow the lift station runs one or two pumps: the running ones age at their
    speed, the standby ones keep their age (the fleet's load follows the pump station)."""
    s = _reference()
    s["fleet"] = {"file": "fleets/reference.yaml", "policies": {"default": {"kind": "rtf"}}}
    res = run_scenario(validate_scenario(s, "ref6h"), ROOT / "scenarios")
    fleet = res.fleet
    age = {a.id: float(fleet.s.age_h[fleet.rows_of(i)].max()) for i, a in enumerate(fleet.assets)}
    assert age["LP-01"] > 1.0
    assert age["LP-04"] == 0.0
    assert age["V-01"] > 1.0  # assets not tied to a machine of the process age at the fleet's load
    # blowers: two run at dry-weather flow, the third stands by
    assert age["B-01"] > 1.0 and age["B-03"] == 0.0
    # a zone's grids age at its airflow over the valve design flow, sampled at each fleet step
    c = res.columns
    hourly = res.values[np.isin(res.times_s, np.arange(6) * 3600), c.index("aeration.reactor3.airflow_Nm3_d")]
    grid_rows = [r for r in fleet.rows_of(fleet.index["AG3-01"])]
    assert np.allclose(fleet.s.age_h[grid_rows], np.sum(hourly / 53700.0), rtol=1e-9)


def _fleet_run(fail):
    s = _reference()
    s["fleet"] = {"file": "fleets/reference.yaml", "policies": {"default": {"kind": "rtf"}}}
    if fail:
        s["events"] = [{"at": "1h", "fail": fail, "note": "what-if"}]
    return run_scenario(validate_scenario(s, "ref6h"), ROOT / "scenarios")


def test_machines_follow_the_fleet():
    """Worn impellers lower their station's condition (mean of exp(-c d) over the pumps in
    service, d the impeller defect's damage), failed blowers leave the station, failed air
    valves take their share of the zone's valve capacity. Wear is the damage the sensors show:
    effective age without a defect changes nothing, and a renewal restores the condition."""
    import math

    import numpy as np


    st, eq, agent = _reference_with_fleet()
    fleet = agent.fleet
    base = eq.spec.pumps["internal_recycle"].condition
    i = fleet.index["IRP-01"]
    rows = [r for r in fleet.rows_of(i) if fleet.s.row_mode[r][1] == "impeller_wear"]
    fleet.s.age_h[rows] = 0.5 * fleet.s.scale_h[rows]  # old, but no defect yet: no wear
    agent.on_up(i)  # any change of a coupled machine refreshes the station
    assert eq.pump_condition["internal_recycle"] == pytest.approx(base)
    fleet.s.damage[rows] = 0.5  # a defect half way to its failure size
    agent.on_up(i)
    assert eq.pump_condition["internal_recycle"] == pytest.approx(base * (math.exp(-0.1 * 0.5) + 1.0) / 2)
    fleet.renew_asset(i)
    agent.on_up(i)
    assert eq.pump_condition["internal_recycle"] == pytest.approx(base)
    agent.fail(int(fleet.rows_of(fleet.index["B-01"])[0]))
    assert eq.blowers_out_of_service == 1
    agent.fail(int(fleet.rows_of(fleet.index["AV3-01"])[0]))
    assert eq.valve_capacity["reactor3"] == pytest.approx(0.75)
    assert eq.valve_capacity["reactor4"] == 1.0
    assert np.isclose(eq.blower_condition, 1.0)
    # a blower losing efficiency: the station's condition is the mean over the blowers in service
    b2 = fleet.index["B-02"]
    fleet.s.damage[[r for r in fleet.rows_of(b2) if fleet.s.row_mode[r][1] == "efficiency_loss"]] = 0.8
    agent.on_up(b2)
    assert eq.blower_condition == pytest.approx((math.exp(-0.1 * 0.8) + 1.0) / 2)
    # fouled heat exchangers: the UA in service is the mean of exp(-c d_fouling); a failed one adds 0
    hx = [fleet.index[f"HX-0{k}"] for k in range(1, 9)]
    r = [r for r in fleet.rows_of(hx[0]) if fleet.s.row_mode[r][1] == "fouling"]
    fleet.s.age_h[r] = fleet.s.scale_h[r]  # age alone: no fouling
    fleet.s.damage[r] = 1.0  # fouled to its failure size
    agent.fail(int(fleet.rows_of(hx[1])[0]))
    assert eq.exchanger_condition == pytest.approx((math.exp(-0.3) + 0 + 6) / 8)
    agent.fail(int(fleet.rows_of(fleet.index["MX2-01"])[0]))
    assert eq.mixers_out_of_service == {"reactor1": 0, "reactor2": 1}


def test_the_fleet_coupling_declares_which_assets_act_on_which_machines():
    """The coupling names, per pump station, zone and machine group, the assets that act on it;
    assets outside the process model (auxiliary pumps, isolation valves) couple to nothing, and
    applying an unchanged fleet leaves the machines as designed."""

    st, eq, agent = _reference_with_fleet()
    c, fleet = agent.coupling, agent.fleet

    def ids(idx):
        return sorted(fleet.assets[i].id for i in idx)

    assert ids(c.stations["lift_station"]) == ["LP-01", "LP-02", "LP-03", "LP-04"]
    assert ids(c.blowers) == ["B-01", "B-02", "B-03"]
    assert ids(c.valves["reactor3"]) == ["AV3-01", "AV3-02", "AV3-03", "AV3-04"]
    assert ids(c.mixers["reactor2"]) == ["MX2-01", "MX2-02", "MX2-03"]
    assert len(c.exchangers) == 8 and len(c.grids["reactor5"]) == 3
    assert fleet.index["AUXP-01"] not in c.process_assets and fleet.index["V-01"] not in c.process_assets
    assert agent.process_assets == c.process_assets
    c.apply()
    assert eq.blowers_out_of_service == 0 and eq.valve_capacity["reactor3"] == 1.0
    assert eq.mixers_out_of_service == {"reactor1": 0, "reactor2": 0}


def test_fouled_grids_lower_oxygen_transfer_by_their_damage():
    """A zone's oxygen transfer is the mean over its grids of exp(-c d_fouling), refreshed every
    fleet step: old grids without a defect transfer as designed; a fouling defect lowers it."""
    import math

    from twin.run import build_equipment, build_fleet, prepare

    s = _reference()
    s["fleet"] = {"file": "fleets/reference.yaml", "policies": {"default": {"kind": "rtf"}}}
    scen = validate_scenario(s, "ref6h")
    st = prepare(scen, ROOT / "scenarios")
    eq = build_equipment(st.env, st.plant, st.cp, scen.equipment)
    fleet = build_fleet(st.env, scen.fleet, ROOT / "scenarios", st.plant, st.cp, eq).fleet
    grids = [fleet.index[a.id] for a in fleet.assets if a.function == "aeration_grid:reactor3"]
    fouling = [r for i in grids for r in fleet.rows_of(i) if fleet.s.row_mode[r][1] == "membrane_fouling"]
    assert len(grids) >= 2 and len(fouling) == len(grids)
    fleet.s.age_h[fouling] = fleet.s.scale_h[fouling]  # old grids, no defect
    st.env.run(until=1)
    assert eq.zone_fouling["reactor3"] == pytest.approx(1.0)
    fleet.s.age_h[fouling] = 0.0
    r = fouling[0]  # a fouling defect at 90 % of its failure size, held there (no growth)
    fleet.s.initiated[r], fleet.s.damage[r], fleet.s.rate_now[r] = True, 0.9, 0.0
    st.env.run(until=3600 + 1)  # the next fleet step
    assert eq.zone_fouling["reactor3"] == pytest.approx((math.exp(-0.3 * 0.9) + len(grids) - 1) / len(grids))
    assert eq.zone_fouling["reactor4"] == pytest.approx(1.0)


def test_mixer_power_follows_the_power_number_law():
    """P = Np rho N^3 D^5 / motor efficiency for each running mixer of the unaerated zones
    (Metcalf & Eddy 2014, eq. 5-14): the metered mixing energy over 6 h equals it."""
    k = run_scenario(validate_scenario(_reference(), "ref6h"), ROOT / "scenarios").kpis
    def p_w(n, rpm, d):
        return n * 0.3 * 998.0 * (rpm / 60.0) ** 3 * d**5 / 0.9
    expected_kwh = (p_w(2, 37, 2.0) + p_w(3, 32, 2.0)) / 1000.0 * 6.0
    assert k["energy"]["by_area"]["mixing"]["kWh"] == pytest.approx(expected_kwh, rel=1e-9)


def test_a_small_heat_exchanger_limits_the_sludge_tank_heating():
    """With UA 5 kW/K the exchanger can pass at most 5000 (70 - T) W, less than the tank needs:
    the heat input is held at exactly that cap, and the tank cools below its 35 degC setpoint."""
    s = _reference()
    s["equipment"]["heating"]["exchanger"]["ua_w_k"] = 5000.0
    r = run_scenario(validate_scenario(s, "ref6h"), ROOT / "scenarios")
    c = r.columns
    heat = r.values[1:, c.index("sludge_tank.heat_W")]
    t_tank = r.values[1:, c.index("control.sludge_tank_temperature.measurement")]  # no sensor model: true value
    np.testing.assert_allclose(heat, 5000.0 * (70.0 - t_tank), rtol=1e-9)
    assert t_tank[-1] < 35.0 - 0.1
    assert r.kpis["energy"]["by_area"]["heating"]["kWh"] < 6 * 5000 * (70 - 30) / 0.9 / 1000


def test_blower_station_failure_stops_aeration_and_shows_in_the_effluent():
    """The three aeration blowers trip at 1 h: no air (the header loses pressure), DO falls to
    zero, ammonia breaks through; the consequences are counted against the outage."""
    healthy, failed = _fleet_run([]), _fleet_run(["B-01", "B-02", "B-03"])
    c = failed.columns
    so5 = failed.values[:, c.index("reactor5_out.SO_g_m3")]
    assert so5[-1] < 0.05 and healthy.values[-1, c.index("reactor5_out.SO_g_m3")] > 1.5
    assert np.all(failed.values[failed.times_s >= 3600 + 900, c.index("aeration.airflow_Nm3_d")] == 0.0)
    kh, kf = healthy.kpis, failed.kpis
    assert kf["bsm1"]["effluent_avg"]["SNH"] > 2 * kh["bsm1"]["effluent_avg"]["SNH"]
    pc = kf["maintenance"]["process_consequences"]
    assert pc["outage_hours"] > 4.0
    assert pc["violation_hours"] > 0 and pc["violation_hours_during_outages"] == pc["violation_hours"]
    assert kh["maintenance"]["process_consequences"]["violation_hours"] == 0.0


def test_equipment_decisions_are_events_once_per_change():
    """A storm on a station of two lift pumps: the second pump starts, then both run at their
    maximum speed and hold the level loop's output; each is one event with its reason, not one
    per sample (the equipment samples every minute)."""
    s = _reference(influent={"kind": "constant", "values": {"Q": 60000.0}}, duration="3h",
                   evaluation={"kind": "bsm1", "start": "0h", "end": "3h"})
    s["equipment"]["pumps"]["lift_station"]["n_parallel"] = 2
    r = run_scenario(validate_scenario(s, "storm2"), ROOT / "scenarios")
    ev = [e for e in (json.loads(line) for line in r.events.to_jsonl().splitlines()) if e["kind"] == "equipment"]
    pumps = [e for e in ev if e["source"] == "pump.lift_station"]
    assert pumps and pumps[0]["data"]["running"] == 2 and "could not deliver" in pumps[0]["message"]
    held = [e for e in ev if e["source"] == "wet_well.Q_pump_cmd_m3_d" and e["data"]["clamped"]]
    assert held and "maximum speed" in held[0]["data"]["reason"]
    assert len(ev) < 20
    for a, b in zip(ev, ev[1:]):
        assert (a["source"], a["message"]) != (b["source"], b["message"]) or a["time_s"] != b["time_s"]
