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


def plant_tf(model, Ts: float):
    """The plant model as a discrete python-control transfer function at sample time Ts."""
    import control as ct

    num, den = model.num_den()
    d = int(math.floor(model.theta / Ts + 1e-9))
    frac = model.theta - d * Ts
    G = ct.tf(num, den)
    if frac > 1e-12 * Ts:
        pn, pd = ct.pade(frac, 2)
        G = G * ct.tf(pn, pd)
    Gz = ct.c2d(G, Ts, method="zoh")
    if d > 0:
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
    """Margins, Ms and closed-loop stability of PID(K, Ti, Td) on ``model`` sampled at ``Ts``."""
    import control as ct

    criteria = criteria or Criteria()
    L = controller_tf(K, Ti, Td, N, Ts) * plant_tf(model, Ts)
    try:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")  # python-control notes when it falls back to its 'frd' method
            gms, pms, sms, wgs, wcs, wss = ct.stability_margins(L, returnall=True)
    except Exception as exc:  # numerical failure inside the margin search: refuse, say why
        return Verification(math.nan, math.nan, math.nan, math.nan, False, False, [f"margin computation failed: {exc}"])
    # python-control's polynomial crossing search can return spurious phase crossovers on
    # high-order discrete loops: keep only crossings where L is (numerically) real and negative
    gm = math.inf
    for g, w_g in zip(np.atleast_1d(gms), np.atleast_1d(wgs)):
        with np.errstate(divide="ignore", invalid="ignore"):
            Lg = complex(L(np.exp(1j * w_g * Ts)))
        if Lg.real < 0 and abs(Lg.imag) <= 1e-3 * abs(Lg) and 1.0 / abs(Lg) > 1.0:
            gm = min(gm, 1.0 / abs(Lg))
    pm = float(np.min(pms)) if np.size(pms) else math.inf
    wc = float(np.atleast_1d(wcs)[int(np.argmin(pms))]) if np.size(pms) else math.nan
    sm = float(np.min(sms)) if np.size(sms) else math.inf
    # Ms from python-control's stability margin, checked on a frequency grid up to Nyquist
    w = np.logspace(-4, 0, 800) * math.pi / Ts
    with np.errstate(divide="ignore", invalid="ignore"):
        Lw = L(np.exp(1j * w * Ts))
    ms_grid = float(np.max(1.0 / np.abs(1.0 + Lw)))
    ms = max(1.0 / sm if sm > 0 else math.inf, ms_grid)
    cl_poles = ct.feedback(L, 1).poles()
    stable = bool(np.all(np.abs(cl_poles) < 1.0 - 1e-9))
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
