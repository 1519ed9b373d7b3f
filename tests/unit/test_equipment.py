"""Equipment physics against hand calculations."""

from __future__ import annotations

import math

import pytest

from twin.equipment.aeration import (
    Blower,
    BlowerStation,
    DiffuserGrid,
    compression_power_w,
)
from twin.equipment.pumps import PumpCurve, SystemCurve, operating_point, speed_for_flow

PUMP = PumpCurve(shutoff_head_m=20.0, bep_flow_m3_s=0.1, bep_head_m=15.0, bep_efficiency=0.8,
                 motor_efficiency=0.95, drive_efficiency=0.97)


def test_operating_point_on_the_system_curve_by_hand():
    """H = 20 - 500 Q^2 meets H = 5 + 1000 Q^2 at Q = sqrt(15/1500) = 0.1 m3/s, H = 15 m: the BEP,
    so eta = 0.8 and P_el = rho g Q H / (0.8 x 0.95 x 0.97)."""
    op = operating_point(PUMP, SystemCurve(5.0, 1000.0))
    assert op.flow_m3_s == pytest.approx(0.1)
    assert op.head_m == pytest.approx(15.0)
    assert op.efficiency == pytest.approx(0.8)
    assert op.electrical_w == pytest.approx(998.0 * 9.80665 * 0.1 * 15.0 / (0.8 * 0.95 * 0.97))


@pytest.mark.parametrize("r", [0.6, 0.8, 1.2])
def test_affinity_laws(r):
    """On a pure friction system (no static head) the operating point scales as Q ~ r, H ~ r^2,
    shaft power ~ r^3 (the efficiency is unchanged along the affinity parabola)."""
    system = SystemCurve(0.0, 1000.0)
    base = operating_point(PUMP, system, 1.0)
    op = operating_point(PUMP, system, r)
    assert op.flow_m3_s == pytest.approx(r * base.flow_m3_s)
    assert op.head_m == pytest.approx(r**2 * base.head_m)
    assert op.shaft_w == pytest.approx(r**3 * base.shaft_w)
    assert speed_for_flow(PUMP, system, op.flow_m3_s) == pytest.approx(r)


def test_worn_impeller_costs_more_energy_per_cubic_metre():
    system = SystemCurve(5.0, 1000.0)
    q = 0.08
    new, worn = 1.0, 0.85
    r_new = speed_for_flow(PUMP, system, q, condition=new)
    r_worn = speed_for_flow(PUMP, system, q, condition=worn)
    assert r_worn > r_new
    from twin.equipment.pumps import power

    e_new = power(PUMP, q, system.head_m(q), r_new, new)[3]
    e_worn = power(PUMP, q, system.head_m(q), r_worn, worn)[3]
    assert e_worn > e_new


def test_parallel_pumps_share_the_flow():
    system = SystemCurve(5.0, 1000.0)
    two = operating_point(PUMP, system, 1.0, n_parallel=2)
    # each pump at Q/2 on the common head: 20 - 500 (Q/2)^2 = 5 + 1000 Q^2
    assert two.flow_m3_s == pytest.approx(math.sqrt(15.0 / (125.0 + 1000.0)))


def test_blower_power_formula_by_hand():
    """Isentropic compression of 1 Nm3/s (20 degC, 1 atm) from 1 to 1.5 atm at 75 % efficiency:
    m = 1.2041 kg/s, cp = 1004.7 J/(kg K): P = m cp T1 ((1.5)^(0.4/1.4) - 1) / 0.75."""
    m = 101325.0 * 0.028965 / (8.314462618 * 293.15)
    cp = 1.4 * 8.314462618 / (0.4 * 0.028965)
    expected = m * cp * 293.15 * (1.5 ** (0.4 / 1.4) - 1.0) / 0.75
    assert compression_power_w(86400.0, 101325.0, 1.5 * 101325.0, 293.15, 0.75) == pytest.approx(expected)
    assert m == pytest.approx(1.2041, rel=1e-3) and cp == pytest.approx(1004.7, rel=1e-3)


def test_blower_station_stages_within_turndown():
    st = BlowerStation(Blower(60000.0, 0.75, 25000.0, 75000.0), n_installed=3, header_loss_pa_at_design=0.0)
    _, n, _ = st.power_w(140000.0, 50000.0)
    assert n == 2  # two blowers at 70 000 each, within their 75 000 maximum
    _, n, _ = st.power_w(10000.0, 50000.0)
    assert n == 1


def test_airflow_to_kla_at_standard_conditions_by_hand():
    """At the reference flux the SOTE is 6 %/m x 4 m = 24 %; SOTR = SOTE Q rho 0.2315 and
    KLa20 = SOTR / (V C*s20) with C*s20 = 9.09 g/m3 (clean water, 20 degC, alpha = F = 1)."""
    g = DiffuserGrid(volume_m3=1333.0, depth_m=4.0, n_diffusers=600, sote_per_m=0.06, q_ref_nm3_h=2.0)
    q = 600 * 2.0 * 24.0  # Nm3/d at the reference flux
    rho = 101325.0 * 0.028965 / (8.314462618 * 293.15)
    expected = 0.24 * q * rho * 0.2315 * 1000.0 / (1333.0 * 9.09)
    assert g.kla_per_d(q, 1.0, 20.0) == pytest.approx(expected)
    assert g.airflow_for_kla(expected, 1.0, 20.0) == pytest.approx(q)
    # fouling and alpha scale the transfer; temperature by theta = 1.024 per degree
    assert g.kla_per_d(q, 0.7, 20.0) == pytest.approx(0.7 * expected)
    assert g.kla_per_d(q, 1.0, 15.0) == pytest.approx(expected * 1.024 ** -5)


def test_heated_tank_steady_balance_by_hand():
    """385 m3/d heated from 15 to 35 degC in a 1000 m3 tank losing 1500 W/K to 10 degC air:
    the heat that holds 35 degC is rho cp Q dT + UA (T - Tamb), and with it dT/dt = 0."""
    import numpy as np

    from twin.units.heated_tank import HeatedTank, HeatedTankParams, tank_derivatives

    unit = HeatedTank("tank", HeatedTankParams(volume_m3=1000.0, loss_ua_w_k=1500.0), {})
    heat = 998.0 * 4186.0 * 385.0 / 86400.0 * 20.0 + 1500.0 * 25.0
    x = np.full(14, 5.0)
    x[0] = 35.0
    Q = np.array([385.0, 385.0])
    C = np.full((2, 13), 5.0)
    dx = np.empty(14)
    tank_derivatives(0.0, x, Q, C, np.array([0]), np.array([1]), np.array([heat, 15.0, 10.0]), unit.param_array(), dx)
    assert dx[0] == pytest.approx(0.0, abs=1e-9)
    tank_derivatives(0.0, x, Q, C, np.array([0]), np.array([1]), np.array([heat + 1e5, 15.0, 10.0]),
                     unit.param_array(), dx)
    # 100 kW more heats 1000 m3 of water at 100e3 / (rho cp V) K/s
    assert dx[0] == pytest.approx(1e5 * 86400.0 / (998.0 * 4186.0 * 1000.0))


# -- air distribution: valves, blower curve, header ----------------------------------------------
def test_equal_percentage_valve_sizing_and_characteristic():
    from twin.equipment.aeration import ControlValve

    v = ControlValve.sized(50000.0, 3000.0, design_opening=0.7, rangeability=50.0)
    assert v.flow(0.7, 3000.0) == pytest.approx(50000.0)
    # equal percentage: each 10 % of travel multiplies the flow by R^0.1
    assert v.flow(0.8, 3000.0) / v.flow(0.7, 3000.0) == pytest.approx(50.0 ** 0.1)
    # orifice law: flow ~ sqrt(dp)
    assert v.flow(0.7, 12000.0) == pytest.approx(2 * 50000.0)
    assert v.opening_for(v.flow(0.43, 2500.0), 2500.0) == pytest.approx(0.43)
    assert v.opening_for(2 * v.max_flow(2500.0), 2500.0) == 1.0


def test_blower_curve_follows_the_affinity_laws():
    from twin.equipment.aeration import BlowerCurve

    c = BlowerCurve(60000.0, 50000.0, shutoff_ratio=1.2)
    assert c.rise_pa(60000.0, 1.0) == pytest.approx(50000.0)
    assert c.rise_pa(0.0, 1.0) == pytest.approx(60000.0)
    for r in (0.7, 0.9, 1.05):  # flow ~ speed, pressure ~ speed^2 along a similarity parabola
        assert c.rise_pa(40000.0 * r, r) == pytest.approx(r**2 * c.rise_pa(40000.0, 1.0))


def test_air_system_balances_blower_and_zone_flows():
    from twin.equipment.aeration import BlowerCurve, ControlValve, solve_air_system, speed_for_header_pressure

    c = BlowerCurve(60000.0, 50000.0)
    valves = [ControlValve.sized(54000.0, 3000.0)] * 2 + [ControlValve.sized(58000.0, 3000.0)]
    back = [43148.0, 43148.0, 40000.0]
    demand = [50000.0, 40000.0, 20000.0]
    hk = 2000.0 / 180000.0**2
    op = solve_air_system(c, 2, hk, valves, back, demand, 0.98)
    # every zone gets its demand, and the blowers deliver the total at the header pressure
    assert op.flows_nm3_d == pytest.approx(demand)
    assert c.rise_pa(op.total_nm3_d / 2, 0.98) == pytest.approx(op.header_pa + hk * op.total_nm3_d**2, rel=1e-9)
    for v, b, q, th in zip(valves, back, op.flows_nm3_d, op.openings):
        assert v.flow(th, op.header_pa - b) == pytest.approx(q, rel=1e-9)
    # too slow: the header cannot feed the deep zones; their valves open fully and they get less
    slow = solve_air_system(c, 2, hk, valves, back, demand, 0.88)
    assert slow.header_pa < op.header_pa
    short = [i for i in range(3) if slow.flows_nm3_d[i] < demand[i] * 0.999]
    assert short and all(slow.openings[i] == 1.0 for i in short)
    for i in short:
        assert slow.flows_nm3_d[i] == pytest.approx(valves[i].max_flow(slow.header_pa - back[i]))
    assert c.rise_pa(slow.total_nm3_d / 2, 0.88) == pytest.approx(slow.header_pa + hk * slow.total_nm3_d**2, rel=1e-9)
    # and the speed that holds a header pressure
    r = speed_for_header_pressure(c, 2, hk, valves, back, demand, 47000.0)
    assert solve_air_system(c, 2, hk, valves, back, demand, r).header_pa == pytest.approx(47000.0, rel=1e-6)


def test_heat_from_fuel_is_metered_apart_from_electricity():
    """Heating drawn from fuel is heat, priced at the fuel price, not at the electricity tariff;
    drawn from electricity it is part of the electricity bought. Hand calculation: 2 h at
    100 kW aeration and 50 kW heating, tariff 0.2 per kWh, fuel 0.05 per kWh."""
    import numpy as np

    from analysis.energy import Tariff, energy_kpis

    times = np.array([0, 3600, 7200])
    cols = ["power.aeration_kW", "power.heating_kW"]
    vals = np.array([[100.0, 50.0]] * 3)
    tariff = Tariff(kind="flat", price_per_kwh=0.2)
    fuel = energy_kpis(times, cols, vals, 0, 7200, tariff, 0.4, 100.0,
                       {"source": "fuel", "price_per_kwh": 0.05, "co2_kg_per_kwh": 0.2})
    assert fuel["electricity"]["kWh"] == pytest.approx(200.0)
    assert fuel["electricity"]["cost"] == pytest.approx(40.0)
    assert fuel["electricity"]["kWh_per_m3"] == pytest.approx(2.0)
    assert fuel["heat"]["kWh"] == pytest.approx(100.0) and fuel["heat"]["cost"] == pytest.approx(5.0)
    assert fuel["total_cost"] == pytest.approx(45.0)
    assert fuel["co2_kg"] == pytest.approx(200 * 0.4 + 100 * 0.2)
    elec = energy_kpis(times, cols, vals, 0, 7200, tariff, 0.4, 100.0)
    assert elec["electricity"]["kWh"] == pytest.approx(300.0) and elec["electricity"]["includes_heating"]
    assert elec["total_cost"] == pytest.approx(60.0)


def test_cost_change_splits_into_volume_and_timing():
    """Hand calculation: A uses 10 kWh at 0.1 and 10 kWh at 0.3 (cost 4, mean price 0.2); B uses
    4 at 0.1 and 12 at 0.3 (cost 4.0): volume (16 - 20) x 0.2 = -0.8, timing +0.8 (B pays a
    higher mean price, 0.25); the parts add up to the change (0)."""
    from analysis.energy import cost_change_split

    d = cost_change_split([10, 10], [4, 12], [0.1, 0.3])
    assert d["change"] == pytest.approx(0.0, abs=1e-12)
    assert d["volume"] == pytest.approx(-0.8)
    assert d["timing"] == pytest.approx(0.8)
    assert d["mean_price_b"] == pytest.approx(0.25)
