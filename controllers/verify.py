"""Verification of a loop design with python-control before it is applied.

The loop is built as it will run: the plant model discretised with a zero-order hold at the
controller's sample time (the delay split into whole samples, represented exactly by
z^{-d}, and a fractional part through a second-order Padé approximation), times the
discrete controller that :class:`controllers.pid.PID` implements:

    C(z) = K + K Ts / (Ti (z - 1)) + K Td / (Tf + Ts) (z - 1) / (z - Tf / (Tf + Ts)),  Tf = Td / N

(forward-Euler integral, backward-difference filtered derivative). python-control gives the
gain and phase margins and the stability margin s_m = min |1 + L| (so Ms = 1 / s_m), and the
closed-loop poles decide stability. python-control is imported here only, lazily.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Criteria:
    """Acceptance criteria of a design (defaults: Åström and Hägglund's common robustness bounds)."""

    gm_min: float = 2.0
    pm_min_deg: float = 45.0
    ms_max: float = 2.0


@dataclass
class Verification:
    gm: float
    pm_deg: float
    ms: float
    wc: float  # gain crossover frequency, rad per time unit
    stable: bool
    ok: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"gain_margin": _finite(self.gm), "phase_margin_deg": _finite(self.pm_deg), "Ms": _finite(self.ms),
                "crossover_rad_per_time": _finite(self.wc), "stable": self.stable, "accepted": self.ok,
                "reasons": list(self.reasons)}


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


MAX_EXACT_DELAY_SAMPLES = 40


def _split_delay(model, Ts: float) -> tuple[int, float]:
    d = int(math.floor(model.theta / Ts + 1e-9))
    return d, model.theta - d * Ts


def plant_tf(model, Ts: float, include_whole_delay: bool = True):
    """The plant model as a discrete python-control transfer function at sample time Ts."""
    import control as ct

    num, den = model.num_den()
    d, frac = _split_delay(model, Ts)
    G = ct.tf(num, den)
    if frac > 1e-12 * Ts:
        pn, pd = ct.pade(frac, 2)
        G = G * ct.tf(pn, pd)
    Gz = ct.c2d(G, Ts, method="zoh")
    if d > 0 and include_whole_delay:
        Gz = Gz * ct.tf([1.0], [1.0] + [0.0] * d, Ts)
    return Gz


def controller_tf(K: float, Ti: float, Td: float, N: float, Ts: float):
    import control as ct

    C = ct.tf([K], [1.0], Ts)
    if math.isfinite(Ti):
        C = C + ct.tf([K * Ts / Ti], [1.0, -1.0], Ts)
    if Td > 0:
        Tf = Td / N
        C = C + ct.tf([K * Td / (Tf + Ts), -K * Td / (Tf + Ts)], [1.0, -Tf / (Tf + Ts)], Ts)
    return C


def verify(model, K: float, Ti: float, Td: float, Ts: float, N: float = 10.0,
           criteria: Criteria | None = None) -> Verification:
    """Margins, Ms and closed-loop stability of PID(K, Ti, Td) on ``model`` sampled at ``Ts``.

    Up to :data:`MAX_EXACT_DELAY_SAMPLES` samples of delay, python-control computes the margins
    (spurious crossings filtered) and the closed-loop poles. Beyond that the loop polynomial is
    too long for reliable root finding; the loop's exact frequency response (python-control's
    discretised plant and controller times e^{-j w d Ts}) is scanned instead, and stability is
    judged by the Nyquist criterion for an open-loop stable plant (no crossing of the negative
    real axis beyond -1).
    """
    import control as ct

    criteria = criteria or Criteria()
    d, _ = _split_delay(model, Ts)
    exact = d <= MAX_EXACT_DELAY_SAMPLES
    C = controller_tf(K, Ti, Td, N, Ts)
    G0 = plant_tf(model, Ts, include_whole_delay=exact)
    L0 = C * G0
    w = np.logspace(-5, 0, 4000) * math.pi / Ts
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        Lw = L0(np.exp(1j * w * Ts))
    if not exact:
        Lw = Lw * np.exp(-1j * w * d * Ts)
    Lw = np.where(np.isfinite(Lw), Lw, np.nan)
    ms = float(np.nanmax(1.0 / np.abs(1.0 + Lw)))
    gm_grid, pm_grid, wc_grid = _grid_margins(w, Lw)
    if exact:
        try:
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore")  # python-control notes when it falls back to its 'frd' method
                _, _, sms, wgs, wcs, _ = ct.stability_margins(L0, returnall=True)
        except Exception as exc:  # numerical failure inside the margin search: refuse, say why
            return Verification(math.nan, math.nan, math.nan, math.nan, False, False,
                                [f"margin computation failed: {exc}"])
        # the polynomial crossing search can return spurious crossovers on high-order discrete
        # loops (phase crossovers where L is not real, gain crossovers where |L| is far from 1,
        # with a phase margin that contradicts Ms): keep those where L is (numerically) real and
        # negative, or |L| = 1, and read the margins from L there
        gm, pm, wc = math.inf, math.inf, math.nan
        for _, Lg in _loop_at(L0, wgs, Ts):
            if Lg.real < 0 and abs(Lg.imag) <= 1e-3 * abs(Lg) and 1.0 / abs(Lg) > 1.0:
                gm = min(gm, 1.0 / abs(Lg))
        for w_c, Lc in _loop_at(L0, wcs, Ts):
            if abs(abs(Lc) - 1.0) <= 1e-3:
                p = math.degrees(math.pi + np.angle(Lc)) % 360.0
                p = p - 360.0 if p > 180.0 else p
                if p < pm:
                    pm, wc = p, w_c
        # and no crossing the frequency grid sees is lost (the grid is the loop's own response)
        gm = min(gm, gm_grid)
        if pm_grid < pm:
            pm, wc = pm_grid, wc_grid
        sm = float(np.min(sms)) if np.size(sms) else math.inf
        ms = max(1.0 / sm if sm > 0 else math.inf, ms)
        stable = bool(np.all(np.abs(ct.feedback(L0, 1).poles()) < 1.0 - 1e-9))
    else:
        gm, pm, wc = gm_grid, pm_grid, wc_grid
        stable = gm > 1.0 and pm > 0.0
    reasons = []
    if not stable:
        reasons.append("closed loop unstable")
    if not gm >= criteria.gm_min:
        reasons.append(f"gain margin {gm:.3g} < {criteria.gm_min:g}")
    if not pm >= criteria.pm_min_deg:
        reasons.append(f"phase margin {pm:.3g} deg < {criteria.pm_min_deg:g} deg")
    if not ms <= criteria.ms_max:
        reasons.append(f"sensitivity peak Ms {ms:.3g} > {criteria.ms_max:g}")
    return Verification(gm, pm, ms, wc, stable, not reasons, reasons)


def _loop_at(L0, freqs, Ts: float) -> list[tuple[float, complex]]:
    """(w, L(e^{j w Ts})) at the positive frequencies ``freqs`` where L is finite."""
    out = []
    for w in np.atleast_1d(freqs):
        if not w > 0:
            continue
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            L = complex(L0(np.exp(1j * w * Ts)))
        if np.isfinite(L):
            out.append((float(w), L))
    return out


def _grid_margins(w: np.ndarray, Lw: np.ndarray) -> tuple[float, float, float]:
    """Gain margin (smallest 1/|L| where L crosses the negative real axis),
    phase margin at the gain crossovers, and the crossover frequency, from a frequency grid."""
    ok = np.isfinite(Lw)
    w, Lw = w[ok], Lw[ok]
    mag = np.abs(Lw)
    ph = np.unwrap(np.angle(Lw))
    gm = math.inf
    branch = np.floor((ph + math.pi) / (2 * math.pi))  # changes where the phase passes -180 deg (mod 360)
    for j in np.nonzero(np.diff(branch) != 0)[0]:
        target = max(branch[j], branch[j + 1]) * 2 * math.pi - math.pi
        f = (target - ph[j]) / (ph[j + 1] - ph[j])
        m = mag[j] + f * (mag[j + 1] - mag[j])
        if m > 0:
            gm = min(gm, 1.0 / m)
    pm, wc = math.inf, math.nan
    for j in np.nonzero((mag[:-1] >= 1.0) & (mag[1:] < 1.0))[0]:
        p = math.degrees(math.pi + ph[j]) % 360.0
        p = p - 360.0 if p > 180.0 else p
        if p < pm:
            pm, wc = p, float(w[j])
    return gm, pm, wc
