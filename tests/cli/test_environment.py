"""Weather at the plant: humid air costs blower power, thin air lowers oxygen saturation (more
air for the same DO), cold air raises the heated tank's losses."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from twin.environment import (
    humidity_ratio,
    moist_air_power_factor,
    saturation_vapour_pressure_pa,
    so_sat_pressure_factor,
)
from twin.errors import ConfigError
from twin.run import run_scenario
from twin.scenario import validate_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_psychrometrics_against_tables():
    # saturation vapour pressure of water (steam tables): 611.2 Pa at 0 degC, 2339 Pa at 20 degC,
    # 4246 Pa at 30 degC
    assert saturation_vapour_pressure_pa(0.0) == pytest.approx(611.2, rel=2e-3)
    assert saturation_vapour_pressure_pa(20.0) == pytest.approx(2339.0, rel=3e-3)
    assert saturation_vapour_pressure_pa(30.0) == pytest.approx(4246.0, rel=3e-3)
    # psychrometric chart: 20 degC, 50 % RH at sea level -> 7.3 g/kg dry air
    assert humidity_ratio(20.0, 0.5, 101325.0) == pytest.approx(0.0073, abs=1e-4)
    assert so_sat_pressure_factor(101325.0, 15.0) == pytest.approx(1.0)
    # 1000 m (standard atmosphere 89 875 Pa): (P - pv) / (P0 - pv) at 15 degC (pv 1705 Pa)
    assert so_sat_pressure_factor(89875.0, 15.0) == pytest.approx((89875 - 1705) / (101325 - 1705), rel=1e-3)


def _run(environment: dict, hours: int = 6):
    s = yaml.safe_load((ROOT / "scenarios" / "reference_24h.yaml").read_text())
    s.update(duration=f"{hours}h", evaluation={"kind": "bsm1", "start": "0h", "end": f"{hours}h"},
             environment=environment, outputs={"sample_interval": "15min", "report": False})
    return run_scenario(validate_scenario(s, "weather"), ROOT / "scenarios")


@pytest.fixture(scope="module")
def runs():
    base = {"kind": "constant", "air_temperature_c": 20.0, "relative_humidity": 0.05, "pressure_pa": 101325.0}
    return {"base": _run(base), "humid": _run({**base, "relative_humidity": 0.95}),
            "altitude": _run({**base, "pressure_pa": 89875.0}), "cold": _run({**base, "air_temperature_c": 0.0})}


def _kwh(r, area):
    return r.kpis["energy"]["by_area"][area]["kWh"]


def test_humid_air_costs_blower_power_by_the_vapour_it_carries(runs):
    base, humid = runs["base"], runs["humid"]
    # the process does not see humidity: same airflows, power scaled by the moist-air factor
    assert np.array_equal(base.values[:, base.columns.index("aeration.airflow_Nm3_d")],
                          humid.values[:, humid.columns.index("aeration.airflow_Nm3_d")])
    ratio = moist_air_power_factor(20.0, 0.95, 101325.0) / moist_air_power_factor(20.0, 0.05, 101325.0)
    assert _kwh(humid, "aeration") / _kwh(base, "aeration") == pytest.approx(ratio, rel=1e-9)


def test_thin_air_lowers_oxygen_saturation_and_needs_more_air(runs):
    base, alt = runs["base"], runs["altitude"]
    col = alt.columns.index("reactor5.so_sat_pressure_factor")
    # at the water temperature (the influent's; it moved a little since the last hourly weather sample)
    water = alt.values[-1, alt.columns.index("reactor5.temperature_C")]
    assert alt.values[-1, col] == pytest.approx(so_sat_pressure_factor(89875.0, water), rel=1e-5)
    # the DO loops hold 2 g/m3 against a lower saturation: a higher KLa, more air
    kla = base.columns.index("reactor4.kla_per_d")
    assert np.mean(alt.values[4:, kla]) > 1.05 * np.mean(base.values[4:, kla])
    air = base.columns.index("aeration.airflow_Nm3_d")
    assert np.mean(alt.values[4:, air]) > np.mean(base.values[4:, air])
    assert _kwh(alt, "aeration") > _kwh(base, "aeration")


def test_cold_air_raises_the_heated_tank_losses(runs):
    """The tank's ambient input follows the weather; colder air, more heat for the same 35 degC
    (the steady balance of the tank itself is checked in the unit tests)."""
    cold = runs["cold"]
    assert np.all(cold.values[:, cold.columns.index("sludge_tank.ambient_temperature_C")] == 0.0)
    assert _kwh(cold, "heating") > _kwh(runs["base"], "heating")


def test_weather_file_is_read_and_checked(tmp_path):
    f = tmp_path / "weather.csv"
    f.write_text("hour,T,rh,p\n0,10,0.8,100000\n3,12,0.7,100100\n7,14,0.6,100200\n")
    env = {"kind": "file", "file": str(f), "time_column": "hour",
           "columns": {"air_temperature_C": "T", "relative_humidity": "rh", "pressure_Pa": "p"}}
    r = _run(env, hours=6)
    amb = r.values[:, r.columns.index("sludge_tank.ambient_temperature_C")]
    t = r.times_s
    assert amb[t == 0][0] == 10.0 and amb[t == 4 * 3600][0] == 12.0
    with pytest.raises(ConfigError, match="covers 0.291667 d but the run lasts 0.5 d"):
        _run(env, hours=12)
    f.write_text("hour,T,rh,p\n0,10,80,100000\n8,12,70,100100\n")
    with pytest.raises(ConfigError, match="relative_humidity must be a fraction"):
        _run(env, hours=6)
    assert math.isfinite(_kwh(r, "heating"))


def test_missing_weather_file_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"environment.file: .*nope.csv: file not found"):
        _run({"kind": "file", "file": str(tmp_path / "nope.csv")})
