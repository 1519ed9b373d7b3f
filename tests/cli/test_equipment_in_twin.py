"""Equipment inside the twin: consistency with the plain plant, fouling and wear couplings,
energy totals equal to the integral of the recorded power."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from twin.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _scenario(tmp_path, name, equipment=True, inputs=None, pump_condition=1.0) -> Path:
    """Twelve hours of synthetic influent under the BSM1 default control (ideal sensors),
    with the machines of the bundled equipment scenario."""
    eq = yaml.safe_load((ROOT / "scenarios" / "bsm1_equipment_dry.yaml").read_text())["equipment"]
    eq["tariff"] = {"kind": "tou", "bands": [{"from_h": 0, "to_h": 7, "price_per_kwh": 0.1},
                                             {"from_h": 7, "to_h": 24, "price_per_kwh": 0.25}]}
    eq["pumps"]["internal_recycle"]["condition"] = pump_condition
    s = yaml.safe_load((ROOT / "scenarios" / "quickstart_24h.yaml").read_text())
    s.update(name=name, duration="12h", evaluation={"kind": "bsm1", "start": "0h", "end": "12h"})
    s["inputs"].update(inputs or {})
    if equipment:
        s["equipment"] = eq
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(s))
    return p


def _run(tmp_path, path) -> Path:
    out = tmp_path / (path.stem + "_out")
    assert main(["run", str(path), "--out", str(out), "--quiet", "--no-report"]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eq")
    fouled = {"reactor5.oxygen_transfer_factor": 0.8}  # the DO-controlled zone
    return {
        "plain": _run(tmp, _scenario(tmp, "plain", equipment=False)),
        "new": _run(tmp, _scenario(tmp, "new")),
        "fouled": _run(tmp, _scenario(tmp, "fouled", inputs=fouled)),
        "worn": _run(tmp, _scenario(tmp, "worn", pump_condition=0.85)),
    }


def _kpis(folder: Path) -> dict:
    return json.loads((folder / "kpis.json").read_text())


def test_new_equipment_leaves_the_process_unchanged(runs):
    """The equipment turns demands into power; with new diffusers and pumps within range the
    process results are those of the plain plant."""
    a, b = _kpis(runs["plain"])["bsm1"], _kpis(runs["new"])["bsm1"]
    for key in ("EQI", "AE", "PE", "SP"):
        assert b[key] == pytest.approx(a[key], rel=1e-9)


def test_fouled_diffusers_raise_blower_energy_at_the_same_setpoint(runs):
    new, fouled = _kpis(runs["new"]), _kpis(runs["fouled"])
    assert fouled["energy"]["by_area"]["aeration"]["kWh"] > 1.02 * new["energy"]["by_area"]["aeration"]["kWh"]
    # the DO loop still holds its setpoint
    assert fouled["bsm1"]["effluent_avg"]["SO"] == pytest.approx(new["bsm1"]["effluent_avg"]["SO"], abs=0.1)


def test_worn_impeller_raises_pumping_energy_per_cubic_metre(runs):
    def per_m3(folder):
        t = pq.read_table(folder / "timeseries.parquet")
        q = np.asarray(t.column("pump.internal_recycle.flow_m3_d"))
        times = np.asarray(t.column("time_s"))
        pumped_m3 = float(np.sum(q[:-1] * np.diff(times) / 86400.0))
        return _kpis(folder)["energy"]["by_area"]["pumping"]["kWh"] / pumped_m3
    assert per_m3(runs["worn"]) > per_m3(runs["new"])


def test_energy_totals_equal_the_integral_of_recorded_power(runs):
    folder = runs["fouled"]
    t = pq.read_table(folder / "timeseries.parquet")
    times = np.asarray(t.column("time_s"))
    dt_h = np.diff(times) / 3600.0
    e = _kpis(folder)["energy"]
    total = 0.0
    for area, v in e["by_area"].items():
        p = np.asarray(t.column(f"power.{area}_kW"))
        kwh = float(np.sum(p[1:] * dt_h))
        assert kwh == pytest.approx(v["kWh"], rel=1e-12)
        total += kwh
    assert total == pytest.approx(e["total_kWh"], rel=1e-12)
    # time-of-use pricing: the cost lies between the cheapest and dearest band
    assert 0.1 * total < e["total_cost"] < 0.25 * total
    assert len(e["hourly_profile_kW"]) == 24 and e["peak_kW"] >= max(e["hourly_profile_kW"]) - 1e-9
