"""Discrete PID controller for plant loops.

Form (Åström and Hägglund 2006, *Advanced PID Control*, ISA, chapter 3 and section 13.4
"Computer implementation"), ideal (non-interacting) parallel form with setpoint weights:

    v = u0 + K [ b r - y ] + I + D
    dI/dt = K/Ti (r - y) + (u - v)/Tt                 (back-calculation anti-windup)
    Tf dD/dt + D = K Td d(c r - y)/dt,  Tf = Td/N     (filtered derivative)
    u = sat(v) with output limits and a rate limit

discretised with sample time ``Ts``: forward Euler for the integral, backward difference
for the filtered derivative (stable for any Td, N). Anti-windup is selectable:
``back_calculation`` (tracking time Tt, default sqrt(Ti Td) or Ti/2 for PI) or
``clamping`` (conditional integration: the integral is frozen while the output is saturated
and the error would drive it further into saturation).

The ``velocity`` (incremental) form computes the output change per sample,
``du = K (e_b - e_b,prev) + K Ts/Ti e + (D - D_prev)``, and adds it to the last applied
output, so it cannot wind up by construction.

Manual mode: the output is set by the operator; the controller tracks it (the integral is
reset so that switching back to automatic is bumpless). All times are in days, like the
plant's rates; the sample time is documented on each loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class PIDSettings:
    K: float  # proportional gain (actuator units per measurement unit)
    Ti_d: float = math.inf  # integral time; inf: no integral action
    Td_d: float = 0.0  # derivative time
    N: float = 10.0  # derivative filter: Tf = Td / N
    b: float = 1.0  # setpoint weight on the proportional term
    c: float = 0.0  # setpoint weight on the derivative term
    Tt_d: float | None = None  # tracking time for back-calculation
    offset: float = 0.0  # output bias u0
    u_min: float = -math.inf
    u_max: float = math.inf
    rate_max_per_d: float = math.inf  # largest output change per day
    anti_windup: str = "back_calculation"  # or "clamping"
    form: str = "positional"  # or "velocity"

    def tracking_time(self) -> float:
        if self.Tt_d is not None:
            return self.Tt_d
        if self.Td_d > 0 and math.isfinite(self.Ti_d):
            return math.sqrt(self.Ti_d * self.Td_d)
        return self.Ti_d / 2 if math.isfinite(self.Ti_d) else math.inf


@dataclass
class PID:
    """A discrete PID loop; call :meth:`step` once per sample with the measurement."""

    settings: PIDSettings
    setpoint: float
    Ts_d: float
    integral: float = 0.0
    derivative: float = 0.0
    y_prev: float | None = None
    r_prev: float | None = None
    u_prev: float | None = None
    manual: bool = False
    manual_output: float = 0.0
    last: dict = field(default_factory=lambda: {"y": math.nan, "u": math.nan, "e": math.nan, "saturated": False})

    # -- configuration -------------------------------------------------------------------
    def retune(self, K: float, Ti_d: float, Td_d: float = 0.0, Tt_d: float | None = None) -> None:
        """New gains, bumpless: the integral is adjusted so the output does not jump."""
        s = self.settings
        if self.y_prev is not None and s.form == "positional":
            e_p = s.b * self.setpoint - self.y_prev
            # keep v = u0 + P + I + D unchanged: the old P and D move into the integral
            self.integral += (s.K - K) * e_p + self.derivative
            self.derivative = 0.0
        s.K, s.Ti_d, s.Td_d, s.Tt_d = K, Ti_d, Td_d, Tt_d

    def initialise(self, u_now: float, y_now: float) -> None:
        """Bumpless start from the current actuator value and measurement."""
        s = self.settings
        self.integral = u_now - s.offset - s.K * (s.b * self.setpoint - y_now)
        self.derivative = 0.0
        self.y_prev = y_now
        self.r_prev = self.setpoint
        self.u_prev = u_now

    def operating_output(self) -> float:
        """The output the loop holds on average: in position form the offset plus the integral
        state (plus the setpoint-weight term), which carries the loop's low-frequency output,
        without the proportional kick of the last noisy sample. Where to hold the actuator when
        the loop goes to manual for a test: the last output of a loop with a noisy sensor can sit
        thousands of m3/d off its mean, and the plant then drifts to another operating point
        during the test."""
        s = self.settings
        if s.form == "velocity" or self.u_prev is None:
            return self._limit(self.u_prev if self.u_prev is not None else s.offset)
        return self._limit(s.offset + self.integral + s.K * (s.b - 1.0) * self.setpoint)

    def set_manual(self, output: float) -> None:
        self.manual = True
        self.manual_output = output

    def set_auto(self) -> None:
        self.manual = False

    # -- one sample --------------------------------------------------------------------------
    def step(self, y: float) -> float:
        s = self.settings
        h = self.Ts_d
        r = self.setpoint
        if self.y_prev is None:
            self.y_prev, self.r_prev = y, r
        e = r - y
        # filtered derivative on c r - y (backward difference)
        if s.Td_d > 0:
            Tf = s.Td_d / s.N
            ad = Tf / (Tf + h)
            bd = s.K * s.Td_d / (Tf + h)
            d_sig = (s.c * r - y) - (s.c * self.r_prev - self.y_prev)
            D = ad * self.derivative + bd * d_sig
        else:
            D = 0.0
        P = s.K * (s.b * r - y)
        if self.manual:
            u = self._limit(self.manual_output)
            # track the manual output: choose the integral so that v = u now (bumpless transfer)
            self.integral = u - s.offset - P - D
            self.derivative = D
            self._remember(y, r, u, e, False)
            return u
        if s.form == "velocity":
            u_base = self.u_prev if self.u_prev is not None else s.offset
            P_prev = s.K * (s.b * self.r_prev - self.y_prev)
            dI = s.K * h / s.Ti_d * e if math.isfinite(s.Ti_d) else 0.0
            v = u_base + (P - P_prev) + dI + (D - self.derivative)
            u = self._limit(v)
            self.derivative = D
            self._remember(y, r, u, e, u != v)
            return u
        v = s.offset + P + self.integral + D
        u = self._limit(v)
        if math.isfinite(s.Ti_d):
            if s.anti_windup == "clamping":
                pushing_out = (u != v) and ((v > u and e * s.K > 0) or (v < u and e * s.K < 0))
                if not pushing_out:
                    self.integral += s.K * h / s.Ti_d * e
            else:
                Tt = s.tracking_time()
                self.integral += h * (s.K * e / s.Ti_d + (u - v) / Tt)
        self.derivative = D
        self._remember(y, r, u, e, u != v)
        return u

    def _limit(self, v: float) -> float:
        s = self.settings
        u = min(max(v, s.u_min), s.u_max)
        if self.u_prev is not None and math.isfinite(s.rate_max_per_d):
            du = s.rate_max_per_d * self.Ts_d
            u = min(max(u, self.u_prev - du), self.u_prev + du)
        return u

    def _remember(self, y, r, u, e, saturated) -> None:
        self.y_prev, self.r_prev, self.u_prev = y, r, u
        self.last = {"y": y, "u": u, "e": e, "saturated": bool(saturated)}
