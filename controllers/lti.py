"""Exact sampled simulation of a linear plant model, for tests and for checking designs in time.

The delay-free part is converted to state space and discretised with a zero-order hold at a
step ``h`` (exact for piecewise-constant input); the delay is a buffer of whole steps
(``theta`` rounded to a multiple of ``h``). :class:`LTIPlant` exposes the same small
interface as the twin's plant (``read``/``write`` at the clock's time), so identification
processes can run on either.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy.signal import cont2discrete, tf2ss

from twin.durations import TICKS_PER_DAY


class SampledLTI:
    def __init__(self, model, h: float, y0: float = 0.0, u0: float = 0.0):
        num, den = model.num_den()
        A, B, C, D = tf2ss(num, den)
        Ad, Bd, Cd, Dd, _ = cont2discrete((A, B, C, D), h, method="zoh")
        if abs(float(Dd[0, 0])) > 0:
            raise ValueError("SampledLTI needs a strictly proper model")
        self.Ad, self.Bd, self.Cd = Ad, Bd[:, 0], Cd[0]
        self.h = h
        self.n_delay = int(round(model.theta / h))
        self.u0, self.y0 = u0, y0
        self.x = np.zeros(Ad.shape[0])
        self.buffer = deque([0.0] * self.n_delay)
        self.y = y0

    def step(self, u: float) -> float:
        """Advance one step ``h`` with input ``u`` held; returns the output at the end of the step."""
        self.buffer.append(u - self.u0)
        ud = self.buffer.popleft()
        self.x = self.Ad @ self.x + self.Bd * ud
        self.y = self.y0 + float(self.Cd @ self.x)
        return self.y


def simulate_loop(model, controller, Ts: float, n_samples: int, substeps: int = 4,
                  disturbance: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Closed loop of ``controller`` (``step(y) -> u``) on ``model`` sampled every ``Ts``.

    ``disturbance`` is a constant input disturbance added at the plant input from the start.
    Returns the measurements and controller outputs at the samples.
    """
    plant = SampledLTI(model, Ts / substeps)
    ys = np.empty(n_samples)
    us = np.empty(n_samples)
    y = plant.y
    for k in range(n_samples):
        u = controller.step(y)
        ys[k], us[k] = y, u
        for _ in range(substeps):
            y = plant.step(u + disturbance)
    return ys, us


class LTIPlant:
    """A SampledLTI driven by a SimPy clock (ticks of one second, model time in days)."""

    def __init__(self, env, model, h_d: float, y0: float = 0.0, u0: float = 0.0):
        self.env = env
        self.sim = SampledLTI(model, h_d, y0, u0)
        self.h_ticks = max(1, int(round(h_d * TICKS_PER_DAY)))
        self.t = env.now
        self.u = u0

    def sync(self) -> None:
        while self.t + self.h_ticks <= self.env.now:
            self.sim.step(self.u)
            self.t += self.h_ticks

    def read(self) -> float:
        self.sync()
        return self.sim.y

    def write(self, u: float) -> None:
        self.sync()
        self.u = u
