"""The wide path of the LSTM predictor: the window statistics inside the network are those of the
logistic-regression baseline, the heads can rank windows exactly as a linear score of them, a
model round-trips through its file, and format-1 files (no statistics path) still load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.predictors.dataset import CONTEXT, HORIZONS_H, QUANTILES, RUL_CAP_H
from agents.predictors.lstm import FORMAT, STATS, TypeModel, _net, load, save, torch_window_stats, window_stats
from twin.errors import ConfigError

torch.set_num_threads(1)

FEATURES = ("vib", "temp", *CONTEXT)
STEPS = 6


def _windows(n: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    drift = rng.normal(size=(n, 1, len(FEATURES))) * np.linspace(-1, 1, STEPS)[None, :, None]
    return (rng.normal(size=(n, STEPS, len(FEATURES))) + drift).astype(np.float32)


def _model(stats: bool, fmt: str = FORMAT, seed: int = 0) -> TypeModel:
    torch.manual_seed(seed)
    net = _net(len(FEATURES), (3,), stats)
    meta = {"format": fmt, "type": "pump", "features": list(FEATURES), "channels": list(FEATURES[:2]),
            "horizons_h": list(HORIZONS_H), "quantiles": list(QUANTILES), "rul_cap_h": RUL_CAP_H, "window_h": 4 * STEPS,
            "block_h": 4, "hidden": [3], "mean": [0.0] * len(FEATURES), "std": [1.0] * len(FEATURES),
            "validation": {}, "data": [], "seed": seed}
    if stats:
        meta["stats"] = list(STATS)
        with torch.no_grad():
            net.stat_mean.copy_(torch.linspace(-0.5, 0.5, 4 * len(FEATURES)))
            net.stat_std.copy_(torch.linspace(0.5, 2.0, 4 * len(FEATURES)))
    return TypeModel(meta, net)


def test_the_network_computes_the_baselines_statistics():
    x = _windows()
    got = torch_window_stats(torch.from_numpy(x)).numpy()
    want = window_stats(x)
    assert got.shape == want.shape == (len(x), len(STATS) * len(FEATURES))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_the_heads_can_rank_as_the_logistic_regression():
    """With the LSTM state's weights at zero, every horizon's probability is a monotone function of
    one linear score of the standardised statistics: the network represents the baseline."""
    model = _model(stats=True)
    coef = np.random.default_rng(1).normal(scale=0.3, size=4 * len(FEATURES))
    with torch.no_grad():
        model.net.hazard.weight.zero_()
        model.net.hazard.weight[:, 3:] = torch.tensor(coef, dtype=torch.float32)
        model.net.hazard.bias[:] = -1.0
    x = _windows(200)
    z = (window_stats(x) - model.net.stat_mean.numpy()) / model.net.stat_std.numpy() @ coef
    p, _ = model.predict_windows(x)
    order = np.argsort(z)
    assert np.all(np.diff(p[order], axis=0) >= -1e-6)  # non-decreasing in the score, every horizon
    assert p[order[-1], 1] > p[order[0], 1] + 0.1


def test_the_statistics_path_is_used():
    """With the LSTM state's weights at zero, a drifting channel still moves the probabilities:
    through the statistics beside it."""
    model = _model(stats=True)
    with torch.no_grad():
        model.net.hazard.weight[:, :3] = 0.0
    flat = np.zeros((1, STEPS, len(FEATURES)), np.float32)
    ramp = flat.copy()
    ramp[0, :, 0] = np.linspace(-1, 1, STEPS)
    p_flat, _ = model.predict_windows(flat)
    p_ramp, _ = model.predict_windows(ramp)
    assert not np.allclose(p_flat, p_ramp)


@pytest.mark.parametrize("stats", [True, False])
def test_a_model_round_trips_through_its_file(tmp_path, stats):
    model = _model(stats)
    path = tmp_path / "m.pt"
    save({"pump": model}, path)
    back = load(path)["pump"]
    assert back.meta == model.meta and bool(back.meta.get("stats")) == stats
    assert set(back.net.state_dict()) == set(model.net.state_dict())
    x = _windows()
    for a, b in zip(model.predict_windows(x), back.predict_windows(x)):
        np.testing.assert_array_equal(a, b)


def test_a_format_1_file_loads_and_predicts_as_before(tmp_path):
    """Files written before the statistics path (format 1, no ``stats`` in the metadata) load into
    the network they were trained as."""
    model = _model(stats=False, fmt="plant-twin-lstm/1")
    path = tmp_path / "old.pt"
    torch.save({"format": "plant-twin-lstm/1", "models": {"pump": {"meta": model.meta, "state": model.net.state_dict()}}},
               path)
    back = load(path)["pump"]
    assert not hasattr(back.net, "stat_mean")
    x = _windows()
    np.testing.assert_array_equal(model.predict_windows(x)[0], back.predict_windows(x)[0])


def test_an_unknown_format_is_refused_clearly(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": "plant-twin-lstm/99", "models": {}}, path)
    with pytest.raises(ConfigError, match=r"format 'plant-twin-lstm/99'.*reads plant-twin-lstm/1, plant-twin-lstm/2"):
        load(path)


@pytest.mark.parametrize("scores,want", [
    ({"stats": 0.8, "lstm": 0.6}, "stats"),
    ({"stats": 0.6, "lstm": 0.8}, "lstm"),
    ({"stats": 0.7, "lstm": 0.7}, "lstm"),  # a tie: the simpler model
    ({"stats": None, "lstm": None}, "lstm"),  # no validation positives: no score, the simpler model
    ({"stats": 0.5, "lstm": None}, "stats"),
])
def test_auto_keeps_the_variant_with_the_better_validation_pr_auc(monkeypatch, scores, want):
    """The selection rule alone, on stand-in candidates with given validation scores."""
    from agents.predictors import lstm

    def fake(folders, type_name, settings, stats, log):
        variant = "stats" if stats else "lstm"
        m = _model(stats)
        m.meta.update(variant=variant, validation={"pr_auc_7d": scores[variant], "brier_7d": 0.1})
        return m

    monkeypatch.setattr(lstm, "_train_variant", fake)
    got = lstm.train_type([], "pump", lstm.TrainSettings(variant="auto"), log=lambda msg: None)
    assert got.meta["variant"] == want and ("stats" in got.meta) == (want == "stats")
    assert got.meta["selection"]["pr_auc_7d"] == scores


def test_an_unknown_variant_is_refused():
    from agents.predictors.lstm import TrainSettings, train_type

    with pytest.raises(ConfigError, match="--variant"):
        train_type([], "pump", TrainSettings(variant="deep"))
