"""Platt scaling and the alarm level on validation windows sampled unevenly: windows near failures
are sampled every block, the rest once a day, and each is weighted by the inverse of its sampling
rate. The calibrated probabilities then average to the plant's base rate (every window), not to
the oversampled one; the stand-in model gives a fixed score so the test checks the calibration."""

from __future__ import annotations

import numpy as np
import pytest

from agents.predictors.dataset import HORIZONS_H
from agents.predictors.lstm import _platt, best_f1_threshold, sampling_weights


class StandIn:
    meta: dict = {}

    def predict_windows(self, x):
        p = np.repeat(x[:, :1], len(HORIZONS_H), axis=1).astype(float)
        return p, np.zeros((len(x), 3))


def _population(rng, n):
    """Every window of a plant: 2 % within 30 days of a failure (htf), the rest far; the score is
    higher near failures; the label (one per horizon) is 'fails within the horizon'."""
    htf = np.where(rng.random(n) < 0.02, rng.uniform(0, 720, n), np.nan)
    score = 1 / (1 + np.exp(-(np.where(np.isfinite(htf), 1.0, -1.0) + rng.standard_normal(n))))
    y = (np.nan_to_num(htf, nan=np.inf)[:, None] <= np.array(HORIZONS_H)[None, :]).astype(float)
    return score, htf, y


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_platt_averages_to_the_plants_base_rate(seed):
    rng = np.random.default_rng(seed)
    score, htf, y = _population(rng, 400_000)
    near = np.isfinite(htf)
    kept = near | (rng.random(len(htf)) < 1 / 6)  # every window near failures, one in six elsewhere
    w = sampling_weights(htf[kept], 6)
    assert set(np.unique(w)) == {1.0, 6.0}
    x, yk, known = score[kept][:, None], y[kept], np.ones_like(y[kept])
    cal = _platt(StandIn(), x, yk, known, w)
    unweighted = _platt(StandIn(), x, yk, known, np.ones(len(w)))
    h = HORIZONS_H.index(168.0)

    def mean_p(c):
        q = np.clip(score, 1e-6, 1 - 1e-6)
        return np.mean(1 / (1 + np.exp(-(c["a"][h] * np.log(q / (1 - q)) + c["b"][h]))))

    base = y[:, h].mean()
    assert mean_p(cal) == pytest.approx(base, rel=0.1)
    assert mean_p(unweighted) > 2 * base  # calibrated to the oversampled windows, it overstates


def test_weighted_alarm_level_counts_each_window_as_often_as_it_stands_for():
    """Positives scored 0.8 and 0.5, a negative at 0.7 between them: counted once, alarming at
    0.5 has the better F1 (0.8 against 0.67); standing for six windows (sampled one in six), the
    negative makes 0.8 the better level (F1 0.67 against 0.4)."""
    y = np.array([1, 1, 0, 0, 0])
    s = np.array([0.8, 0.5, 0.7, 0.2, 0.2])
    assert best_f1_threshold(y, s) == pytest.approx(0.5)
    assert best_f1_threshold(y, s, np.ones(5)) == pytest.approx(0.5)
    level = best_f1_threshold(y, s, np.array([1, 1, 6, 1, 1.0]))
    assert 0.7 < level <= 0.8  # alarms on the 0.8 alone
