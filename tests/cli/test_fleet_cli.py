"""Fleet commands: labelled sensor export and run comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from twin.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _fleet_scenario(tmp_path, policy, name) -> Path:
    s = {"name": name, "seed": 4, "duration": "2y",
         "fleet": {"file": str(ROOT / "scenarios" / "fleets" / "reference.yaml"), "process_model": False,
                   "policies": {"default": {"kind": "rtf"}, "centrifugal_pump": policy}}}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(s))
    return p


def test_fleet_data_export_is_labelled(tmp_path):
    out = tmp_path / "data"
    assert main(["fleet-data", str(_fleet_scenario(tmp_path, {"kind": "rtf"}, "fd")), "--years", "0.25",
                 "--out", str(out)]) == 0
    t = pq.read_table(out / "sensors.parquet")
    f = pq.read_table(out / "failures.parquet").to_pylist()
    assert t.num_rows == 124 * int(0.25 * 365 * 24)
    assert {"vibration_rms", "bearing_temp", "differential_pressure"} <= set(t.column_names)
    modes = np.array(t.column("failure_mode").to_pylist())
    assert (modes != "").sum() == len(f) and len(f) > 0
    # the label counts down to each failure
    h = np.array(t.column("hours_to_failure"))
    assert np.nanmin(h) == 0.0


def test_fleet_data_with_the_process_model_takes_the_loads_from_the_plant(tmp_path):
    """With the process model the whole plant runs: the lift pumps' and blowers' loads follow
    the loops and machines (pumps staged off read 0, running ones vary) and the record starts at
    the main period's start."""
    out = tmp_path / "plant"
    assert main(["fleet-data", str(ROOT / "scenarios" / "reference_10y.yaml"), "--years", "0.005", "--seed", "3",
                 "--out", str(out)]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["process_model"] is True and meta["seed"] == 3
    t = pq.read_table(out / "sensors.parquet").to_pandas()
    n_h = int(0.005 * 365 * 24)
    assert len(t) == 124 * n_h and t["time_h"].min() == 1.0 and t["time_h"].max() == n_h
    pumps = t[t["type"] == "centrifugal_pump"]["load"]
    assert (pumps == 0).any() and pumps[pumps > 0].std() > 0.01
    assert t[t["type"] == "blower"]["load"].std() > 0.01


def test_compare_condition_based_against_run_to_failure(tmp_path, capsys):
    """Pumps under condition-based replacement (vibration alarm) against run to failure: the
    comparison reports failures and downtime avoided, computed from the two runs."""
    cbm = {"kind": "condition", "channel": "vibration_rms", "threshold": 3.2, "inspection_interval": "1d"}
    a, b = tmp_path / "cbm", tmp_path / "rtf"
    assert main(["run", str(_fleet_scenario(tmp_path, cbm, "cbm")), "--out", str(a), "--quiet"]) == 0
    assert main(["run", str(_fleet_scenario(tmp_path, {"kind": "rtf"}, "rtf")), "--out", str(b), "--quiet"]) == 0
    assert main(["compare", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "failures avoided" in text and "downtime avoided" in text
    res = json.loads((a / "compare.json").read_text())
    ka = json.loads((a / "kpis.json").read_text())["maintenance"]["by_type"]["total"]
    kb = json.loads((b / "kpis.json").read_text())["maintenance"]["by_type"]["total"]
    assert res["maintenance"]["failures_avoided"] == kb["failures"] - ka["failures"]
    pumps = json.loads((a / "kpis.json").read_text())["maintenance"]
    assert pumps["by_type"]["centrifugal_pump"]["work_orders"]["preventive"] > 0
    assert "alarms" in pumps and 0.0 <= pumps["alarms"]["precision"] <= 1.0
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2


def test_a_typo_in_a_fleet_file_is_refused_naming_file_and_field(tmp_path, capsys):
    """An optional key misspelt (``nois_sd`` for ``noise_sd``) would silently read as its
    default: it is refused, naming the fleet file and the field, with a suggestion."""
    fleet = yaml.safe_load((ROOT / "scenarios" / "fleets" / "reference.yaml").read_text())
    tname, t = next((n, t) for n, t in fleet["types"].items() if t.get("channels"))
    cname, c = next(iter(t["channels"].items()))
    c["nois_sd"] = c.pop("noise_sd", 0.1)
    f = tmp_path / "typo_fleet.yaml"
    f.write_text(yaml.safe_dump(fleet))
    s = {"name": "typo", "seed": 4, "duration": "1d", "fleet": {"file": str(f), "process_model": False}}
    p = tmp_path / "typo.yaml"
    p.write_text(yaml.safe_dump(s))
    assert main(["run", str(p), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "typo_fleet.yaml" in err and f"types.{tname}.channels.{cname}.nois_sd" in err
    assert "did you mean 'noise_sd'" in err and "Traceback" not in err
