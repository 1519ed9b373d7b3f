"""Low-order process models used for tuning: FOPDT, SOPDT and general rational transfer functions.

``FOPDT``: k e^{-theta s} / (tau s + 1).  ``SOPDT``: k e^{-theta s} / ((tau1 s + 1)(tau2 s + 1)).
``RationalTF``: num(s)/den(s) e^{-theta s} (for checks on textbook plants such as 1/(s+1)^3).
Time unit: whatever the caller uses consistently (days inside the twin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FOPDT:
    k: float
    tau: float
    theta: float

    def num_den(self) -> tuple[list[float], list[float]]:
        return [self.k], [self.tau, 1.0]

    def freq(self, w: np.ndarray) -> np.ndarray:
        s = 1j * np.asarray(w)
        return self.k * np.exp(-self.theta * s) / (self.tau * s + 1)

    def step(self, t: np.ndarray) -> np.ndarray:
        tt = np.maximum(np.asarray(t) - self.theta, 0.0)
        return self.k * (1 - np.exp(-tt / self.tau))

    def as_fopdt(self) -> FOPDT:
        return self

    def describe(self) -> str:
        return f"FOPDT k={self.k:.4g} tau={self.tau:.4g} theta={self.theta:.4g}"


@dataclass(frozen=True)
class SOPDT:
    k: float
    tau1: float  # the larger time constant
    tau2: float
    theta: float

    def num_den(self) -> tuple[list[float], list[float]]:
        return [self.k], [self.tau1 * self.tau2, self.tau1 + self.tau2, 1.0]

    def freq(self, w: np.ndarray) -> np.ndarray:
        s = 1j * np.asarray(w)
        return self.k * np.exp(-self.theta * s) / ((self.tau1 * s + 1) * (self.tau2 * s + 1))

    def step(self, t: np.ndarray) -> np.ndarray:
        tt = np.maximum(np.asarray(t) - self.theta, 0.0)
        a, b = self.tau1, self.tau2
        if abs(a - b) < 1e-9 * max(a, b):
            return self.k * (1 - (1 + tt / a) * np.exp(-tt / a))
        return self.k * (1 - (a * np.exp(-tt / a) - b * np.exp(-tt / b)) / (a - b))

    def as_fopdt(self) -> FOPDT:
        """Skogestad's half rule (2003): half of tau2 goes to the time constant, half to the delay."""
        return FOPDT(self.k, self.tau1 + self.tau2 / 2, self.theta + self.tau2 / 2)

    def describe(self) -> str:
        return f"SOPDT k={self.k:.4g} tau1={self.tau1:.4g} tau2={self.tau2:.4g} theta={self.theta:.4g}"


@dataclass(frozen=True)
class RationalTF:
    num: tuple[float, ...]
    den: tuple[float, ...]
    theta: float = 0.0

    def num_den(self) -> tuple[list[float], list[float]]:
        return list(self.num), list(self.den)

    @property
    def k(self) -> float:
        return float(self.num[-1] / self.den[-1])

    def freq(self, w: np.ndarray) -> np.ndarray:
        s = 1j * np.asarray(w)
        return np.polyval(self.num, s) / np.polyval(self.den, s) * np.exp(-self.theta * s)

    def as_fopdt(self) -> FOPDT:
        """Half-rule reduction of a stable real-pole denominator (Skogestad 2003)."""
        poles = np.sort(-1 / np.roots(self.den).real)[::-1]
        tau = poles[0] + (poles[1] / 2 if poles.size > 1 else 0.0)
        theta = self.theta + (poles[1] / 2 if poles.size > 1 else 0.0) + float(np.sum(poles[2:]))
        return FOPDT(self.k, float(tau), float(theta))

    def describe(self) -> str:
        return f"TF num={list(self.num)} den={list(self.den)} theta={self.theta:.4g}"


Model = FOPDT | SOPDT | RationalTF
