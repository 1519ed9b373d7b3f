"""Training windows away from failures are drawn at every hour of the day: at a fixed daily
stride they all end at one hour while those near failures end at every hour, and the hour alone
(the loads and the air temperature follow the day) would tell them apart."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from agents.predictors.dataset import HORIZONS_H, windows


def _series(n_assets: int = 20, n_blocks: int = 2000, block_h: float = 4.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t_end = (np.arange(n_blocks) + 1) * block_h
    fail_at = rng.uniform(0.3, 0.9, n_assets) * t_end[-1]
    htf = fail_at[:, None] - t_end[None, :]
    htf[htf < 0] = np.nan
    mode = np.where(np.isfinite(htf), "wear", "")
    return SimpleNamespace(assets=[f"P{i}" for i in range(n_assets)], up=np.ones((n_assets, n_blocks), dtype=bool),
                           htf_h=htf, t_end_h=t_end, record_end_h=float(t_end[-1]), next_mode=mode)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_windows_away_from_failures_end_at_every_hour(seed):
    ts = _series(seed=seed)
    w = windows(ts, 42, 6, 1, draw=np.random.default_rng(seed))
    near = np.nan_to_num(w.htf_h, nan=np.inf) <= HORIZONS_H[-1]
    phase = w.end[~near] % 6
    share = np.bincount(phase, minlength=6) / phase.size
    assert phase.size > 5000 and np.all(np.abs(share - 1 / 6) < 0.03)  # ~6,000 draws: sd of a share 0.005
    # about one far window in six is kept; every block near a failure is
    n_far_blocks = int((np.nan_to_num(ts.htf_h[:, 41:], nan=np.inf) > HORIZONS_H[-1]).sum())
    assert abs(phase.size / n_far_blocks - 1 / 6) < 0.02
    assert near.sum() == int((np.nan_to_num(ts.htf_h[:, 41:], nan=np.inf) <= HORIZONS_H[-1]).sum())


def test_without_a_draw_the_stride_is_fixed():
    ts = _series()
    w = windows(ts, 42, 6, 1)
    near = np.nan_to_num(w.htf_h, nan=np.inf) <= HORIZONS_H[-1]
    assert set(np.unique(w.end[~near] % 6)) == {0}
