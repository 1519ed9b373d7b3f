"""The conformal calibration of the LSTM's remaining-life interval (Romano et al. 2019): on
exchangeable windows it brings an interval that was too narrow or too wide to its nominal 80 %,
and it never moves the median. A stand-in model gives quantiles around a noisy median so the
test checks the calibration, not training."""

from __future__ import annotations

import numpy as np
import pytest

from agents.predictors.lstm import _conformal_rul, apply_rul_calibration


class StandIn:
    """Quantiles median +- half_width (normalised log scale) around r + noise, as predict_windows gives them."""

    meta: dict = {}

    def __init__(self, half_width: float):
        self.half_width = half_width

    def quantiles(self, x: np.ndarray) -> np.ndarray:
        med = x[:, 0]
        return np.stack([med - self.half_width, med, med + self.half_width], axis=1)

    def raw_outputs(self, x):
        return np.zeros((len(x), 4), np.float32), self.quantiles(x).astype(np.float32)


def sample(rng, n):
    r = rng.uniform(0.2, 0.95, n)  # remaining life below the cap (normalised log scale)
    x = (r + 0.1 * rng.standard_normal(n))[:, None]  # the model's median estimate
    return x, r


@pytest.mark.parametrize("half_width", [0.02, 0.5])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_calibrated_interval_covers_eighty_percent(half_width, seed):
    rng = np.random.default_rng(seed)
    model = StandIn(half_width)
    x, r = sample(rng, 3000)
    cal = _conformal_rul(model, x, r.astype(np.float32), np.ones(len(r), dtype=np.float32), np.ones(len(r)))
    assert cal["method"] == "cqr-asymmetric" and cal["windows"] == len(r)
    xt, rt = sample(rng, 20000)
    raw = model.quantiles(xt)
    shifted = apply_rul_calibration(raw, cal)
    np.testing.assert_array_equal(shifted[:, 1], raw[:, 1])  # the median never moves
    q = shifted.clip(0.0, 1.0)  # as predict_windows: 0 h to the cap
    inside = (q[:, 0] <= rt) & (rt <= q[:, 2])
    raw_cov = np.mean((raw[:, 0] <= rt) & (rt <= raw[:, 2]))
    assert abs(np.mean(inside) - 0.8) < 0.04, (raw_cov, np.mean(inside))
    assert abs(raw_cov - 0.8) > 0.1  # the raw interval was far from 80 %
    assert np.all(q[:, 0] <= q[:, 1]) and np.all(q[:, 1] <= q[:, 2])


def test_windows_far_from_failure_do_not_calibrate():
    """Remaining life at the cap (censored) says nothing about the interval: without a window
    before a failure there is no calibration."""
    model = StandIn(0.1)
    x = np.ones((50, 1))
    assert _conformal_rul(model, x, np.ones(50, dtype=np.float32), np.ones(50, dtype=np.float32), np.ones(50)) is None
