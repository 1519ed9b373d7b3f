"""Auto-tuning inside the twin: designs are verified before use, refusals never applied, all logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from twin.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _scenario(tmp_path, **autotune) -> Path:
    """Six hours of BSM1 with ideal sensors; the DO loop auto-tuned on the initial steady state."""
    s = yaml.safe_load((ROOT / "scenarios" / "quickstart_24h.yaml").read_text())
    s["duration"] = "6h"
    s["evaluation"] = {"kind": "bsm1", "start": "0h", "end": "6h"}
    s["controllers"]["do_reactor5"]["autotune"] = {"enabled": True, "method": "step", "step_size": 30,
                                                    "duration": "1h", "rule": "pidtune", **autotune}
    p = tmp_path / "tune.yaml"
    p.write_text(yaml.safe_dump(s))
    return p


def _events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def test_accepted_design_is_applied_and_logged(tmp_path):
    out = tmp_path / "res"
    assert main(["run", str(_scenario(tmp_path)), "--out", str(out), "--quiet", "--no-report"]) == 0
    k = json.loads((out / "kpis.json").read_text())["control"]["do_reactor5"]
    assert k["retunes"] == 1
    m = k["margins"]
    assert m["accepted"] and m["stable"] and m["phase_margin_deg"] >= 45 and m["Ms"] <= 2
    assert m["gain_margin"] is None or m["gain_margin"] >= 2
    ev = [e for e in _events(out) if e["kind"] == "retune"]
    assert len(ev) == 1
    data = ev[0]["data"]
    assert data["old_gains"]["K"] == 25.0
    assert data["new_gains"]["K"] == pytest.approx(k["final_gains"]["K"])
    assert data["model"].startswith(("FOPDT", "SOPDT")) and data["reason"]
    # the DO process gain is positive: more aeration, more oxygen
    assert float(data["model"].split("k=")[1].split()[0]) > 0
    for key in ("IAE", "ISE", "max_abs_error", "pct_time_saturated"):
        assert key in k


def test_refused_design_is_never_applied(tmp_path):
    """Criteria no PI can meet (phase margin 89 deg with gain margin 1000): the design is refused,
    the loop keeps its gains, and the event log says why."""
    out = tmp_path / "res"
    p = _scenario(tmp_path, rule="zn_step", pm_min_deg=89, gm_min=1000)
    assert main(["run", str(p), "--out", str(out), "--quiet", "--no-report"]) == 0
    k = json.loads((out / "kpis.json").read_text())["control"]["do_reactor5"]
    assert k["retunes"] == 0
    assert k["final_gains"]["K"] == 25.0 and k["final_gains"]["Ti_d"] == 0.002
    refused = [e for e in _events(out) if e["kind"] == "tuning_refused"]
    assert len(refused) == 1
    assert "gain margin" in refused[0]["message"] or "phase margin" in refused[0]["message"]
    assert refused[0]["data"]["proposed_gains"]["K"] != 25.0


def test_twin_tune_prints_models_and_margins(tmp_path, capsys):
    p = _scenario(tmp_path)
    assert main(["tune", str(p), "--loop", "do_reactor5", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    r = rows["do_reactor5"]
    assert r["accepted"] and r["proposed"]["K"] > 0 and r["margins"]["phase_margin_deg"] >= 45
    assert main(["tune", str(p)]) == 0
    table = capsys.readouterr().out
    assert "do_reactor5" in table and "nitrate_reactor2" in table and "model:" in table
    # gains with their units: K of a DO loop in (1/d)/(g O2/m3), of the nitrate loop in (m3/d)/(g N/m3)
    assert r["units"]["K"] == "(1/d)/(g O2/m3)" and "(1/d)/(g O2/m3)" in table and "(m3/d)/(g N/m3)" in table
    assert main(["tune", str(p), "--loop", "nope"]) == 2


def test_tune_on_the_reference_plant(capsys):
    """The reference plant's DO loop tunes in the initial state (the header-pressure loop holds
    its blowers: its signal comes from the equipment layer, which that test does not run); asking
    for the header-pressure loop itself is a clear error."""
    ref = str(ROOT / "scenarios" / "reference_24h.yaml")
    assert main(["tune", ref, "--loop", "do_reactor3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows["do_reactor3"]["accepted"] and rows["do_reactor3"]["model"]
    assert main(["tune", ref, "--loop", "header_pressure"]) == 2
    assert "comes from the equipment layer" in capsys.readouterr().err


def test_tune_all_loops_skips_equipment_signals(tmp_path, capsys):
    """`twin tune` over all loops tests what it can and lists the header-pressure loop as not tested."""
    s = yaml.safe_load((ROOT / "scenarios" / "reference_24h.yaml").read_text())
    s["controllers"] = {k: v for k, v in s["controllers"].items() if k in ("do_reactor3", "header_pressure")}
    p = tmp_path / "ref.yaml"
    p.write_text(yaml.safe_dump(s))
    assert main(["tune", str(p), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows["do_reactor3"]["accepted"]
    assert rows["header_pressure"]["skipped"] and not rows["header_pressure"]["accepted"]
