"""PID tuning rules, each returning gains plus the margins predicted by verification.

Rules (ideal parallel form K (1 + 1/(Ti s) + Td s); times in the model's unit):

* ``simc``: Skogestad (2003), *Simple analytic rules for model reduction and PID controller
  tuning*, J. Process Control 13, 291-309. FOPDT: K = tau / (k (tau_c + theta)),
  Ti = min(tau, 4 (tau_c + theta)); SOPDT adds Td = tau2 (series form, converted to ideal).
  Default tau_c = theta.
* ``amigo``: Åström and Hägglund (2004/2006) AMIGO PI for FOPDT:
  K = 0.15/k + (0.35 - theta tau/(theta + tau)^2) tau/(k theta),
  Ti = 0.35 theta + 13 theta tau^2 / (tau^2 + 12 theta tau + 7 theta^2).
* ``imc``: IMC / lambda tuning PI (Rivera, Morari and Skogestad 1986): K = tau / (k (lambda + theta)),
  Ti = tau; default lambda = max(theta, tau / 3); SOPDT: IMC-PID with Ti = tau1 + tau2,
  Td = tau1 tau2 / (tau1 + tau2).
* ``zn_step``: Ziegler and Nichols (1942) reaction-curve PI: K = 0.9 tau/(k theta), Ti = 3.33 theta.
* ``zn_ultimate``: Ziegler-Nichols from the ultimate gain and period: PI K = 0.45 Ku, Ti = Pu / 1.2.
* ``tyreus_luyben``: Tyreus and Luyben (1992) PI: K = Ku / 3.2, Ti = 2.2 Pu.
* ``pidtune``: loop shaping like MATLAB's ``pidtune`` for PI: the phase margin is fixed (default
  60 deg) and the crossover frequency is chosen where the integral gain Ki = K/Ti is largest
  (best low-frequency disturbance rejection at that robustness), among crossovers that also
  keep Ms and the gain margin inside the acceptance bounds. On 1/(s+1)^3 it gives
  wc = 0.525 rad/s, K = 1.15, Ki = 0.454 (MATLAB's documented pidtune example: 0.52 rad/s,
  K = 1.14, Ki = 0.454).

Sampling: the rules see the delay plus half a sample (the zero-order hold's average delay,
Skogestad's rule), so they design for the discrete loop that will run. Rules with a
robustness knob (``simc`` tau_c, ``imc`` lambda, ``pidtune`` phase margin; ``amigo`` by a
gain reduction) are detuned step by step when verification refuses a design; the others are
refused as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from controllers.models import FOPDT, SOPDT
from controllers.verify import Criteria, Verification, verify

ROBUST_RULES = ("simc", "amigo", "imc", "pidtune")
RULES = ROBUST_RULES + ("zn_step", "zn_ultimate", "tyreus_luyben")


@dataclass
class Tuning:
    rule: str
    K: float
    Ti: float
    Td: float = 0.0
    N: float = 10.0
    verification: Verification | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.verification is not None and self.verification.ok

    def as_dict(self) -> dict:
        return {"rule": self.rule, "K": self.K, "Ti": self.Ti if math.isfinite(self.Ti) else None, "Td": self.Td,
                "verification": self.verification.as_dict() if self.verification else None, "notes": self.notes}


def _sampled(model, Ts: float):
    """The model with half a sample added to its delay (zero-order hold)."""
    if isinstance(model, SOPDT):
        return SOPDT(model.k, model.tau1, model.tau2, model.theta + Ts / 2)
    f = model.as_fopdt()
    return FOPDT(f.k, f.tau, f.theta + Ts / 2)


def simc(model, Ts: float, tau_c: float | None = None) -> tuple[float, float, float]:
    m = _sampled(model, Ts)
    tc = m.theta if tau_c is None else tau_c
    if isinstance(m, SOPDT):
        Kc = m.tau1 / (m.k * (tc + m.theta))
        tI = min(m.tau1, 4 * (tc + m.theta))
        tD = m.tau2
        # series (interacting) -> ideal parallel form
        return Kc * (1 + tD / tI), tI + tD, tI * tD / (tI + tD)
    return m.tau / (m.k * (tc + m.theta)), min(m.tau, 4 * (tc + m.theta)), 0.0


def simc_fopdt(k: float, tau: float, theta: float, tau_c: float | None = None) -> tuple[float, float]:
    """SIMC PI for a continuous FOPDT without sampling correction (for published examples)."""
    tc = theta if tau_c is None else tau_c
    return tau / (k * (tc + theta)), min(tau, 4 * (tc + theta))


def amigo(model, Ts: float) -> tuple[float, float, float]:
    m = _sampled(model, Ts).as_fopdt()
    k, T, L = m.k, m.tau, max(m.theta, 1e-12)
    K = 0.15 / k + (0.35 - L * T / (L + T) ** 2) * T / (k * L)
    Ti = 0.35 * L + 13 * L * T**2 / (T**2 + 12 * L * T + 7 * L**2)
    return K, Ti, 0.0


def imc(model, Ts: float, lam: float | None = None) -> tuple[float, float, float]:
    m = _sampled(model, Ts)
    if isinstance(m, SOPDT):
        lam = max(m.theta, m.tau1 / 3) if lam is None else lam
        return (m.tau1 + m.tau2) / (m.k * (lam + m.theta)), m.tau1 + m.tau2, m.tau1 * m.tau2 / (m.tau1 + m.tau2)
    f = m.as_fopdt()
    lam = max(f.theta, f.tau / 3) if lam is None else lam
    return f.tau / (f.k * (lam + f.theta)), f.tau, 0.0


def zn_step(model, Ts: float) -> tuple[float, float, float]:
    m = _sampled(model, Ts).as_fopdt()
    return 0.9 * m.tau / (m.k * m.theta), 3.33 * m.theta, 0.0


def zn_ultimate(Ku: float, Pu: float) -> tuple[float, float, float]:
    return 0.45 * Ku, Pu / 1.2, 0.0


def tyreus_luyben(Ku: float, Pu: float) -> tuple[float, float, float]:
    return Ku / 3.2, 2.2 * Pu, 0.0


def pidtune_pi(model, Ts: float, pm_deg: float = 60.0, ms_max: float = 1.9, gm_min: float = 2.1,
               k_max: float = math.inf, n_grid: int = 600) -> tuple[float, float, float]:
    """PI with phase margin ``pm_deg`` at the crossover that maximises the integral gain,
    among the crossovers whose loop also keeps Ms <= ``ms_max`` and GM >= ``gm_min``
    (checked on the continuous loop with half a sample of extra delay) and whose
    proportional gain stays within ``k_max`` (measurement-noise sensitivity)."""
    sign = math.copysign(1.0, model.k)
    f = model.as_fopdt()
    w_hi = min(10.0 / max(f.theta + Ts / 2, 1e-12), math.pi / Ts)
    w_lo = 1e-3 / (f.tau + f.theta + Ts)
    w = np.logspace(math.log10(w_lo), math.log10(w_hi), n_grid)
    P = sign * model.freq(w) * np.exp(-1j * w * Ts / 2)
    phase = np.unwrap(np.angle(P))
    phase_c = -math.pi + math.radians(pm_deg) - phase  # the PI must supply this phase
    valid = (phase_c < 0) & (phase_c > -math.pi / 2 + 1e-6)
    if not np.any(valid):
        raise ValueError("no crossover gives the phase margin with a PI controller")
    z = w * np.tan(-phase_c)  # Ki / Kp
    Kp = 1.0 / (np.abs(P) * np.sqrt(1 + (z / w) ** 2))
    Ki = Kp * z
    # robustness of every candidate over the whole frequency grid: L = (Kp + Ki/(jw)) P
    cand = np.nonzero(valid)[0]
    L = (Kp[cand, None] + Ki[cand, None] / (1j * w[None, :])) * P[None, :]
    ms = np.max(1.0 / np.abs(1.0 + L), axis=1)
    ph = np.unwrap(np.angle(L), axis=1)
    gm = np.full(cand.size, np.inf)
    crossing = (ph[:, :-1] > -math.pi) & (ph[:, 1:] <= -math.pi)
    for r in np.nonzero(crossing.any(axis=1))[0]:
        j = int(np.argmax(crossing[r]))
        gm[r] = 1.0 / np.abs(L[r, j + 1])
    ok = (ms <= ms_max) & (gm >= gm_min) & (Kp[cand] <= k_max)
    if not np.any(ok):
        ok = (ms <= ms_max) & (gm >= gm_min)
    if not np.any(ok):
        ok = ms == ms.min()
    best = cand[ok][np.argmax(Ki[cand][ok])]
    return sign * Kp[best], Kp[best] / Ki[best], 0.0


def tune(rule: str, model=None, Ts: float = 1.0, Ku: float | None = None, Pu: float | None = None,
         criteria: Criteria | None = None, detune_steps: int = 8, verify_with=None,
         k_max: float = math.inf, pm_target_deg: float = 60.0) -> Tuning:
    """Apply ``rule`` and verify it. ``verify_with``: model for verification (default ``model``).

    ``k_max`` bounds the proportional gain (measurement noise reaches the actuator through it:
    sd(u) ~ |K| sd(noise)); ``pidtune`` takes it as a constraint of its search, the other rules
    have their gain reduced to it (a detuning, noted on the result)."""
    if rule not in RULES:
        raise ValueError(f"unknown tuning rule '{rule}'; known: {', '.join(RULES)}")
    criteria = criteria or Criteria()
    vmodel = verify_with or model
    knob = None
    notes: list[str] = []
    for attempt in range(detune_steps + 1):
        if rule == "simc":
            base = _sampled(model, Ts).theta
            knob = base * 1.5**attempt
            K, Ti, Td = simc(model, Ts, tau_c=knob)
        elif rule == "imc":
            m = _sampled(model, Ts).as_fopdt()
            knob = max(m.theta, m.tau / 3) * 1.5**attempt
            K, Ti, Td = imc(model, Ts, lam=knob)
        elif rule == "pidtune":
            knob = min(pm_target_deg + 5 * attempt, 85.0)
            K, Ti, Td = pidtune_pi(model, Ts, pm_deg=knob, k_max=k_max)
        elif rule == "amigo":
            K, Ti, Td = amigo(model, Ts)
            knob = 0.85**attempt  # detuning by gain reduction
            K *= knob
        elif rule == "zn_step":
            K, Ti, Td = zn_step(model, Ts)
        elif rule in ("zn_ultimate", "tyreus_luyben"):
            if Ku is None or Pu is None:
                raise ValueError(f"rule '{rule}' needs the ultimate gain and period (a relay test)")
            K, Ti, Td = (zn_ultimate if rule == "zn_ultimate" else tyreus_luyben)(Ku, Pu)
            if vmodel is not None and vmodel.k < 0:
                K = -K
        if abs(K) > k_max:
            notes.append(f"gain {K:.4g} reduced to the noise limit {math.copysign(k_max, K):.4g}")
            K = math.copysign(k_max, K)
        ver = verify(vmodel, K, Ti, Td, Ts, criteria=criteria) if vmodel is not None else None
        t = Tuning(rule, K, Ti, Td, verification=ver, notes=notes)
        if ver is None or ver.ok or rule not in ROBUST_RULES:
            return t
        notes.append(f"detuned (attempt {attempt + 1}): {'; '.join(ver.reasons)}")
    return t
