"""Objectives of evaluated futures: pure functions of a fork's recorded window.

An objective is a picklable callable ``objective(fork, start_s, end_s)``; it reads the fork's
recorded series (:meth:`twin.twin.Twin.series`) and changes nothing. ``columns`` tells the
evaluator what the forks must record (everything else is not recorded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def window_mean(times_s: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Time-weighted mean of each column over the samples' span (trapezoidal rule); the plain
    value for a single sample."""
    if times_s.size == 0:
        return np.full(values.shape[1] if values.ndim == 2 else 1, np.nan)
    if times_s.size == 1:
        return values[0].astype(float)
    dt = np.diff(times_s).astype(float)
    mid = 0.5 * (values[1:] + values[:-1])
    return (mid * dt[:, None]).sum(axis=0) / dt.sum()


@dataclass(frozen=True)
class WindowMeans:
    """Time-weighted means of ``columns`` over the evaluated window, as a dict."""

    columns: tuple[str, ...]

    def __call__(self, fork, start_s: int, end_s: int) -> dict[str, float]:
        t, cols, v = fork.series(list(self.columns), start_s, end_s)
        return {c: float(m) for c, m in zip(cols, window_mean(t, v))}
