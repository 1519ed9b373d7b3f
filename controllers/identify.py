"""Loop identification: open-loop step tests and relay-feedback tests, as SimPy processes,
and the model fits behind them.

* Step test: the actuator steps from its current value by ``du`` and the response is recorded
  for a given time. FOPDT and SOPDT models are fitted by nonlinear least squares (SciPy
  ``least_squares``) started from the two-point method of Smith (28 % and 63 % of the final
  change: tau = 1.5 (t63 - t28), theta = t63 - tau); the SOPDT is kept when it lowers the
  residual enough to pay for its extra parameter (Akaike information criterion).
* Relay test (Åström and Hägglund 1984, *Automatic tuning of simple regulators with
  specifications on phase and amplitude margins*, Automatica 20(5)): the actuator switches
  between u0 + d and u0 - d when the error leaves a hysteresis band +-eps. From the limit cycle
  (amplitude a, period Pu): Ku = 4 d / (pi sqrt(a^2 - eps^2)) (describing function).

The processes talk to the plant through two callables, ``read()`` and ``write(u)``, so they
run on the twin's plant and on a linear test plant alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from controllers.models import FOPDT, SOPDT
from twin.durations import TICKS_PER_DAY


@dataclass
class StepData:
    t: np.ndarray  # time since the (first) step (model time unit: days)
    y: np.ndarray
    du: float  # size of the first step
    y0: float
    #: every input change as (time since the first step, change); a plain step is [(0, du)]
    changes: list[tuple[float, float]] | None = None

    def input_changes(self) -> list[tuple[float, float]]:
        return self.changes if self.changes else [(0.0, self.du)]

    def response(self, model) -> np.ndarray:
        """The model's output change for this test's input sequence (superposition of steps)."""
        out = np.zeros_like(self.t, dtype=float)
        for t_i, du_i in self.input_changes():
            out += du_i * model.step(self.t - t_i)
        return out


@dataclass
class Identified:
    model: FOPDT | SOPDT
    fopdt: FOPDT
    sopdt: SOPDT | None
    rms_fopdt: float
    rms_sopdt: float | None
    chosen: str
    details: dict = field(default_factory=dict)


def _smith_start(t: np.ndarray, dy: np.ndarray) -> tuple[float, float, float]:
    k_dy = float(np.mean(dy[-max(3, len(dy) // 20):]))
    frac = dy / k_dy if k_dy != 0 else dy
    t28 = float(np.interp(0.283, np.maximum.accumulate(frac), t))
    t63 = float(np.interp(0.632, np.maximum.accumulate(frac), t))
    tau = max(1.5 * (t63 - t28), (t[1] - t[0]) * 0.5)
    theta = max(t63 - tau, 0.0)
    return k_dy, tau, theta


def fit_step(data: StepData, allow_sopdt: bool = True, drift: bool = False) -> Identified:
    """Fit FOPDT (and SOPDT) models to a step response.

    ``drift``: also fit a linear drift of the output (a slowly changing load during the test);
    the models then describe the response to the step on top of that drift.
    """
    t, dy = data.t, data.y - data.y0
    if abs(data.du) == 0:
        raise ValueError("the step size du must not be zero")
    changes = data.input_changes()
    first = t < changes[1][0] if len(changes) > 1 else np.ones_like(t, dtype=bool)
    k_dy, tau0, theta0 = _smith_start(t[first], dy[first])
    span = float(t[-1] - t[0])
    scale = max(np.max(np.abs(dy)), 1e-12)

    nd = 1 if drift else 0

    def res1(p):
        k, tau, theta = p[:3]
        trend = p[3] * t if drift else 0.0
        return (data.response(FOPDT(k, tau, theta)) + trend - dy) / scale

    lo1 = [-np.inf, 1e-9 * span + 1e-12, 0.0] + [-np.inf] * nd
    hi1 = [np.inf, 10 * span, span] + [np.inf] * nd
    p0 = [k_dy / data.du, min(max(tau0, lo1[1] * 2), hi1[1] / 2), min(theta0, span / 2)] + [0.0] * nd
    r1 = least_squares(res1, p0, bounds=(lo1, hi1), x_scale="jac")
    f = FOPDT(*map(float, r1.x[:3]))
    rms1 = float(np.sqrt(np.mean(r1.fun**2))) * scale
    best, chosen, s, rms2 = f, "FOPDT", None, None
    if allow_sopdt:
        def res2(p):
            k, t1, t2, theta = p[:4]
            trend = p[4] * t if drift else 0.0
            return (data.response(SOPDT(k, t1, t2, theta)) + trend - dy) / scale

        lo2 = [-np.inf, lo1[1], lo1[1], 0.0] + [-np.inf] * nd
        hi2 = [np.inf, 10 * span, 10 * span, span] + [np.inf] * nd
        d0 = [float(r1.x[3])] if drift else []
        starts = [[f.k, f.tau * 0.8, f.tau * 0.2 + lo1[1], f.theta * 0.5] + d0,
                  [f.k, f.tau * 0.5, f.tau * 0.5 + lo1[1], max(f.theta - 0.1 * f.tau, 0.0)] + d0]
        fits = [least_squares(res2, np.clip(p, np.array(lo2) * 1.000001, np.array(hi2) * 0.999999),
                              bounds=(lo2, hi2), x_scale="jac") for p in starts]
        r2 = min(fits, key=lambda r: r.cost)
        k2, a, b, th2 = map(float, r2.x[:4])
        s = SOPDT(k2, max(a, b), min(a, b), th2)
        rms2 = float(np.sqrt(np.mean(r2.fun**2))) * scale
        n = len(t)
        aic1 = n * math.log(max(rms1, 1e-300) ** 2) + 2 * (3 + nd)
        aic2 = n * math.log(max(rms2, 1e-300) ** 2) + 2 * (4 + nd)
        if aic2 < aic1 - 2 and s.tau2 > 1e-6 * s.tau1:
            best, chosen = s, "SOPDT"
    return Identified(best, f, s, rms1, rms2, chosen)


@dataclass
class RelayResult:
    Ku: float
    Pu: float  # model time unit (days)
    amplitude: float
    periods: int
    t: np.ndarray
    y: np.ndarray
    u: np.ndarray
    converged: bool


def analyse_relay(t: np.ndarray, y: np.ndarray, d: float, eps: float, setpoint: float,
                  n_last: int = 3) -> tuple[float, float, float, int]:
    """Ultimate gain and period from a relay limit cycle (last ``n_last`` periods)."""
    e = y - setpoint
    ups = np.nonzero((e[:-1] < 0) & (e[1:] >= 0))[0]
    if ups.size < n_last + 2:
        return math.nan, math.nan, math.nan, int(max(ups.size - 1, 0))
    # interpolated upward zero crossings
    tc = t[ups] + (0 - e[ups]) / (e[ups + 1] - e[ups]) * (t[ups + 1] - t[ups])
    periods = np.diff(tc)[-n_last:]
    Pu = float(np.mean(periods))
    start = ups[-n_last - 1]
    seg = y[start:]
    a = 0.5 * (float(np.max(seg)) - float(np.min(seg)))
    if a <= eps:
        return math.nan, Pu, a, ups.size - 1
    Ku = 4 * d / (math.pi * math.sqrt(a * a - eps * eps))
    return Ku, Pu, a, ups.size - 1


def relay_test(env, read, write, u0: float, d: float, eps: float, setpoint: float, Ts_ticks: int,
               n_periods: int = 6, max_ticks: int = 30 * 86400, direction: float = 1.0):
    """SimPy process: relay feedback around ``u0`` until ``n_periods`` limit-cycle periods, then
    restore ``u0``. ``direction`` is the sign of the process gain. Returns a :class:`RelayResult`."""
    t0 = env.now
    ts, ys, us = [], [], []
    u = u0 + d * direction
    crossings = 0
    Ku = Pu = a = math.nan
    n = 0
    while True:
        y = read()
        if ys and ys[-1] < setpoint <= y:
            crossings += 1
        e = setpoint - y
        if e > eps:
            u = u0 + d * direction
        elif e < -eps:
            u = u0 - d * direction
        write(u)
        ts.append((env.now - t0) / TICKS_PER_DAY)
        ys.append(y)
        us.append(u)
        if crossings >= n_periods + 1 or env.now - t0 >= max_ticks:
            t_arr, y_arr = np.array(ts), np.array(ys)
            Ku, Pu, a, n = analyse_relay(t_arr, y_arr, d, eps, setpoint)
            write(u0)
            return RelayResult(Ku, Pu, a, n, t_arr, y_arr, np.array(us), bool(n >= n_periods and math.isfinite(Ku)))
        yield env.timeout(Ts_ticks)


def step_test(env, read, write, u0: float, du: float, duration_ticks: int, Ts_ticks: int,
              baseline_samples: int = 10, pattern: str = "step"):
    """SimPy process: record ``baseline_samples`` at ``u0`` (the starting level is their mean, so
    one noisy sample does not bias the fit), then apply the test input, sampling ``read`` every
    ``Ts_ticks``; restore ``u0`` and return the :class:`StepData`.

    ``pattern``: ``step`` holds u0 + du for ``duration_ticks``; ``doublet`` holds u0 + du, then
    u0 - du, then u0, each for a third of ``duration_ticks``: symmetric about the operating
    point, so a nonlinear plant is linearised there and slow drifts largely cancel.
    """
    base = []
    for _ in range(baseline_samples):
        base.append(read())
        yield env.timeout(Ts_ticks)
    t0 = env.now
    y0 = float(np.mean(base)) if base else read()
    ts, ys = [0.0], [read()]
    if pattern == "doublet":
        third = duration_ticks // 3
        plan = [(0, du), (third, -2 * du), (2 * third, du)]
    else:
        plan = [(0, du)]
    level = u0
    changes = []
    k = 0
    while True:
        elapsed = env.now - t0
        while k < len(plan) and plan[k][0] <= elapsed:
            level += plan[k][1]
            write(level)
            changes.append((elapsed / TICKS_PER_DAY, plan[k][1]))
            k += 1
        if elapsed >= duration_ticks:
            break
        yield env.timeout(Ts_ticks)
        ts.append((env.now - t0) / TICKS_PER_DAY)
        ys.append(read())
    write(u0)
    return StepData(np.array(ts), np.array(ys), du, y0, changes)
