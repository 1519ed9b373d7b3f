"""twin predictor train / evaluate on a small fleet with short lives: deterministic training,
metrics of the LSTM and its baselines beside the claimed figures, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from twin.cli import main


def _fleet(tmp_path: Path, channel: str = "vib") -> Path:
    data = {"types": {"pump": {
        "modes": {"wear": {"kind": "wearout", "weibull_shape": 2.0, "weibull_scale_h": 500.0, "pf_interval_h": 150.0,
                           "pf_sigma": 0.3},
                  "electrical": {"kind": "electrical", "weibull_scale_h": 4000.0}},
        "channels": {channel: {"unit": "mm/s", "base": 2.0, "gain": 4.0, "modes": ["wear"], "noise_sd": 0.3,
                               "load_coeff": 1.0},
                     "temp": {"unit": "degC", "base": 40.0, "gain": 5.0, "modes": ["wear"], "noise_sd": 1.0,
                              "ambient_coeff": 1.0}},
        "repair": {"median_h": 4, "sigma": 0.3, "replace_h": 4}}},
        "assets": [{"type": "pump", "count": 10, "prefix": "P"}]}
    p = tmp_path / f"fleet_{channel}.yaml"
    p.write_text(yaml.safe_dump(data))
    s = {"name": "pred", "seed": 1, "duration": "60d",
         "fleet": {"file": str(p), "process_model": False, "load_variation": 0.15, "policies": {"default": {"kind": "rtf"}},
                   "crews": {"count": 20}, "spares": {"default": {"stock": 1000, "lead_time": "1h"}}}}
    sp = tmp_path / f"scen_{channel}.yaml"
    sp.write_text(yaml.safe_dump(s))
    return sp


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pred")
    scen = _fleet(tmp)
    out = {}
    for seed in (1, 2, 3):
        out[seed] = tmp / f"s{seed}"
        assert main(["fleet-data", str(scen), "--years", "0.12", "--seed", str(seed), "--out", str(out[seed])]) == 0
    return tmp, out


TRAIN = ["--hidden", "8,4,4", "--epochs", "2", "--seed", "3"]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A model trained with variant auto on seeds 1 and 2."""
    _, d = data
    m = tmp_path_factory.mktemp("model") / "auto.pt"
    assert main(["predictor", "train", "--data", str(d[1]), str(d[2]), "--out", str(m), "--variant", "auto",
                 *TRAIN]) == 0
    return m


def test_training_is_deterministic_and_keeps_its_metadata(data, trained, tmp_path):
    _, d = data
    a, b = trained, tmp_path / "b.pt"
    assert main(["predictor", "train", "--data", str(d[1]), str(d[2]), "--out", str(b), "--variant", "auto",
                 *TRAIN]) == 0
    ma, mb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    for k, v in ma["models"]["pump"]["state"].items():
        assert torch.equal(v, mb["models"]["pump"]["state"][k])
    meta = ma["models"]["pump"]["meta"]
    assert sorted(meta["channels"]) == ["temp", "vib"] and meta["horizons_h"] == [24.0, 168.0, 336.0, 720.0]
    assert meta["seed"] == 3 and len(meta["data"]) == 2 and all(len(x["sha256"]) == 64 for x in meta["data"])
    assert meta["versions"]["torch"] and "validation" in meta and len(meta["features"]) <= 24
    # with auto both variants are trained, the kept one recorded with both validation scores
    assert ma["format"] == "plant-twin-lstm/3" and meta["variant"] in ("stats", "lstm")
    # each channel's normal-behaviour residual among the inputs, its fit on load and ambient kept
    assert meta["inputs"] == [*meta["features"], *(f"{c}_residual" for c in meta["channels"])]
    assert meta["nbm"]["channels"] == meta["channels"] and len(meta["nbm"]["coef"]) == len(meta["channels"])
    assert len(meta["mean"]) == len(meta["inputs"]) <= 24
    assert set(meta["selection"]["pr_auc_7d"]) == {"stats", "lstm"}


def test_types_trained_in_worker_processes_are_the_same_model(data, trained, tmp_path):
    _, d = data
    b = tmp_path / "jobs.pt"
    assert main(["predictor", "train", "--data", str(d[1]), str(d[2]), "--out", str(b), "--variant", "auto",
                 "--jobs", "2", *TRAIN]) == 0
    ma, mb = torch.load(trained, weights_only=True), torch.load(b, weights_only=True)
    assert ma["models"]["pump"]["meta"]["validation"] == mb["models"]["pump"]["meta"]["validation"]
    for k, v in ma["models"]["pump"]["state"].items():
        assert torch.equal(v, mb["models"]["pump"]["state"][k])


def test_validation_on_a_held_out_seed(data, tmp_path, capsys):
    """--validation-data: every asset of the training folders trains, the other seed validates
    (and a model evaluated on its validation seed is flagged as not a test)."""
    _, d = data
    m = tmp_path / "vs.pt"
    assert main(["predictor", "train", "--data", str(d[1]), "--validation-data", str(d[2]), "--out", str(m),
                 "--variant", "lstm", *TRAIN]) == 0
    meta = torch.load(m, weights_only=True)["models"]["pump"]["meta"]
    assert [x["folder"] for x in meta["validation_data"]] == [str(d[2])] and len(meta["data"]) == 1
    # the validation windows are those of all ten assets of seed 2 (one a day away from failures)
    assert meta["validation"]["windows"] > 0.9 * 10 * 0.12 * 365
    capsys.readouterr()
    assert main(["predictor", "evaluate", "--model", str(m), "--data", str(d[2]), "--out", str(tmp_path / "e")]) == 0
    assert "is one of the model's training or validation sets" in capsys.readouterr().out
    assert main(["predictor", "train", "--data", str(d[1]), "--validation-data", str(d[1]), "--out", str(m)]) == 2
    assert "is also in --data" in capsys.readouterr().err


def test_layer_sizes_for_one_type_and_the_context_range(data, tmp_path):
    """--hidden TYPE=SIZES sizes that type's network (its settings say so); every model carries
    the operating context of its training blocks (the data run at 0.85 load with variation)."""
    _, d = data
    m = tmp_path / "sized.pt"
    assert main(["predictor", "train", "--data", str(d[1]), "--out", str(m), "--variant", "lstm", *TRAIN,
                 "--hidden", "pump=6,3"]) == 0
    blob = torch.load(m, weights_only=True)["models"]["pump"]
    assert blob["meta"]["hidden"] == blob["meta"]["settings"]["hidden"] == [6, 3]
    assert blob["state"]["layers.1.weight_hh_l0"].shape == (4 * 3, 3)
    rng = blob["meta"]["context_range"]
    assert 0.0 <= rng["load"][0] < 0.85 < rng["load"][1] < 2.5 and rng["ambient_c"][0] < rng["ambient_c"][1]


def test_the_wide_variant_keeps_the_statistics_standardisation(data, tmp_path):
    _, d = data
    m = tmp_path / "wide.pt"
    assert main(["predictor", "train", "--data", str(d[1]), "--out", str(m), "--variant", "stats", *TRAIN]) == 0
    ma = torch.load(m, weights_only=True)
    meta = ma["models"]["pump"]["meta"]
    assert meta["variant"] == "stats" and meta["stats"] == ["last", "mean", "slope", "sd"] and "selection" not in meta
    state = ma["models"]["pump"]["state"]
    assert state["stat_mean"].shape == state["stat_std"].shape == (4 * len(meta["inputs"]),)
    assert state["hazard.weight"].shape[1] == meta["hidden"][-1] + 4 * len(meta["inputs"])


def test_no_stats_trains_the_lstm_state_alone(data, tmp_path):
    _, d = data
    m = tmp_path / "plain.pt"
    assert main(["predictor", "train", "--data", str(d[1]), "--out", str(m), "--no-stats", *TRAIN]) == 0
    blob = torch.load(m, weights_only=True)["models"]["pump"]
    assert "stats" not in blob["meta"] and "stat_mean" not in blob["state"] and blob["meta"]["variant"] == "lstm"
    assert blob["state"]["hazard.weight"].shape[1] == blob["meta"]["hidden"][-1]


def test_no_residuals_trains_on_the_readings_alone(data, tmp_path):
    _, d = data
    m = tmp_path / "raw.pt"
    assert main(["predictor", "train", "--data", str(d[1]), "--out", str(m), "--no-residuals", *TRAIN]) == 0
    blob = torch.load(m, weights_only=True)["models"]["pump"]
    assert "nbm" not in blob["meta"] and "inputs" not in blob["meta"]
    assert blob["state"]["layers.0.weight_ih_l0"].shape[1] == len(blob["meta"]["features"]) == len(blob["meta"]["mean"])


def test_auto_keeps_per_type_the_variant_with_the_better_validation_score(data, trained, tmp_path):
    """'auto' is the variant it keeps, bit for bit (each candidate is trained from the same seed),
    and that variant has the higher validation PR-AUC at 7 days of the two (ties: lstm)."""
    _, d = data
    auto = torch.load(trained, weights_only=True)["models"]["pump"]
    sel = auto["meta"]["selection"]["pr_auc_7d"]
    want = "stats" if sel["stats"] is not None and (sel["lstm"] is None or sel["stats"] > sel["lstm"]) else "lstm"
    assert auto["meta"]["variant"] == want
    p = tmp_path / f"{want}.pt"
    assert main(["predictor", "train", "--data", str(d[1]), str(d[2]), "--out", str(p), "--variant", want, *TRAIN]) == 0
    alone = torch.load(p, weights_only=True)["models"]["pump"]
    assert sel[want] == alone["meta"]["validation"].get("pr_auc_7d")
    assert auto["state"].keys() == alone["state"].keys()
    for k, v in auto["state"].items():
        assert torch.equal(v, alone["state"][k])


def test_evaluate_writes_metrics_beside_the_claims(data, trained, tmp_path):
    _, d = data
    m = trained
    out = tmp_path / "ev"
    assert main(["predictor", "evaluate", "--model", str(m), "--data", str(d[3]), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["pump"]) >= {"all", "wear", "electrical"}
    for pred in ("lstm", "weibull", "threshold", "logreg"):
        r = metrics["pump"]["all"][pred]
        assert {"precision", "recall", "f1", "pr_auc", "brier", "rul_rmse", "phm08", "interval_coverage",
                "mean_lead_time_h"} <= set(r)
    assert metrics["pump"]["all"]["lstm"]["positives"] > 0
    assert "(claimed)" in (out / "table.md").read_text()
    # per type: the LSTM's PR-AUC against each baseline on the modes with a warning, and its RUL coverage
    summary = json.loads((out / "summary.json").read_text())["summary"]["pump"]
    assert summary["modes"] == "with_warning" and set(metrics["pump"]["with_warning"]) >= {"lstm", "logreg"}
    assert set(summary["pr_auc"]) == {"lstm", "logreg", "weibull", "threshold"}
    assert summary["lstm_at_least_best"] in (True, False) and summary["best_baseline"] in summary["pr_auc"]
    assert 0.0 <= summary["rul_interval_coverage_before_failure"] <= 1.0
    assert "| LSTM >= best |" in (out / "table.md").read_text()
    # the interval is calibrated on the validation assets (conformal, one shift per side)
    assert torch.load(m, weights_only=True)["models"]["pump"]["meta"]["rul_calibration"]["method"] == "cqr-asymmetric"
    # 'reference' names the shipped model (its types are not in this small fleet: nothing to score)
    assert main(["predictor", "evaluate", "--model", "reference", "--data", str(d[3]), "--out", str(tmp_path / "r")]) == 0


def test_evaluate_pools_several_folders(data, trained, tmp_path, capsys):
    """Two folders are scored as one set: the same folder twice doubles every count and leaves
    every rate as it was (each window scored once per folder); a folder of another fleet is refused."""
    tmp, d = data
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["predictor", "evaluate", "--model", str(trained), "--data", str(d[3]), "--out", str(one)]) == 0
    assert main(["predictor", "evaluate", "--model", str(trained), "--data", str(d[3]), str(d[3]), "--out", str(two)]) == 0
    a = json.loads((one / "metrics.json").read_text())["pump"]
    b = json.loads((two / "metrics.json").read_text())["pump"]
    for mode in a:
        for pred in ("lstm", "logreg", "weibull", "threshold"):
            ra, rb = a[mode][pred], b[mode][pred]
            assert rb["windows"] == 2 * ra["windows"] and rb["positives"] == 2 * ra["positives"]
            assert rb["failures"] == 2 * ra["failures"]
            for k in ("precision", "recall", "pr_auc", "brier", "interval_coverage", "mean_lead_time_h"):
                assert (ra[k] is None and rb[k] is None) or rb[k] == pytest.approx(ra[k], rel=1e-9, abs=1e-12)
    assert len(json.loads((two / "summary.json").read_text())["data"]) == 2
    other = tmp_path / "other"
    assert main(["fleet-data", str(_fleet(tmp_path, channel="vibration")), "--years", "0.05", "--out", str(other)]) == 0
    capsys.readouterr()
    assert main(["predictor", "evaluate", "--model", str(trained), "--data", str(d[3]), str(other),
                 "--out", str(tmp_path / "x")]) == 2
    assert f"{other} holds another fleet than {d[3]}" in capsys.readouterr().err


def test_a_model_for_other_channels_is_a_clear_error(data, tmp_path, capsys):
    tmp, d = data
    m = tmp_path / "m.pt"
    assert main(["predictor", "train", "--data", str(d[1]), "--out", str(m), "--variant", "lstm", *TRAIN]) == 0
    other = tmp_path / "other"
    assert main(["fleet-data", str(_fleet(tmp_path, channel="vibration")), "--years", "0.05", "--out", str(other)]) == 0
    assert main(["predictor", "evaluate", "--model", str(m), "--data", str(other), "--out", str(tmp_path / "x")]) == 2
    assert "trained on channels temp, vib" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["predictor", "train", "--data", "nowhere", "--out", "m.pt"], "--data: nowhere is not a fleet-data folder"),
    (["predictor", "train", "--data", "{d}", "--out", "m.pt", "--hidden", "a,b"], "--hidden: expected layer sizes"),
    (["predictor", "train", "--data", "{d}", "--out", "m.pt", "--hidden", "pmup=8"],
     "no asset type 'pmup' is trained (did you mean 'pump'?)"),
    (["predictor", "train", "--data", "{d}", "--out", "m.pt", "--no-stats", "--variant", "stats"],
     "--no-stats contradicts --variant stats"),
    (["predictor", "evaluate", "--model", "{d}/sensors.parquet", "--data", "{d}", "--out", "x"], "not a plant-twin LSTM"),
])
def test_bad_input_exits_2_without_traceback(data, tmp_path, capsys, args, message):
    _, d = data
    args = [a.replace("{d}", str(d[1])) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
