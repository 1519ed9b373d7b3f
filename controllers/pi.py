"""Discrete PI controller with tracking anti-windup and output limits, run as a SimPy process.

Control law (the BSM1 default controllers, Alex et al. 2008, section 4.2, in discrete time):

    e_k = r - y_k
    v_k = u_offset + K e_k + I_k
    u_k = clip(v_k, u_min, u_max)
    I_{k+1} = I_k + Ts (K e_k / Ti + (u_k - v_k) / Tt)

i.e. the continuous BSM1 PI, ``u = u0 + K (e + 1/Ti int e dt)`` with back-calculation
(tracking time constant Tt), integrated with forward Euler at the sample time Ts. The
integral state is updated after the output is applied, so a change of setpoint acts
within one sample. Times in days, like the plant's rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class DiscretePI:
    K: float
    Ti_d: float
    Tt_d: float
    setpoint: float
    offset: float
    u_min: float
    u_max: float
    Ts_d: float
    integral: float = 0.0
    #: last values, for recording
    last: dict = field(default_factory=lambda: {"y": np.nan, "u": np.nan, "e": np.nan})

    def step(self, y: float) -> float:
        """One sample: measurement ``y`` in, actuator value out."""
        e = self.setpoint - y
        v = self.offset + self.K * e + self.integral
        u = min(max(v, self.u_min), self.u_max)
        self.integral += self.Ts_d * (self.K * e / self.Ti_d + (u - v) / self.Tt_d)
        self.last = {"y": y, "u": u, "e": e}
        return u

    def initialise(self, u_now: float, y_now: float) -> None:
        """Bumpless start: choose the integral so the first output equals ``u_now``."""
        self.integral = u_now - self.offset - self.K * (self.setpoint - y_now)


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


def t90_factor(order: int) -> float:
    """T90 / T of a cascade of ``order`` equal first-order lags: the time at which the step
    response 1 - exp(-s) sum_{k<n} s^k/k! reaches 0.9 (in units of one lag's time constant)."""
    from scipy.special import gammaincinv

    return float(gammaincinv(order, 0.9))


def pi_process(env, plant, name: str, spec, ctrl: DiscretePI, read, act_index: int, sensor: Sensor | None,
               actuator: Sensor | None = None):
    """SimPy process: sample, compute, write the actuator, every ``spec.sample_time``.

    ``actuator`` (a noise-free :class:`Sensor`) models actuator dynamics between the
    controller output and the plant input."""
    from twin.durations import parse_duration

    period = parse_duration(spec.sample_time)
    while True:
        y_true = read()
        y = sensor.measure(y_true) if sensor is not None else y_true
        u = ctrl.step(y)
        plant.set_input(act_index, actuator.measure(u) if actuator is not None else u)
        yield env.timeout(period)
