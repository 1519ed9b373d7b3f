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
    noise_sd: float = math.nan  # measurement noise measured before the test
    repeats: int = 1  # repetitions of the test pattern in the record

    def input_changes(self) -> list[tuple[float, float]]:
        return self.changes if self.changes else [(0.0, self.du)]

    def response(self, model) -> np.ndarray:
        """The model's output change for this test's input sequence (superposition of steps)."""
        out = np.zeros_like(self.t, dtype=float)
        for t_i, du_i in self.input_changes():
            out += du_i * model.step(self.t - t_i)
        return out


@dataclass
class FitBounds:
    """What is known about the loop before the test, in the model's time unit.

    ``theta_min``: the dead time the fit may not go below (the known measurement and actuator
    delay, see :func:`known_delay`); ``tau_min``/``tau_max``: the time constants the test can
    resolve (default: half a sample, and three times the longest constant-input phase of the
    test); ``y_range``: the sensor's measuring range: readings at its ends are clipped, not
    measured, and are left out of the fit."""

    theta_min: float = 0.0
    tau_min: float | None = None
    tau_max: float | None = None
    y_range: tuple[float, float] | None = None


@dataclass
class Identified:
    model: FOPDT | SOPDT
    fopdt: FOPDT
    sopdt: SOPDT | None
    rms_fopdt: float
    rms_sopdt: float | None
    chosen: str
    details: dict = field(default_factory=dict)
    #: 95 % confidence half-widths relative to each parameter of ``model`` (NaN: at a bound, fixed)
    rel_ci: dict = field(default_factory=dict)
    #: the SOPDT's improvement over the FOPDT: F statistic and its p-value
    structure_p: float = math.nan
    n_used: int = 0

    def determined(self, max_gain_ci: float, max_lag_ci: float) -> str:
        """Why the model is not determined well enough to design on, or an empty string: the 95 %
        interval of the gain wider than +-``max_gain_ci`` of it, or that of the time constant
        (a SOPDT's sum of lags) wider than +-``max_lag_ci``."""
        gk, gt = self.rel_ci.get("k", math.inf), self.rel_ci.get("lag_sum", math.inf)
        why = []
        if not gk <= max_gain_ci:
            why.append(f"gain known to +-{100 * gk:.0f} % (95 %), more than {100 * max_gain_ci:.0f} %")
        if not (gt <= max_lag_ci or math.isnan(gt)):
            why.append(f"time constant known to +-{100 * gt:.0f} % (95 %), more than {100 * max_lag_ci:.0f} %")
        return "; ".join(why)


def instrument_lags(sensor_T90_d: float = 0.0, sensor_order: int = 1, actuator_T90_d: float = 0.0,
                    actuator_order: int = 1) -> list[float]:
    """Every known first-order lag of a loop's instruments (sensor and actuator cascades of n
    equal lags reaching 90 % at T90), in the T90's time unit."""
    from controllers.sensors import t90_factor

    lags: list[float] = []
    for T90, n in ((sensor_T90_d, sensor_order), (actuator_T90_d, actuator_order)):
        if T90 > 0:
            lags += [T90 / t90_factor(n)] * n
    return lags


def known_delay(lags: list[float], dead_time_d: float = 0.0) -> float:
    """The least dead time a loop's identified FOPDT/SOPDT can have, from its instruments: the
    analyser's dead time plus the instruments' lags as Skogestad's half rule (2003) reduces them
    for a process whose own lag dominates them: every lag goes into the delay but half of the
    largest (which goes into the time constant). A process slower than its instruments is the
    case the fit's ``tau_min`` (the largest instrument lag) enforces."""
    return dead_time_d + (sum(lags) - max(lags) / 2 if lags else 0.0)


def _unit_responses(t: np.ndarray, changes, shapes) -> np.ndarray:
    """Responses (one row per shape) of unit-gain models to the test's input changes.
    ``shapes``: rows of (tau1, tau2, theta); tau2 = 0 for a first-order lag."""
    out = np.zeros((len(shapes), t.size))
    a, b, th = (shapes[:, i][:, None] for i in range(3))
    for t_i, du_i in changes:
        tt = np.maximum(t[None, :] - t_i - th, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            first = 1.0 - np.exp(-tt / a)
            equal = np.abs(a - b) < 1e-9 * a
            second = np.where(equal, 1.0 - (1.0 + tt / a) * np.exp(-tt / a),
                              1.0 - (a * np.exp(-tt / a) - b * np.exp(-tt / np.where(b > 0, b, 1.0))) / (a - b))
        out += du_i * np.where(b > 0, second, first)
    return out


def _profile(t, dy, changes, shapes, drift: bool) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares residual (and gain) of every shape, the gain (and drift) solved exactly:
    variable projection, so the nonlinear search is over the shape only and is a plain grid."""
    R = _unit_responses(t, changes, shapes)
    if not drift:
        rr = np.einsum("ij,ij->i", R, R)
        ry = R @ dy
        k = np.where(rr > 0, ry / np.where(rr > 0, rr, 1.0), 0.0)
        return float(dy @ dy) - k * ry, k
    tt = float(t @ t)
    rt = R @ t
    rr = np.einsum("ij,ij->i", R, R)
    ry, ty = R @ dy, float(t @ dy)
    det = rr * tt - rt * rt
    ok = np.abs(det) > 1e-300
    det = np.where(ok, det, 1.0)
    k = np.where(ok, (ry * tt - rt * ty) / det, 0.0)
    c = np.where(ok, (rr * ty - rt * ry) / det, 0.0)
    return float(dy @ dy) - k * ry - c * ty, k


def _rel_ci(res, names: list[str], x: np.ndarray) -> dict:
    """95 % half-widths relative to each parameter, from the Jacobian at the optimum, with the
    residual variance inflated for lag-1 autocorrelation of the residuals (effective sample size
    n (1 - rho) / (1 + rho)): a model that does not fit exactly leaves correlated residuals,
    and a plain least-squares interval would then claim more than the data hold. Parameters at
    a bound are held fixed (NaN)."""
    r = res.fun
    n, p = r.size, len(x)
    free = np.asarray(res.active_mask) == 0
    rho = float(np.clip(np.corrcoef(r[:-1], r[1:])[0, 1], 0.0, 0.99)) if n > 3 and np.std(r) > 0 else 0.0
    inflate = (1 + rho) / (1 - rho)
    s2 = float(r @ r) / max(n - p, 1) * inflate
    out = {nm: math.nan for nm in names}
    J = res.jac[:, free]
    cov = np.zeros((p, p))
    if J.shape[1]:
        cov[np.ix_(free, free)] = np.linalg.pinv(J.T @ J) * s2
        sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
        for i, nm in enumerate(names):
            if free[i]:
                out[nm] = float(1.96 * sd[i] / abs(x[i])) if x[i] != 0 else math.inf
    lags = [i for i, nm in enumerate(names) if nm.startswith("tau")]
    # the sum of the lags (a SOPDT's two lags are not separately determined when they are
    # close; their sum, the mean residence time, is, and is what the rules use)
    g = np.zeros(p)
    g[lags] = 1.0
    total = float(np.sum(x[lags]))
    out["lag_sum"] = float(1.96 * math.sqrt(max(g @ cov @ g, 0.0)) / total) if total > 0 else math.inf
    return out


def fit_step(data: StepData, allow_sopdt: bool = True, drift: bool = False, bounds: FitBounds | None = None,
             alpha: float = 0.001) -> Identified:
    """Fit FOPDT (and SOPDT) models to a step-test record.

    The fit is made well-posed before it is made precise: (1) readings at the ends of the sensor's
    range are left out (clipped, not measured); (2) the dead time is bounded below by what is known
    of the instruments (``bounds.theta_min``) and the time constants to what the test can resolve;
    (3) the global optimum is found on a grid over the shape (dead time x time constants, the gain
    and drift solved exactly for every point, so no start can lead elsewhere), then polished by
    SciPy ``least_squares`` from the best grid point; (4) the SOPDT is kept only when its extra
    parameter lowers the residual significantly (F test at ``alpha``) and its second lag is
    resolvable (at least a sample): on a flat problem the simpler model stays, so the choice
    cannot flip on the last bits of the arithmetic; (5) 95 % confidence intervals of the
    parameters come with the model (see :meth:`Identified.determined`).

    ``drift``: also fit a linear drift of the output (a slowly changing load during the test).
    """
    from scipy.stats import f as f_dist

    bounds = bounds or FitBounds()
    if abs(data.du) == 0:
        raise ValueError("the step size du must not be zero")
    t_all, dy_all = data.t, data.y - data.y0
    keep = np.isfinite(data.y)
    if bounds.y_range is not None:
        lo, hi = bounds.y_range
        keep &= (data.y > lo) & (data.y < hi)
    t, dy = t_all[keep], dy_all[keep]
    n = t.size
    if n < 8:
        raise ValueError(f"only {n} readings inside the sensor's range: nothing to fit")
    changes = data.input_changes()
    Ts = float(np.median(np.diff(t_all)))
    edges = [c[0] for c in changes] + [float(t_all[-1])]
    phase = max(float(np.max(np.diff(edges))), Ts)
    tau_min = bounds.tau_min if bounds.tau_min is not None else Ts / 2
    tau_max = bounds.tau_max if bounds.tau_max is not None else 3 * phase
    th_lo = float(bounds.theta_min)
    th_hi = max(phase / 2, th_lo + Ts)
    if tau_max <= tau_min:
        raise ValueError("the test is too short to resolve any time constant")
    scale = max(float(np.max(np.abs(dy))), 1e-12)
    nd = 1 if drift else 0

    thetas = np.linspace(th_lo, th_hi, 41)
    taus = np.geomspace(tau_min, tau_max, 41)
    g = np.array([(a, 0.0, th) for th in thetas for a in taus])
    ssr, kk = _profile(t, dy, changes, g, drift)
    i = int(np.argmin(ssr))
    p0 = [float(kk[i]), float(g[i, 0]), float(g[i, 2])] + [0.0] * nd

    def res1(p):
        trend = p[3] * t if drift else 0.0
        return (_unit_responses(t, changes, np.array([[p[1], 0.0, p[2]]]))[0] * p[0] + trend - dy) / scale

    lo1 = np.array([-np.inf, tau_min, th_lo] + [-np.inf] * nd)
    hi1 = np.array([np.inf, tau_max, th_hi] + [np.inf] * nd)
    r1 = least_squares(res1, np.clip(p0, lo1, hi1), bounds=(lo1, hi1), x_scale="jac")
    f = FOPDT(*map(float, r1.x[:3]))
    rms1 = float(np.sqrt(np.mean(r1.fun**2))) * scale
    ci1 = _rel_ci(r1, ["k", "tau", "theta"] + ["drift"] * nd, r1.x)
    best, chosen, s, rms2, ci, p_struct = f, "FOPDT", None, None, ci1, math.nan
    if allow_sopdt:
        ratios = np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0])
        g2 = np.array([(a, a * q, th) for th in thetas[::2] for a in taus for q in ratios if a * q >= tau_min])
        ssr2, kk2 = _profile(t, dy, changes, g2, drift)
        j = int(np.argmin(ssr2))

        def res2(p):
            trend = p[4] * t if drift else 0.0
            return (_unit_responses(t, changes, np.array([[p[1], p[2], p[3]]]))[0] * p[0] + trend - dy) / scale

        lo2 = np.array([-np.inf, tau_min, tau_min, th_lo] + [-np.inf] * nd)
        hi2 = np.array([np.inf, tau_max, tau_max, th_hi] + [np.inf] * nd)
        q0 = [float(kk2[j]), float(g2[j, 0]), float(g2[j, 1]), float(g2[j, 2])] + [0.0] * nd
        r2 = least_squares(res2, np.clip(q0, lo2, hi2), bounds=(lo2, hi2), x_scale="jac")
        k2, a, b, th2 = map(float, r2.x[:4])
        s = SOPDT(k2, max(a, b), min(a, b), th2)
        rms2 = float(np.sqrt(np.mean(r2.fun**2))) * scale
        ssr_1, ssr_2 = float(r1.fun @ r1.fun), float(r2.fun @ r2.fun)
        dof = n - (4 + nd)
        if ssr_2 < ssr_1 and dof > 0:
            F = (ssr_1 - ssr_2) / (ssr_2 / dof)
            p_struct = float(f_dist.sf(F, 1, dof))
        else:
            p_struct = 1.0
        if p_struct < alpha and s.tau2 >= Ts:
            best, chosen = s, "SOPDT"
            x2 = np.array(r2.x, dtype=float)
            names = ["k", "tau1", "tau2", "theta"] if a >= b else ["k", "tau2", "tau1", "theta"]
            ci = _rel_ci(r2, names + ["drift"] * nd, x2)
    return Identified(best, f, s, rms1, rms2, chosen, rel_ci=ci, structure_p=p_struct, n_used=n)


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


def noise_sd_from_differences(y) -> float:
    """Standard deviation of white measurement noise from successive differences,
    sqrt(mean(diff(y)^2) / 2): a slow drift or a plant response barely moves it (von Neumann's
    mean square successive difference)."""
    d = np.diff(np.asarray(y, dtype=float))
    d = d[np.isfinite(d)]
    return float(np.sqrt(np.mean(d * d) / 2)) if d.size else math.nan


def step_test(env, read, write, u0: float, du: float, duration_ticks: int, Ts_ticks: int,
              baseline_samples: int = 30, pattern: str = "step", repeats: int = 1, enough=None,
              min_repeats: int = 1):
    """SimPy process: record ``baseline_samples`` at ``u0`` (the starting level is their mean, so
    one noisy sample does not bias the fit, and their successive differences measure the noise),
    then apply the test input, sampling ``read`` every ``Ts_ticks``; restore ``u0`` and return
    the :class:`StepData` (its ``noise_sd`` from the baseline).

    ``pattern``: ``step`` holds u0 + du for ``duration_ticks``; ``doublet`` holds u0 + du, then
    u0 - du, then u0, each for a third of ``duration_ticks``: symmetric about the operating
    point, so a nonlinear plant is linearised there and slow drifts largely cancel; ``pulse``
    holds u0 + du for half of ``duration_ticks`` and u0 for the other half: one-sided, for a
    loop whose operating point sits near a bound of its measurement (a nitrate setpoint of
    1 g/m3 with noise of 0.5 g/m3: a step down would be clipped at zero).

    ``repeats``: the doublet or pulse is repeated up to this many times; after ``min_repeats``
    and every repetition after it, ``enough(data)`` (when given) decides whether the record
    already determines the model, so a noisy loop gets a longer test and a quiet one a short
    test (sequential design).
    """
    base = []
    for _ in range(baseline_samples):
        base.append(read())
        yield env.timeout(Ts_ticks)
    t0 = env.now
    y0 = float(np.mean(base)) if base else read()
    noise = noise_sd_from_differences(base) if len(base) > 2 else math.nan
    ts, ys = [0.0], [read()]
    if pattern == "doublet":
        third = duration_ticks // 3
        cycle = [(0, du), (third, -2 * du), (2 * third, du)]
    elif pattern == "pulse":
        cycle = [(0, du), (duration_ticks // 2, -du)]
    else:
        cycle, repeats = [(0, du)], 1
    level = u0
    changes = []
    for rep in range(max(int(repeats), 1)):
        start = rep * duration_ticks
        plan = [(start + dt, step) for dt, step in cycle]
        k = 0
        while True:
            elapsed = env.now - t0
            while k < len(plan) and plan[k][0] <= elapsed:
                level += plan[k][1]
                write(level)
                changes.append((elapsed / TICKS_PER_DAY, plan[k][1]))
                k += 1
            if elapsed >= start + duration_ticks:
                break
            yield env.timeout(Ts_ticks)
            ts.append((env.now - t0) / TICKS_PER_DAY)
            ys.append(read())
        data = StepData(np.array(ts), np.array(ys), du, y0, list(changes), noise_sd=noise, repeats=rep + 1)
        if rep + 1 >= min_repeats and enough is not None and enough(data):
            break
    write(u0)
    return data
