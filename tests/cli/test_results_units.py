"""What a plant engineer reads in a results folder: every column with its unit, the unit
states (wet-well level, sludge-tank temperature) recorded, one name per quantity in kpis.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from twin.results import write_results
from twin.run import run_scenario
from twin.scenario import validate_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """Three hours of the reference plant written to a results folder."""
    s = yaml.safe_load((ROOT / "scenarios" / "reference_24h.yaml").read_text())
    s.update(duration="3h", evaluation={"kind": "bsm1", "start": "0h", "end": "3h"})
    result = run_scenario(validate_scenario(s, "ref3h"), ROOT / "scenarios")
    return result, write_results(result, tmp_path_factory.mktemp("res") / "ref3h")


def test_every_column_carries_its_unit_in_the_parquet_metadata(reference_run):
    import pyarrow.parquet as pq

    _, out = reference_run
    schema = pq.read_schema(out / "timeseries.parquet")
    units = json.loads(schema.metadata[b"units"])
    assert set(units) == set(schema.names)
    assert units["time_s"] == "s" and units["time_d"] == "d"
    assert units["effluent.SNH_g_m3"] == "g/m3" and units["effluent.Q_m3_d"] == "m3/d"
    assert units["reactor5.kla_per_d"] == "1/d"
    assert units["control.do_reactor3.measurement"] == "g O2/m3"
    assert units["control.do_reactor3.output"] == "1/d"
    assert units["control.wet_well_level.setpoint"] == "m"
    assert units["control.sludge_tank_temperature.output"] == "W"
    assert units["sensor.effluent_turbidity"] == "NTU"
    assert units["aeration.reactor3.valve_opening"] == "-"
    assert units["pump.lift_station.running"] == "count" and units["aeration.blowers_running"] == "count"
    assert units["power.aeration_kW"] == "kW"
    assert units["aeration.header_pressure_kPa"] == "kPa"


def test_unit_states_are_recorded(reference_run):
    result, _ = reference_run
    assert "wet_well.level_m" in result.columns and "sludge_tank.T_C" in result.columns
    units = result.metadata["column_units"]
    assert units["wet_well.level_m"] == "m" and units["sludge_tank.T_C"] == "degC"
    level = result.values[:, result.columns.index("wet_well.level_m")]
    assert 0.5 < level.mean() < 3.5


def test_kpis_name_total_nitrogen_once_and_give_units(reference_run):
    _, out = reference_run
    b = json.loads((out / "kpis.json").read_text())["bsm1"]
    assert set(b["p95"]) == {"SNH", "Ntot", "TSS"}
    assert b["units"]["p95"] == "g/m3"
    assert b["units"]["violations"]["pct_time"] == "%"


def test_report_limits_are_not_escaped_twice_and_energy_is_one_section(reference_run):
    import re

    _, out = reference_run
    text = (out / "report.html").read_text()
    assert "&amp;gt;" not in text and "&gt;" not in text and "<td>total N</td><td>18</td>" in text
    h2 = re.findall(r"<h2>([^<]*)</h2>", text)
    assert h2.count("Energy") == 1 and len(h2) == len(set(h2))
    assert "BSM1 energy indices" in text
