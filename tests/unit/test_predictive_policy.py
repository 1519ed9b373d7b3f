"""The predictive maintenance policy with an LSTM model file: work orders before failures, a
decision that follows the costs, one batched forward call per type and decision, refusal of a
model for other channels, and an exact resume from a checkpoint.

The model here is tiny and set by hand (the package's architecture with one LSTM unit whose
state follows the normalised vibration, and hazard heads that rise with it), so the tests check
the policy, not training (tests/cli/test_predictor_cli.py trains)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from agents.predictors.dataset import CONTEXT, HORIZONS_H, QUANTILES, RUL_CAP_H
from agents.predictors.lstm import FORMAT, TypeModel, _net, save
from twin.checkpoint import Checkpointing, Halted
from twin.cli import main
from twin.durations import parse_duration
from twin.run import run_scenario
from twin.scenario import load_scenario

torch.set_num_threads(1)

CHANNELS = ("vib", "temp")


def tiny_model(path: Path, channels: tuple[str, ...] = CHANNELS, type_name: str = "pump",
               context_range: dict | None = None) -> Path:
    """A one-unit LSTM over a 24-hour window of 4-hour blocks: the cell follows tanh of the
    normalised first channel; each horizon's hazard increment is softplus(8 h - 6)."""
    features = (*channels, *CONTEXT)
    net = _net(len(features), (1,))
    with torch.no_grad():
        for prm in net.parameters():
            prm.zero_()
        lstm = net.layers[0]
        lstm.bias_ih_l0[:] = torch.tensor([10.0, -10.0, 0.0, 10.0])  # gates i, f, g, o: input and output open, no memory
        lstm.weight_ih_l0[2, 0] = 1.0  # candidate cell = tanh(normalised first channel)
        net.hazard.weight[:, 0] = 8.0
        net.hazard.bias[:] = -6.0
        net.quant.bias[:] = torch.tensor([0.5, -1.0, -1.0])
    mean = [2.0] + [0.0] * (len(features) - 1)
    meta = {"format": FORMAT, "type": type_name, "features": list(features), "channels": list(channels),
            "horizons_h": list(HORIZONS_H), "quantiles": list(QUANTILES), "rul_cap_h": RUL_CAP_H, "window_h": 24,
            "block_h": 4, "hidden": [1], "mean": mean, "std": [1.0] * len(features), "validation": {}, "data": [],
            "seed": 0}
    if context_range is not None:
        meta["context_range"] = context_range
    save({type_name: TypeModel(meta, net)}, path)
    return path


def scenario(tmp_path: Path, name: str, policy: dict, secondary_damage: float = 2000.0, seed: int = 1,
             duration: str = "240d", channels: tuple[str, ...] = CHANNELS) -> Path:
    """Ten pumps with a wear-out mode of long P-F interval (about 600 h) and electrical faults."""
    fleet = {"types": {"pump": {
        "modes": {"wear": {"kind": "wearout", "weibull_shape": 2.5, "weibull_scale_h": 2000.0, "pf_interval_h": 600.0,
                           "pf_sigma": 0.3},
                  "electrical": {"kind": "electrical", "weibull_scale_h": 20000.0}},
        "channels": {channels[0]: {"unit": "mm/s", "base": 2.0, "gain": 4.0, "modes": ["wear"], "noise_sd": 0.3},
                     channels[1]: {"unit": "degC", "base": 40.0, "gain": 5.0, "modes": ["wear"], "noise_sd": 1.0}},
        "repair": {"median_h": 8, "sigma": 0.3, "replace_h": 4},
        "costs": {"labour_per_h": 50, "repair_parts": 500, "replacement": 5000, "planned_repair": 300,
                  "secondary_damage": secondary_damage, "downtime_per_h": 20}}},
        "assets": [{"type": "pump", "count": 10, "prefix": "P"}]}
    (tmp_path / f"fleet_{name}.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False))
    s = {"name": name, "seed": seed, "duration": duration,
         "fleet": {"file": f"fleet_{name}.yaml", "process_model": False, "policies": {"default": policy},
                   "crews": {"count": 10}, "spares": {"default": {"stock": 100, "lead_time": "1h"}}}}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(s))
    return p


def run(path: Path):
    scen, p = load_scenario(path)
    return run_scenario(scen, p.parent)


def predictive(horizon_h: float = 168.0) -> dict:
    return {"kind": "predictive", "model": "tiny.pt", "horizon_h": horizon_h, "inspection_interval": "1d"}


@pytest.fixture
def model_dir(tmp_path):
    tiny_model(tmp_path / "tiny.pt")
    return tmp_path


def test_work_orders_come_before_failures(model_dir):
    pred = run(scenario(model_dir, "pred", predictive()))
    rtf = run(scenario(model_dir, "rtf", {"kind": "rtf"}))
    kp, kr = (r.kpis["maintenance"]["by_type"]["pump"] for r in (pred, rtf))
    assert kr["failures_by_mode"]["wear"] >= 5  # the baseline has wear-out failures to prevent
    assert kp["work_orders"]["preventive"] > 0
    assert kp["failures_by_mode"].get("wear", 0) < kr["failures_by_mode"]["wear"] / 2
    recs = [e for e in pred.events.records if e["kind"] == "recommendation"]
    assert len(recs) == kp["work_orders"]["preventive"]
    for e in recs:  # each recommendation says its probability, remaining-life interval and reason
        d = e.get("data", e)
        assert 0.0 < d["probability"] <= 1.0 and len(d["rul_interval_h"]) == 2
        assert d["rul_interval_h"][0] <= d["rul_h"] <= d["rul_interval_h"][1]
        assert "failure cost" in e["message"] and "planned cost" in e["message"]
        assert d["probability"] * d["failure_cost"] >= d["planned_cost"]
    assert pred.kpis["maintenance"]["alarms"]["precision"] > 0.5


def test_a_dearer_failure_brings_work_earlier(model_dir):
    """The threshold on P(failure) is the planned cost over the failure cost: a dearer failure
    lowers it, so the policy acts earlier (lower probabilities, more life given up) and lets no
    more failures through (two seeds pooled)."""
    out = {}
    for label, damage in (("cheap", 0.0), ("dear", 20000.0)):
        runs = [run(scenario(model_dir, f"{label}{seed}", predictive(), damage, seed)) for seed in (1, 2)]
        recs = [e.get("data", e) for r in runs for e in r.events.records if e["kind"] == "recommendation"]
        k = [r.kpis["maintenance"]["by_type"]["pump"] for r in runs]
        preventive = sum(x["work_orders"]["preventive"] for x in k)
        out[label] = {"p": np.mean([d["probability"] for d in recs]),
                      "wasted": sum(x["useful_life_wasted_h"] for x in k) / max(1, preventive),
                      "wear": sum(x["failures_by_mode"].get("wear", 0) for x in k),
                      "threshold": recs[0]["planned_cost"] / recs[0]["failure_cost"]}
    assert out["dear"]["threshold"] < out["cheap"]["threshold"]
    assert out["dear"]["p"] < out["cheap"]["p"]
    assert out["dear"]["wasted"] > out["cheap"]["wasted"]
    assert out["dear"]["wear"] <= out["cheap"]["wear"]


def test_one_forward_call_per_type_and_decision(model_dir, monkeypatch):
    import agents.predictors.lstm as lstm

    calls: list[int] = []
    real_load = lstm.load

    def counting_load(path):
        models = real_load(path)
        for m in models.values():
            m.net.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
        return models

    monkeypatch.setattr(lstm, "load", counting_load)
    run(scenario(model_dir, "batch", predictive(), duration="30d"))
    # decisions daily from day 2 (the first full 24-hour window), each scoring all ten pumps at once
    assert len(calls) == 29 and set(calls) == {10}


def test_a_model_for_other_channels_is_refused(model_dir, capsys):
    path = scenario(model_dir, "other", predictive(), channels=("vibration", "temp"))
    for argv in (["run", str(path), "--out", str(model_dir / "out"), "--quiet"], ["validate", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "trained on channels vib, temp" in err and "this fleet's type has vibration, temp" in err
        assert "Traceback" not in err
    tiny_model(model_dir / "tiny.pt", type_name="valve")
    assert main(["run", str(scenario(model_dir, "type", predictive())), "--out", str(model_dir / "o2"), "--quiet"]) == 2
    assert "no model for asset type 'pump'" in capsys.readouterr().err
    tiny_model(model_dir / "tiny.pt")
    assert main(["run", str(scenario(model_dir, "hz", predictive(100.0))), "--out", str(model_dir / "o3"), "--quiet"]) == 2
    assert "not a horizon of the model" in capsys.readouterr().err
    wrong_kind = {"kind": "condition", "channel": "vib", "threshold": 3.0, "model": "tiny.pt"}
    assert main(["run", str(scenario(model_dir, "kind", wrong_kind)), "--out", str(model_dir / "o5"), "--quiet"]) == 2
    assert "only a predictive policy takes a model" in capsys.readouterr().err
    no_model = {"kind": "condition", "channel": "vib", "threshold": 3.0, "outside_context": "predict"}
    assert main(["run", str(scenario(model_dir, "ctx", no_model)), "--out", str(model_dir / "o6"), "--quiet"]) == 2
    assert "outside_context: only a predictive policy with a model" in capsys.readouterr().err
    missing = dict(predictive(), model="nowhere.pt")
    assert main(["run", str(scenario(model_dir, "miss", missing)), "--out", str(model_dir / "o4"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_checkpointed_predictive_run_resumes_exactly(model_dir):
    scen, p = load_scenario(scenario(model_dir, "ck", predictive(), duration="120d"))
    plain = run_scenario(scen, p.parent)
    folder = model_dir / "ck.checkpoint"
    every = parse_duration("29d")
    with pytest.raises(Halted):
        run_scenario(scen, p.parent, checkpoint=Checkpointing(folder, every, halt_after=2))
    with open(folder / "state.pkl", "rb") as fh:
        assert pickle.load(fh)["parts"]["agent"]["attrs"]["history_h"] > 0
    resumed = run_scenario(scen, p.parent, checkpoint=Checkpointing(folder, every, resume=True))

    def kpis(r):
        return json.dumps({k: v for k, v in r.kpis["maintenance"].items()}, sort_keys=True)

    assert kpis(resumed) == kpis(plain)
    assert [e for e in resumed.events.records if e["kind"] != "resumed"] == plain.events.records
    assert plain.kpis["maintenance"]["by_type"]["pump"]["work_orders"]["preventive"] > 0


def test_the_shipped_model_fits_the_reference_fleet():
    """reference_10y_predictive runs without training: the shipped model covers every type of the
    reference fleet with its channels and carries its provenance and validation figures."""
    from agents.predictors.policy import REFERENCE_MODEL

    assert REFERENCE_MODEL.stat().st_size < 3 * 2**20
    root = Path(__file__).resolve().parents[2]
    scen, p = load_scenario(root / "scenarios" / "reference_10y_predictive.yaml",
                            ["fleet.process_model=false", "duration=10d", "evaluation.end=10d"])
    result = run_scenario(scen, p.parent)
    assert result.kpis["maintenance"]["by_type"]["total"]["assets"] == 124
    blob = torch.load(REFERENCE_MODEL, weights_only=True)
    assert len(blob["models"]) == 7
    for t, meta in ((t, m["meta"]) for t, m in blob["models"].items()):
        assert meta["channels"] and meta["horizons_h"] == list(HORIZONS_H) and meta["seed"] == 0
        assert all(len(d["sha256"]) == 64 for d in meta["data"]) and meta["versions"]["torch"]
        assert "pr_auc_7d" in meta["validation"] and meta["calibration"]["method"] == "platt"
        # trained with --variant auto: per type the variant with the higher validation PR-AUC,
        # the window statistics' standardisation carried exactly where that path is kept
        sel = meta["selection"]["pr_auc_7d"]
        assert meta["variant"] == ("stats" if sel["stats"] > sel["lstm"] else "lstm")
        assert ("stats" in meta) == (meta["variant"] == "stats")
        # --hidden 32,16 --hidden heat_exchanger=64,32
        assert meta["settings"]["hidden"] == ([64, 32] if t == "heat_exchanger" else [32, 16])
        assert {d["seed"] for d in meta["data"]} == {1, 2, 5, 6}
        assert {d["seed"] for d in meta["validation_data"]} == {9, 10}  # validated on other seeds
        # each channel's normal-behaviour residual among the inputs
        assert meta["inputs"] == [*meta["features"], *(f"{c}_residual" for c in meta["channels"])]
        # the operating context it was trained in, for the policy's check
        assert all(lo <= hi for lo, hi in meta["context_range"].values()) and {"load", "ambient_c"} <= set(
            meta["context_range"])
    assert blob["format"] == "plant-twin-lstm/3"


def test_the_policy_reads_what_the_model_was_trained_on(model_dir):
    """The hourly history the policy feeds its model equals, value for value, what twin fleet-data
    writes for the same seed (channels, load, air temperature, operating hours; the policy here
    never acts, so the two runs differ only by who reads the sensors)."""
    import pyarrow.parquet as pq

    from twin.clock import TwinEnvironment
    from twin.fleet.export import export_fleet_data
    from twin.run import build_fleet

    path = scenario(model_dir, "same", predictive(), secondary_damage=0.0, duration="2d")
    fleet = yaml.safe_load((model_dir / "fleet_same.yaml").read_text())
    fleet["types"]["pump"]["costs"]["planned_repair"] = 1e9  # planned work never pays: the policy only reads
    (model_dir / "fleet_same.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False))
    scen, p = load_scenario(path, ["fleet.load_variation=0.15"])
    env = TwinEnvironment(scen, seed=scen.seed)
    agent = build_fleet(env, scen.fleet, p.parent)
    env.run(until=48 * 3600 + 1)
    assert agent.history_h == 48 and not agent.records
    assert np.isfinite(agent.window("pump")).all()  # all in service, no dropouts in this fleet
    data = export_fleet_data(scen, p.parent, 48 / 8760, model_dir / "data")
    t = pq.read_table(data / "sensors.parquet").to_pydict()
    meta = agent.models["pump"].meta
    cols = [*meta["channels"], "load", "ambient_c", "operating_h"]
    # rows are hour-major (every asset at hour 1, then hour 2...): (hours, assets, columns)
    table = np.stack([np.array(t[c], dtype=float) for c in cols], axis=1).reshape(48, 10, len(cols))
    table[:, :, -1] /= 1000.0
    assert t["asset"][:10] == [f"P-{k:02d}" for k in range(1, 11)]
    np.testing.assert_array_equal(agent.window("pump"), table[24:].transpose(1, 0, 2))


def test_outside_the_training_context_means_a_tenth_beyond_its_range():
    from agents.predictors.policy import outside_context

    meta = {"features": ["vib", "load", "ambient_c", "operating_kh"],
            "context_range": {"load": [1.0, 1.0], "ambient_c": [-5.0, 35.0], "operating_kh": [0.0, 20.0]}}
    model = TypeModel(meta, None)
    blocks = np.zeros((5, 3, 4))
    blocks[..., 1] = [[1.0, 1.0, 1.0], [0.95, 1.05, 1.0], [0.85, 1.0, 1.0], [1.0, np.nan, 1.0], [1.0, 1.0, 1.0]]
    blocks[..., 2] = 20.0
    blocks[4, 1, 2] = 39.5  # 4 degC (a tenth of the 40 degC range) above the warmest block seen: outside
    blocks[:, :, 3] = 90.0  # hours beyond the training records are not a reason
    out, why = outside_context(model, blocks)
    assert out.tolist() == [False, False, True, False, True]
    assert why[2] == "load 0.85-1.00 (trained 1.00-1.00)" and why[4].startswith("ambient_c 20.00-39.50")
    assert not outside_context(TypeModel({"features": meta["features"]}, None), blocks)[0].any()  # no range saved


def test_a_model_outside_its_training_load_plans_no_work(tmp_path, capsys):
    """A model trained at load 1 (its saved context range): at load 1 it plans work; at load 0.8
    every decision is outside, each asset logged once, the model plans nothing (skip) and the
    console warns; with outside_context: predict it acts anyway, the decisions still counted."""
    wide = [-50.0, 60.0]
    tiny_model(tmp_path / "tiny.pt", context_range={"load": [1.0, 1.0], "ambient_c": wide})
    at1 = run(scenario(tmp_path, "at1", predictive(), duration="120d"))
    k1 = at1.kpis["maintenance"]["by_type"]["pump"]
    assert k1["work_orders"]["preventive"] > 0 and k1["model_decisions"]["outside_training_context"] == 0
    low = scenario(tmp_path, "low", predictive(), duration="120d")
    scen, p = load_scenario(low, ["fleet.load=0.8"])
    res = run_scenario(scen, p.parent)
    k = res.kpis["maintenance"]["by_type"]["pump"]
    assert k["work_orders"]["preventive"] == 0
    assert k["model_decisions"]["outside_training_context"] == k["model_decisions"]["total"] > 0
    logged = [e for e in res.events.records if e["kind"] == "model_outside_context"]
    assert len(logged) == 10 and "load 0.80-0.80 (trained 1.00-1.00)" in logged[0]["message"]
    scen, p = load_scenario(low, ["fleet.load=0.8", "fleet.policies.default.outside_context=predict"])
    acted = run_scenario(scen, p.parent).kpis["maintenance"]["by_type"]["pump"]
    assert acted["work_orders"]["preventive"] > 0 and acted["model_decisions"] == k["model_decisions"]
    assert main(["run", str(low), "--set", "fleet.load=0.8", "--out", str(tmp_path / "o"), "--no-report"]) == 0
    n = k["model_decisions"]["total"]
    assert f"ran outside its training context (load, air temperature) in {n:,} of {n:,} pump decisions" in (
        capsys.readouterr().out)
