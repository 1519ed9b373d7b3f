"""The reference plant (BSM1 core + influent pumping station) against the BSM1 closed loop.

With a lift station that keeps up and its level loop, the wet well only delays the influent by
minutes, and with the blowers' header-pressure loop the zones get the air their KLa asks for:
effluent quality must match the BSM1 closed loop of the engine within 1 %.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twin.run import run_scenario
from twin.scenario import load_scenario, validate_scenario

SCEN = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture(scope="module")
def both(dry_file):
    sets = [f"warmup.0.influent.file={dry_file}", f"influent.file={dry_file}"]
    s, p = load_scenario(SCEN / "bsm1_closedloop_dry.yaml", sets)
    bsm1 = run_scenario(s, p.parent).kpis["bsm1"]
    data = s.to_dict()
    ref = yaml.safe_load((SCEN / "reference_24h.yaml").read_text())
    data.update(name="reference_dry", plant="reference", equipment=ref["equipment"])
    data["controllers"]["wet_well_level"] = ref["controllers"]["wet_well_level"]
    data["controllers"]["header_pressure"] = ref["controllers"]["header_pressure"]
    data["equipment"]["tariff"] = {"kind": "flat", "price_per_kwh": 0.2}
    r = run_scenario(validate_scenario(data, "reference_dry"), p.parent).kpis
    return bsm1, r


@pytest.mark.parametrize("key", ["EQI", "effluent_avg.SNH", "effluent_avg.Ntot", "effluent_avg.TSS",
                                 "effluent_avg.CODt", "effluent_avg.BOD5"])
def test_reference_plant_reproduces_bsm1_effluent_quality(both, key):
    a, b = both[0], both[1]["bsm1"]
    for part in key.split("."):
        a, b = a[part], b[part]
    assert abs(b - a) / abs(a) <= 0.01, f"{key}: {b} vs {a}"


def test_no_bypass_and_energy_reported(both):
    k = both[1]
    assert k["hydraulics"]["bypass_m3"] == 0.0
    e = k["energy"]
    assert set(e["by_area"]) == {"aeration", "pumping", "mixing", "heating"}
    assert e["total_kWh"] > 0 and e["kWh_per_m3"] > 0
