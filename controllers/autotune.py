"""Auto-tuning and adaptive retuning of plant loops inside the simulation.

A loop is tuned by a SimPy process that puts the PID in manual (holding its output), runs a
step or relay test on the live plant through the loop's own sensor and actuator, fits a
model, applies a tuning rule and verifies the design with python-control. An accepted design
is applied bumplessly; a refused one is not applied and the event log says why. Every
tuning decision is an event with the old and new gains, the identified model, the margins
and the reason.

Adaptive retuning watches each loop's integral of absolute error (IAE, on the true process
value) over a moving window and re-identifies when it grows beyond a ratio of the IAE the
loop had after its last tuning (the plant drifted: oxygen transfer fell, the process gain
moved), no more often than a minimum interval. Sustained saturation is logged, not retuned
(it is a capacity problem, not a tuning one).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from controllers.identify import FitBounds, fit_step, instrument_lags, known_delay, relay_test, step_test
from controllers.models import FOPDT
from controllers.tuning import tune
from controllers.verify import Criteria, verify
from twin.durations import TICKS_PER_DAY


@dataclass
class LoopStats:
    """Performance of one loop: running sums of the true error over the evaluation window (the
    KPIs, O(1) memory however long the run), and, for the adaptive monitor, the recent samples."""

    Ts_d: float
    window_s: tuple[int, int] | None = None  # evaluation window in clock ticks
    keep_recent: bool = True  # the adaptive monitor needs the recent samples
    n: int = 0
    sum_abs: float = 0.0
    sum_sq: float = 0.0
    max_abs: float = 0.0
    n_saturated: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=200_000))

    def observe(self, now: int, setpoint: float, y_true: float, saturated: bool) -> None:
        e = abs(setpoint - y_true)
        if self.keep_recent:
            self.recent.append((now, e))
        if self.window_s is not None and self.window_s[0] <= now < self.window_s[1]:
            self.n += 1
            self.sum_abs += e
            self.sum_sq += e * e
            if e > self.max_abs or e != e:
                self.max_abs = e
            self.n_saturated += bool(saturated)

    def iae_since(self, t_from: int, t_to: int) -> float:
        return sum(a for t, a in self.recent if t_from <= t < t_to) * self.Ts_d

    def kpis(self) -> dict:
        if not self.n:
            return {}
        return {"IAE": self.sum_abs * self.Ts_d, "ISE": self.sum_sq * self.Ts_d,
                "max_abs_error": self.max_abs, "pct_time_saturated": 100.0 * self.n_saturated / self.n,
                "units": {"IAE": "measurement unit x d", "ISE": "measurement unit^2 x d"}}


@dataclass
class TuneOutcome:
    model: object | None
    tuning: object | None
    applied: bool
    reason: str
    relay: object | None = None
    k_max: float = math.inf  # the gain limit the measured noise set


def _criteria(spec) -> Criteria:
    return Criteria(spec.gm_min, spec.pm_min_deg, spec.ms_max)


def identify_and_tune(env, loop, plant, spec, reason: str, live: bool = True):
    """SimPy process: identify the loop on the live plant, tune, verify, apply if accepted."""
    pid = loop.ctrl
    s = pid.settings
    Ts_ticks = loop.spec.sample_time
    u0 = float(pid.operating_output()) if not pid.manual else loop.output(plant)
    lo, hi = s.u_min, s.u_max
    span = (hi - lo) if math.isfinite(hi - lo) else max(abs(u0), 1.0)
    pid.set_manual(u0)
    note = ""

    def read():
        return loop.last_measurement

    def write(u):
        pid.manual_output = min(max(u, lo), hi)

    yield env.timeout(Ts_ticks)  # let the loop take one sample in manual
    model = relay = record = None
    noise_sd = 0.0
    ident = None
    if spec.method == "step":
        bounds = fit_bounds(loop.spec)
        du = spec.step_size if spec.step_size is not None else 0.1 * span
        du = _step_direction(du, u0, lo, hi, spec, s.K, loop.last_measurement, bounds.y_range)

        last_fit = {}

        def enough(record):
            try:
                last_fit[record.t.size] = fit_step(record, allow_sopdt=spec.allow_sopdt, drift=spec.drift and live,
                                                   bounds=bounds)
            except ValueError:
                return False
            return not last_fit[record.t.size].determined(spec.max_gain_ci, spec.max_lag_ci)

        most = max(spec.repeats, spec.max_repeats or spec.repeats)
        record = yield env.process(step_test(env, read, write, u0, du, spec.duration, Ts_ticks,
                                             pattern=spec.pattern, repeats=most, min_repeats=spec.repeats,
                                             enough=enough if most > spec.repeats else None))
        try:
            ident = last_fit.get(record.t.size) or fit_step(record, allow_sopdt=spec.allow_sopdt,
                                                            drift=spec.drift and live, bounds=bounds)
            model = ident.model
            fit_rms = ident.rms_sopdt if ident.chosen == "SOPDT" else ident.rms_fopdt
            noise_sd = record.noise_sd if math.isfinite(record.noise_sd) and record.noise_sd > 0 else fit_rms
            problem = _implausible(model, record, noise_sd, s.K) or ident.determined(spec.max_gain_ci, spec.max_lag_ci)
            if problem:
                note, model = problem, None
        except (ValueError, RuntimeError) as exc:
            model = None
            note = f"model fit failed: {exc}"
    else:
        d = spec.relay_amplitude if spec.relay_amplitude is not None else 0.1 * span
        d = min(d, u0 - lo, hi - u0) if math.isfinite(span) else d
        direction = math.copysign(1.0, s.K) if s.K != 0 else 1.0
        noise_sd = spec.hysteresis / 2  # the hysteresis is set to about twice the noise sd
        relay = yield env.process(relay_test(env, read, write, u0, d, spec.hysteresis, pid.setpoint, Ts_ticks,
                                             n_periods=spec.relay_periods, max_ticks=spec.duration,
                                             direction=direction))
    pid.set_auto()
    tuning = None
    if relay is not None:
        if not relay.converged:
            note = "relay test did not reach a limit cycle"
        else:
            # a FOPDT consistent with the ultimate point, for verification of ultimate-point rules
            # and for model-based rules: gain sign from the loop, phase -180 deg at w_u
            model = _fopdt_from_ultimate(relay.Ku, relay.Pu, direction)
    k_max = math.inf
    if spec.noise_fraction == "current":
        k_max = abs(s.K) if s.K != 0 else math.inf
    elif noise_sd > 0 and math.isfinite(span) and spec.noise_fraction > 0:
        k_max = spec.noise_fraction * span / noise_sd
    if model is not None:
        kw = {"Ku": relay.Ku, "Pu": relay.Pu} if relay is not None else {}
        try:
            design_model = model if spec.controller == "PID" else model.as_fopdt()
            tuning = tune(spec.rule, design_model, pid.Ts_d, criteria=_criteria(spec), verify_with=model,
                          k_max=k_max, pm_target_deg=spec.pm_target_deg, **kw)
        except ValueError as exc:
            note = f"tuning rule failed: {exc}"
    old = {"K": s.K, "Ti_d": s.Ti_d, "Td_d": s.Td_d}
    data = {"old_gains": old, "model": model.describe() if model is not None else None, "rule": spec.rule,
            "reason": reason, "method": spec.method, "noise_sd_estimate": noise_sd,
            "gain_limit_for_noise": k_max if math.isfinite(k_max) else None}
    if relay is not None:
        data["relay"] = {"Ku": relay.Ku, "Pu_d": relay.Pu, "amplitude": relay.amplitude}
    if ident is not None:
        data["identification"] = {"chosen": ident.chosen, "fopdt": ident.fopdt.describe(),
                                  "sopdt": ident.sopdt.describe() if ident.sopdt is not None else None,
                                  "ci95_relative": ident.rel_ci, "sopdt_p_value": ident.structure_p,
                                  "readings_used": ident.n_used, "repetitions": record.repeats}
    if tuning is None:
        if ident is not None and model is None and note:
            data["model"] = ident.model.describe()
            env.log("tuning_kept", loop.name, f"gains kept: {note}", **data)
            return TuneOutcome(None, None, False, note, relay)
        env.log("tuning_failed", loop.name, f"no design: {note}", **data)
        return TuneOutcome(model, None, False, note, relay)
    data["margins"] = tuning.verification.as_dict()
    new = {"K": tuning.K, "Ti_d": tuning.Ti, "Td_d": tuning.Td}
    if not tuning.accepted:
        env.log("tuning_refused", loop.name, "design refused, gains kept: " + "; ".join(tuning.verification.reasons),
                proposed_gains=new, **data)
        return TuneOutcome(model, tuning, False, "; ".join(tuning.verification.reasons), relay)
    pid.retune(tuning.K, tuning.Ti, tuning.Td, None)
    loop.tuning = tuning
    loop.model = model
    loop.retunes += 1
    loop.adapt["k_max"] = k_max
    env.log("retune", loop.name, f"{spec.rule} design applied ({reason})", new_gains=new, notes=tuning.notes, **data)
    return TuneOutcome(model, tuning, True, reason, relay, k_max)


def fit_bounds(cspec) -> FitBounds:
    """What a loop's scenario entry says about its identification: the least dead time and the
    least time constant its instruments' lags allow (see :func:`controllers.identify.known_delay`),
    and the sensor's measuring range."""
    s, a = cspec.sensor, cspec.actuator_dynamics
    lags = instrument_lags(s.T90_min / 1440.0, s.order, a.T90_min / 1440.0, a.order)
    Ts_d = cspec.sample_time / TICKS_PER_DAY
    return FitBounds(theta_min=known_delay(lags), tau_min=max([Ts_d / 2] + lags),
                     y_range=tuple(s.range) if s.range is not None else None)


def _step_direction(du: float, u0: float, lo: float, hi: float, spec, K_now: float, y_now: float,
                    y_range) -> float:
    """The sign of the test step. A doublet goes both ways: it only has to fit the actuator's
    limits. A step or pulse goes, with ``direction: auto``, towards the side where the
    measurement has more room inside its range (the loop's gain sign says which way the
    measurement moves), so the response is not clipped at a range end (nitrate at 1 g/m3 near
    zero); ``up``/``down`` force the actuator's direction. Then the actuator's limits decide."""
    du = abs(du)
    if spec.pattern == "doublet":
        return -du if (u0 + du > hi or u0 - du < lo) else du
    sign = 1.0
    if spec.direction == "down":
        sign = -1.0
    elif spec.direction == "auto" and y_range is not None and K_now != 0 and math.isfinite(y_now):
        room_up, room_down = y_range[1] - y_now, y_now - y_range[0]
        y_sign = 1.0 if room_up >= room_down else -1.0
        sign = y_sign * math.copysign(1.0, K_now)
    if u0 + sign * du > hi or u0 + sign * du < lo:
        sign = -sign
    return sign * du


def _implausible(model, data, noise_sd: float, K_now: float) -> str:
    """Why an identified step model must not be used, or an empty string.

    The loop's current gain sign states the process gain's sign (a loop that works has it
    right): a model of opposite sign is a failed identification, never a reason to flip the
    controller. And the modelled response must stand out of the noise: the step's effect
    |k du| at least three standard errors of the mean level (3 sd / sqrt(n))."""
    if K_now != 0 and math.copysign(1.0, model.k) != math.copysign(1.0, K_now):
        return (f"identified gain {model.k:.4g} has the opposite sign to the loop's action; "
                "identification rejected")
    n = max(len(data.t), 1)
    if abs(model.k * data.du) < 3 * noise_sd / math.sqrt(n):
        return f"step response {abs(model.k * data.du):.3g} is lost in the noise (sd {noise_sd:.3g})"
    return ""


def _fopdt_from_ultimate(Ku: float, Pu: float, sign: float) -> FOPDT:
    """The FOPDT whose ultimate point is (Ku, Pu) with tau = Pu / (2 pi) (a 45 deg lag at w_u)."""
    wu = 2 * math.pi / Pu
    tau = 1.0 / wu
    theta = (math.pi - math.atan(wu * tau)) / wu
    k = math.sqrt(1 + (wu * tau) ** 2) / Ku
    return FOPDT(sign * k, tau, theta)


def adaptive_monitor(env, loop, plant, spec, adaptive):
    """SimPy process: every ``check_every``, compare the loop's IAE over the last ``window`` with
    the same window one day earlier (influent follows a daily cycle, so like is compared with
    like); retune when it grew beyond ``iae_ratio`` and the actuator was not saturated for most
    of the window (saturation is a capacity problem: logged, not retuned)."""
    window = adaptive.window
    every = adaptive.check_every
    min_gap = adaptive.min_interval
    day = TICKS_PER_DAY
    last_tune = env.now
    if adaptive.method == "relay_rescale":
        yield env.timeout(adaptive.reference_at)
        loop.busy = True
        yield env.process(relay_rescale(env, loop, spec, adaptive, "reference test"))
        loop.busy = False
        last_tune = env.now
    while True:
        yield env.timeout(every)
        now = env.now
        if loop.busy or now - last_tune < day + window:
            continue
        iae = loop.stats.iae_since(now - window, now)
        reference = loop.stats.iae_since(now - day - window, now - day)
        sat = loop.saturated_fraction(now - window, now)
        if sat > adaptive.saturation_fraction:
            env.log("saturation", loop.name, f"actuator saturated {100 * sat:.0f} % of the last window",
                    fraction=sat)
            continue
        if reference > 0 and iae > adaptive.iae_ratio * reference and now - last_tune >= min_gap:
            reason = (f"IAE {iae:.4g} over the last {window / 3600:g} h exceeds {adaptive.iae_ratio:g} x "
                      f"the same window a day earlier ({reference:.4g})")
            loop.busy = True
            if adaptive.method == "relay_rescale":
                yield env.process(relay_rescale(env, loop, spec, adaptive, reason))
            else:
                yield env.process(identify_and_tune(env, loop, plant, spec, reason))
            loop.busy = False
            last_tune = env.now


def gain_indicator(loop, t_from: int, t_to: int, y_sat: float) -> tuple[float, int]:
    """Mean of (y_sat - y) / u over the loop's samples in [t_from, t_to) with u > 0: the static
    gain of a transfer-limited process up to a constant (see :func:`model_gain_monitor`)."""
    vals = [(y_sat - y) / u for t, y, u in loop.io_log if t_from <= t < t_to and u > 0]
    return (sum(vals) / len(vals) if vals else math.nan), len(vals)


def model_gain_monitor(env, loop, plant, spec, adaptive, wake_at: int | None = None):
    """SimPy process: re-identify the process gain of a transfer-limited loop from routine data
    and retune on it.

    For dissolved oxygen, dS_O/dt = f KLa (S_sat - S_O) - OUR - D S_O: linearised around an
    operating point, the static gain from KLa to S_O is f (S_sat - S_O) / (f KLa + D), which is
    (S_sat - S_O) / KLa when dilution is small against transfer. So when the oxygen transfer
    falls (f: fouling) the loop needs a higher KLa for the same uptake and its gain falls in the
    same proportion; and the gain moves with the load the same way (gain scheduling on
    airflow, as in Lindberg and Carlsson 1996). The time constant 1 / (f KLa + D) stays put at
    equal uptake. Every ``check_every`` the monitor averages (S_sat - y) / u over the last
    ``gain_window`` (measurement noise averages out) and compares it with its value when the
    loop's model was identified; when the ratio has moved by more than ``min_change`` since the
    last design (and not sooner than ``min_interval``, and not while the actuator was saturated
    for more than ``saturation_fraction`` of the window), the model's gain is scaled by the
    ratio (at most ``max_change`` at once), the loop's rule designs new gains on it, and
    python-control verifies them before they are applied. Its state lives in ``loop.adapt``."""
    every = adaptive.check_every
    window = adaptive.gain_window
    min_gap = adaptive.min_interval
    y_sat = float(adaptive.saturation_value)
    a = loop.adapt
    if wake_at is None:
        if loop.model is None:
            env.log("adaptive_check", loop.name, "no identified model: model-gain adaptation needs the loop's "
                    "autotune (at: initial)")
            return
        u0 = loop.output(plant)
        y0 = float(loop.read())
        a.update(model=loop.model, g0=(y_sat - y0) / u0 if u0 > 0 else math.nan, ratio=1.0, last=env.now)
        first = every
    else:
        first = wake_at - env.now
    while True:
        yield env.timeout(first)
        first = every
        now = env.now
        g, n = gain_indicator(loop, now - window, now, y_sat)
        if not (n > 0 and math.isfinite(g) and math.isfinite(a["g0"]) and a["g0"] > 0 and g > 0):
            continue
        ratio = g / a["g0"]
        change = ratio / a["ratio"]
        if abs(math.log(change)) < math.log(1.0 + adaptive.min_change) or now - a["last"] < min_gap:
            continue
        sat = loop.saturated_fraction(now - window, now)
        if sat > adaptive.saturation_fraction:
            env.log("saturation", loop.name, f"actuator saturated {100 * sat:.0f} % of the last window: "
                    "gain estimate not used", fraction=sat)
            continue
        change = min(max(change, 1.0 / adaptive.max_change), adaptive.max_change)
        ratio = a["ratio"] * change
        m0 = a["model"]
        model = type(m0)(**{**m0.__dict__, "k": m0.k * ratio})
        pid = loop.ctrl
        s = pid.settings
        reason = (f"process gain estimated from the last {window / 3600:g} h of routine data: {ratio:.3g} x the "
                  f"identified gain")
        data = {"old_gains": {"K": s.K, "Ti_d": s.Ti_d, "Td_d": s.Td_d}, "model": model.describe(),
                "rule": spec.rule, "reason": reason, "gain_ratio": ratio, "samples": n}
        try:
            tuning = tune(spec.rule, model if spec.controller == "PID" else model.as_fopdt(), pid.Ts_d,
                          criteria=_criteria(spec), verify_with=model, k_max=a.get("k_max", math.inf),
                          pm_target_deg=spec.pm_target_deg)
        except ValueError as exc:
            env.log("tuning_failed", loop.name, f"tuning rule failed: {exc}", **data)
            continue
        data["margins"] = tuning.verification.as_dict()
        new = {"K": tuning.K, "Ti_d": tuning.Ti, "Td_d": tuning.Td}
        if not tuning.accepted:
            env.log("tuning_refused", loop.name, "design refused, gains kept: " + "; ".join(tuning.verification.reasons),
                    proposed_gains=new, **data)
            a["last"] = now
            continue
        pid.retune(tuning.K, tuning.Ti, tuning.Td, None)
        loop.tuning, loop.model = tuning, model
        loop.retunes += 1
        a.update(ratio=ratio, last=now)
        env.log("retune", loop.name, f"{spec.rule} design applied ({reason})", new_gains=new, **data)


def relay_rescale(env, loop, spec, adaptive, reason: str):
    """SimPy process: a short relay test around the current operating point; the change of the
    ultimate gain since the reference test measures the change of the process gain, and the
    controller gain is rescaled by it (K_new = K Ku_new / Ku_ref, Ti kept), which keeps the
    loop's margins (Åström and Hägglund's relay auto-tuner used for gain adaptation). The
    first call only records the reference. The rescaled design is verified on the loop's
    model with its gain rescaled the same way before it is applied."""
    pid = loop.ctrl
    s = pid.settings
    u0 = float(pid.u_prev if pid.u_prev is not None else s.offset)
    span = s.u_max - s.u_min
    d = adaptive.relay_amplitude if adaptive.relay_amplitude is not None else 0.05 * span
    d = min(d, u0 - s.u_min, s.u_max - u0)
    if d <= 0:
        env.log("tuning_failed", loop.name, "no room for a relay test: the actuator is at a limit", reason=reason)
        return None
    pid.set_manual(u0)

    def write(u):
        pid.manual_output = u

    relay = yield env.process(relay_test(env, lambda: loop.last_measurement, write, u0, d, adaptive.hysteresis,
                                         pid.setpoint, loop.spec.sample_time,
                                         n_periods=adaptive.relay_periods, max_ticks=adaptive.relay_duration,
                                         direction=math.copysign(1.0, s.K)))
    pid.set_auto()
    data = {"relay": {"Ku": relay.Ku, "Pu_d": relay.Pu, "amplitude": relay.amplitude}, "reason": reason}
    if not relay.converged:
        env.log("tuning_failed", loop.name, "relay test did not reach a limit cycle", **data)
        return None
    if loop.ku_ref is None:
        loop.ku_ref = relay.Ku
        env.log("adaptive_reference", loop.name, "relay reference recorded", **data)
        return None
    ratio = relay.Ku / loop.ku_ref
    data.update({"Ku_reference": loop.ku_ref, "gain_ratio": ratio, "old_gains": {"K": s.K, "Ti_d": s.Ti_d}})
    if abs(math.log(ratio)) < math.log(1.0 + adaptive.min_change):
        env.log("adaptive_check", loop.name, f"ultimate gain changed by {ratio:.3g}: within the dead band, gains kept",
                **data)
        return None
    ratio = min(max(ratio, 1.0 / adaptive.max_change), adaptive.max_change)
    K_new = s.K * ratio
    if loop.model is not None:
        m = loop.model
        scaled = type(m)(**{**m.__dict__, "k": m.k / ratio})
        ver = verify(scaled, K_new, s.Ti_d, s.Td_d, pid.Ts_d, s.N, _criteria(spec))
        data["margins"] = ver.as_dict()
        if not ver.ok:
            env.log("tuning_refused", loop.name, "rescaled gains refused: " + "; ".join(ver.reasons), **data)
            return None
        loop.model = scaled
    pid.retune(K_new, s.Ti_d, s.Td_d, s.Tt_d)
    loop.ku_ref = relay.Ku
    loop.retunes += 1
    env.log("retune", loop.name, f"gain rescaled by {ratio:.3g} after a relay test ({reason})",
            new_gains={"K": K_new, "Ti_d": s.Ti_d}, **data)
    return ratio
