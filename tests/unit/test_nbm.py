"""The normal-behaviour model of the LSTM's inputs: a least-squares fit of each channel on the
operating context over healthy blocks only, and the residuals it appends to the readings."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from agents.predictors.dataset import CONTEXT, HORIZONS_H, QUANTILES, RUL_CAP_H
from agents.predictors.lstm import FORMAT, HEALTHY_H, TypeModel, _net, fit_nbm, load, save, with_residuals

FEATURES = ("vib", "flow", *CONTEXT)
TRUE = np.array([[2.0, 1.5, 0.05], [0.5, -3.0, 0.0]])  # per channel: constant, load, ambient


def _series(seed: int, n_assets: int = 6, n_blocks: int = 3000, block_h: float = 4.0, damage: float = 5.0,
            load: float | None = None):
    """Readings linear in load and ambient temperature plus noise; each asset fails once at a
    random block, its readings offset by ``damage`` over the 1,000 h before."""
    rng = np.random.default_rng(seed)
    t_end = (np.arange(n_blocks) + 1) * block_h
    load = rng.uniform(0.2, 1.0, (n_assets, n_blocks)) if load is None else np.full((n_assets, n_blocks), load)
    amb = 12 + 8 * np.sin(2 * np.pi * t_end / 8760)[None, :] + rng.normal(0, 1, (n_assets, n_blocks))
    fail_at = rng.uniform(0.3, 0.9, n_assets) * t_end[-1]
    htf = fail_at[:, None] - t_end[None, :]
    htf[htf < 0] = np.nan  # one failure each, none recorded after it
    ch = TRUE[:, 0][None, None, :] + load[..., None] * TRUE[:, 1] + amb[..., None] * TRUE[:, 2]
    ch = ch + rng.normal(0, 0.2, ch.shape) + damage * ((htf >= 0) & (htf < 1000.0))[..., None]
    x = np.concatenate([ch, load[..., None], amb[..., None], np.zeros_like(load)[..., None]], axis=2)
    up = np.ones((n_assets, n_blocks), dtype=bool)
    return SimpleNamespace(features=FEATURES, x=x, up=up, htf_h=htf, t_end_h=t_end, record_end_h=float(t_end[-1]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fit_recovers_the_healthy_response_and_leaves_damage_out(seed):
    s = _series(seed)
    nbm = fit_nbm([s], [np.arange(6)], ("vib", "flow"))
    coef = np.array(nbm["coef"])
    # 0.2 noise over thousands of healthy blocks: coefficients to a few hundredths; the damaged
    # blocks (offset 5, a tenth of the record) would move the constant by ~0.5 if they were fitted
    np.testing.assert_allclose(coef, TRUE, atol=0.06)
    assert nbm["regressors"] == ["load", "ambient_c"] and nbm["healthy_h"] == HEALTHY_H
    r = with_residuals(s.x, FEATURES, nbm)[..., len(FEATURES):]
    near = (s.htf_h >= 0) & (s.htf_h < 1000.0)
    healthy = ~np.isfinite(s.htf_h) | (s.htf_h >= HEALTHY_H)
    assert abs(r[healthy].mean()) < 0.02 and 0.15 < r[healthy].std() < 0.25
    np.testing.assert_allclose(r[near].mean(axis=0), 5.0, atol=0.1)


def test_a_missing_reading_leaves_its_residual_missing():
    s = _series(0, n_assets=2, n_blocks=800)
    nbm = fit_nbm([s], [np.arange(2)], ("vib", "flow"))
    x = s.x[:, :5].copy()
    x[0, 1, 0] = np.nan
    x[1, 2, 2] = np.nan  # the load
    r = with_residuals(x, FEATURES, nbm)
    assert r.shape == (2, 5, len(FEATURES) + 2)
    assert np.isnan(r[0, 1, len(FEATURES)]) and np.isfinite(r[0, 1, len(FEATURES) + 1])
    assert np.isnan(r[1, 2, len(FEATURES):]).all()


def test_a_model_with_residuals_reads_raw_readings_and_round_trips(tmp_path):
    s = _series(1, n_assets=2, n_blocks=800)
    nbm = fit_nbm([s], [np.arange(2)], ("vib", "flow"))
    inputs = [*FEATURES, "vib_residual", "flow_residual"]
    torch.manual_seed(0)
    meta = {"format": FORMAT, "type": "pump", "features": list(FEATURES), "channels": ["vib", "flow"],
            "inputs": inputs, "nbm": nbm, "horizons_h": list(HORIZONS_H), "quantiles": list(QUANTILES),
            "rul_cap_h": RUL_CAP_H, "window_h": 24, "block_h": 4, "hidden": [3], "mean": [0.0] * len(inputs),
            "std": [1.0] * len(inputs), "validation": {}, "data": [], "seed": 0}
    model = TypeModel(meta, _net(len(inputs), (3,)))
    xw = s.x[:, -6:].astype(float)
    z = model.normalise(xw)
    assert z.shape == (2, 6, len(inputs))
    np.testing.assert_allclose(z[..., len(FEATURES):], with_residuals(xw, FEATURES, nbm)[..., len(FEATURES):], rtol=1e-5)
    save({"pump": model}, tmp_path / "m.pt")
    back = load(tmp_path / "m.pt")["pump"]
    assert back.inputs == inputs
    np.testing.assert_array_equal(back.predict_windows(back.normalise(xw))[0], model.predict_windows(z)[0])


def test_context_that_never_moved_is_not_fitted():
    """At one load the channel's response to load is unknown: its coefficient is 0, the constant
    all in the intercept, so a reading at another load is not mistaken for a large residual by
    an arbitrary split of the constant."""
    s = _series(3, n_assets=4, n_blocks=1500, load=1.0)
    healthy_truth = TRUE[:, 0] + TRUE[:, 1] * 1.0  # the channels' constant at that load
    nbm = fit_nbm([s], [np.arange(4)], ("vib", "flow"))
    coef = np.array(nbm["coef"])
    assert nbm["fitted"] == ["ambient_c"] and np.all(coef[:, 1] == 0.0)
    np.testing.assert_allclose(coef[:, 0], healthy_truth, atol=0.1)
    np.testing.assert_allclose(coef[:, 2], TRUE[:, 2], atol=0.02)
