"""Sensor and actuator models: lag cascades with a given T90, range clipping and noise.

BSM1 sensor classes (Alex et al. 2008, section 4.3; Rieger et al. 2003): an n-th order
cascade of equal first-order lags reaching 90 % of a step at T90, a measuring range and
white Gaussian noise. Actuators (KLa) are modelled by the same lag cascade without noise.
"""

from __future__ import annotations

import numpy as np


class Sensor:
    """Measurement model: an n-th order cascade of equal first-order lags with a given T90,
    an optional measuring range (clipping) and additive Gaussian noise.

    The lag cascade is advanced at the controller's sample time with the exact discrete
    solution for a piecewise-constant input (zero-order hold), so it is a sampled version of
    the BSM1 sensor transfer functions (Alex et al. 2008, section 4.3), not a continuous one.
    For an n-th order cascade, T90 = t90_factor(n) * T where T is each lag's time constant.
    """

    def __init__(self, T90_d: float, order: int, noise_sd: float, value_range, rng, Ts_d: float):
        self.order = order
        self.noise_sd = noise_sd
        self.range = value_range
        self.rng = rng
        self.states: list[float] | None = None
        self._noise = np.zeros(0)
        self._k = 0
        if T90_d > 0:
            T = T90_d / t90_factor(order)
            self.a = float(np.exp(-Ts_d / T))
        else:
            self.a = 0.0

    def measure(self, true_value: float) -> float:
        if self.states is None:
            self.states = [float(true_value)] * self.order
        a = self.a
        b = 1.0 - a
        prev = float(true_value)
        st = self.states
        for i in range(self.order):
            prev = st[i] = a * st[i] + b * prev
        y = prev
        if self.noise_sd > 0:
            if self._k == self._noise.size:  # draw noise in blocks: same stream, fewer calls
                self._noise = self.rng.standard_normal(1024)
                self._k = 0
            y += self.noise_sd * self._noise[self._k]
            self._k += 1
        if self.range is not None:
            y = min(max(y, self.range[0]), self.range[1])
        return y


class Instrument:
    """A plant instrument outside any loop (what operators read): samples a signal through a
    :class:`Sensor` every ``period_s`` and reports each reading ``delay_samples`` samples later
    (a dead time of a whole number of samples: sample transport, an analyser's cycle)."""

    def __init__(self, name: str, read, sensor: Sensor | None, period_s: int, delay_samples: int,
                 signal: str | None = None):
        self.name = name
        self.signal = signal  # the signal's name (for the compiled sampled layer)
        self.read = read
        self.sensor = sensor
        self.period_s = period_s
        self.pending: list[float] = []
        self.delay = delay_samples
        self.value = float("nan")

    def sample(self) -> None:
        y = self.read()
        if self.sensor is not None:
            y = self.sensor.measure(y)
        self.pending.append(float(y))
        if len(self.pending) > self.delay:
            self.value = self.pending.pop(0)

    def process(self, env, wake_at: int | None = None):
        if wake_at is not None:
            yield env.timeout(wake_at - env.now)
        while True:
            self.sample()
            yield env.timeout(self.period_s)

    def checkpoint_state(self) -> dict:
        return {"sensor": self.sensor, "pending": self.pending, "value": self.value}

    def restore_state(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def t90_factor(order: int) -> float:
    """T90 / T of a cascade of ``order`` equal first-order lags: the time at which the step
    response 1 - exp(-s) sum_{k<n} s^k/k! reaches 0.9 (in units of one lag's time constant)."""
    from scipy.special import gammaincinv

    return float(gammaincinv(order, 0.9))
