"""Studies: paired replications, intervals, resume, executors, and the economics."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.economics import Investment, cash_flows, economics
from twin.errors import ConfigError
from twin.study import run_study

SCEN = Path(__file__).resolve().parents[2] / "scenarios"


def test_economics_reproduce_a_hand_calculation():
    """Investment 100 at year 0, savings 60 and running cost 10 a year for 3 years at 10 %:
    flows -100, 50, 50, 50; NPV = -100 + 50/1.1 + 50/1.21 + 50/1.331 = 24.3426; payback after
    exactly 2 years; ROI (150 - 100)/100 = 50 %; at the IRR the NPV is zero."""
    inv = Investment(100.0, 10.0, 0.10, 3)
    assert np.array_equal(cash_flows(inv, 60.0), [-100.0, 50.0, 50.0, 50.0])
    e = economics(inv, 60.0)
    assert e["npv"] == pytest.approx(-100 + 50 / 1.1 + 50 / 1.21 + 50 / 1.331, rel=1e-12)
    assert e["payback_years"] == pytest.approx(2.0) and e["payback_months"] == pytest.approx(24.0)
    assert e["roi_pct"] == pytest.approx(50.0)
    r = e["irr"]
    assert -100 + sum(50 / (1 + r) ** k for k in (1, 2, 3)) == pytest.approx(0.0, abs=1e-9)
    assert math.isinf(economics(inv, 5.0)["payback_years"])  # never pays back


def _study(tmp_path: Path, **extra) -> Path:
    spec = {"name": "tiny", "scenario": str(SCEN / "reference_10y.yaml"), "fleet_only": True,
            "overrides": {"duration": "2y", "evaluation.end": "2y", "outputs.checkpoint_every": None},
            "baseline": "run_to_failure", "replications": 3, "seed0": 5,
            "arms": {"run_to_failure": {"set": {"fleet.policies": {"default": {"kind": "rtf"}}}},
                     "condition": {"set": {}}},
            "economics": {"arm": "condition", "investment": 1000.0, "running_cost_per_year": 100.0, "rate": 0.08,
                          "horizon_years": 5}}
    spec.update(extra)
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def test_study_is_paired_resumable_and_executor_independent(tmp_path):
    study = _study(tmp_path)
    serial = run_study(study, tmp_path / "a", workers=1)
    pooled = run_study(study, tmp_path / "b", workers=2)
    assert serial["savings_against_baseline"] == pooled["savings_against_baseline"]
    # the savings are per-seed differences of paired runs
    d = serial["savings_against_baseline"]["condition"]["failures_per_year"]
    runs = tmp_path / "a" / "runs"
    by_seed = [json.loads((runs / "run_to_failure" / f"{s}.json").read_text())["failures_per_year"]
               - json.loads((runs / "condition" / f"{s}.json").read_text())["failures_per_year"] for s in (5, 6, 7)]
    assert d["per_replication"] == pytest.approx(by_seed)
    lo, hi = d["ci"]
    assert lo <= d["mean"] <= hi
    # resume: finished runs are read back, a missing one is run again, the result is the same
    kept = runs / "condition" / "5.json"
    stamp = kept.stat().st_mtime_ns
    (runs / "condition" / "6.json").unlink()
    again = run_study(study, tmp_path / "a", workers=1)
    assert kept.stat().st_mtime_ns == stamp
    assert (runs / "condition" / "6.json").exists()
    assert again["savings_against_baseline"] == serial["savings_against_baseline"]
    # a run written by an older version, without a newer figure: the study compares the figures all runs have
    old = json.loads(kept.read_text())
    del old["downtime_cost_per_year"]
    kept.write_text(json.dumps(old))
    fewer = run_study(study, tmp_path / "a", workers=1)["savings_against_baseline"]["condition"]
    assert "downtime_cost_per_year" not in fewer and fewer["failures_per_year"] == d
    # the NPV interval comes from the replications' spread
    e = serial["economics"]
    per = np.array(serial["savings_against_baseline"]["condition"]["total_cost_per_year"]["per_replication"])
    assert e["savings_per_year"] == pytest.approx(per.mean())
    if per.std() > 0:
        assert e["ci"]["npv"][0] < e["ci"]["npv"][1]
    assert (tmp_path / "a" / "report.html").read_text().count("claimed") >= 1


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask.distributed not installed")
def test_study_under_dask_gives_the_same_numbers(tmp_path):
    study = _study(tmp_path, replications=2)
    local = run_study(study, tmp_path / "a", workers=1)
    dask = run_study(study, tmp_path / "b", executor="dask", workers=2)
    assert local["savings_against_baseline"] == dask["savings_against_baseline"]


def test_bad_study_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="baseline 'nope' is not an arm"):
        run_study(_study(tmp_path, baseline="nope"), tmp_path / "x")
    with pytest.raises(ConfigError, match=r"study.yaml: arms.condition.set: fleet.polcies: unknown key \(did you mean"):
        run_study(_study(tmp_path, arms={"run_to_failure": {"set": {}}, "condition": {"set": {"fleet.polcies": 1}}}),
                  tmp_path / "y")


def test_study_sensitivity_from_the_replications_and_by_new_runs(tmp_path):
    """Economic inputs are analysed from the replications (tornado, Morris, Sobol; the investment
    moves the NPV one for one); a simulated input is run one at a time, on the study's first seed
    only, and a killed study resumes its sensitivity runs too."""
    sens = {"output": "npv", "sobol_samples": 64, "morris_trajectories": 4, "simulated_replications": 1,
            "inputs": {"investment": [500.0, 2000.0], "rate": [0.04, 0.12], "downtime_cost": [0.5, 2.0]},
            "simulated": {"fleet.crews.count": [1, 3]}}
    study = _study(tmp_path, replications=2, overrides={"duration": "1y", "evaluation.end": "1y",
                                                        "outputs.checkpoint_every": None}, sensitivity=sens)
    s = run_study(study, tmp_path / "a", workers=1)["sensitivity"]
    rows = {r["input"]: r for r in s["tornado"]["rows"]}
    assert rows["investment"]["output_at_low"] - rows["investment"]["output_at_high"] == pytest.approx(1500.0)
    assert set(s["sobol"]["indices"]) == set(s["morris"]["indices"]) == set(s["ranges"])
    assert "saving_offset" in s["ranges"] or s["nominal"]["saving_offset"] == 0.0
    sim = s["simulated"]
    assert sim["seeds"] == [5] and sim["runs"] == 4 and [r["input"] for r in sim["rows"]] == ["fleet.crews.count"]
    folders = sorted(p.name for p in (tmp_path / "a" / "runs" / "sensitivity").iterdir())
    assert folders == ["fleet.crews.count=1", "fleet.crews.count=3"]
    again = json.loads((tmp_path / "a" / "study.json").read_text())["sensitivity"]
    kept = tmp_path / "a" / "runs" / "sensitivity" / "fleet.crews.count=3" / "condition" / "5.json"
    stamp = kept.stat().st_mtime_ns
    assert run_study(study, tmp_path / "a", workers=1)["sensitivity"]["simulated"] == again["simulated"]
    assert kept.stat().st_mtime_ns == stamp
    html = (tmp_path / "a" / "report.html").read_text()
    assert "Tornado" in html and "Sobol indices" in html and "Simulated inputs" in html
    _check_charts(html, at_least=5)  # savings, cash flow, tornado, indices, simulated tornado (2 replications: no widths)


def _check_charts(html: str, at_least: int) -> None:
    """Every chart is an embedded PNG that decodes to an image of some size (no external file)."""
    import base64
    import re
    import struct

    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(imgs) >= at_least
    for b64 in imgs:
        png = base64.b64decode(b64)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width > 100 and height > 100
    assert "src='http" not in html and 'src="http' not in html


def test_bad_sensitivity_inputs_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"sensitivity(\.|: )inputs.price: not an input"):
        run_study(_study(tmp_path, sensitivity={"inputs": {"price": [1, 2]}}), tmp_path / "x")
    with pytest.raises(ConfigError, match=r"sensitivity(\.|: )inputs.rate: expected \[low, high\] with low < high"):
        run_study(_study(tmp_path, sensitivity={"inputs": {"rate": [0.1, 0.05]}}), tmp_path / "x")
    with pytest.raises(ConfigError, match="study sensitivity input 'fleet.crewz'"):
        run_study(_study(tmp_path, sensitivity={"simulated": {"fleet.crewz": [1, 2]}}), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_figures_of_a_process_model_run_read_the_effluent_and_energy_blocks():
    """A study of the plant with its process model compares electricity and the hours above the
    effluent limits: the share of the evaluation window above each limit, as hours a year."""
    from twin.study import figures

    kpis = {"energy": {"electricity": {"kWh": 730.0, "cost": 146.0}},
            "bsm1": {"EQI": 5000.0, "window_d": [0.0, 182.5],
                     "violations": {"SNH": {"pct_time": 2.0}, "Ntot": {"pct_time": 0.5}, "TSS": {"pct_time": 0.0}}}}
    f = figures(kpis, 365 * 86400 // 2)
    assert f["electricity_kWh_per_year"] == pytest.approx(1460.0)
    assert f["electricity_cost_per_year"] == pytest.approx(292.0)
    assert f["hours_above_limits_per_year"] == pytest.approx(0.025 * 8760)
    assert f["EQI"] == 5000.0
