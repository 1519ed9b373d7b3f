"""Centrifugal pumps: head and efficiency curves, affinity laws, system curve, operating point, power.

Model (Karassik et al., *Pump Handbook*, 4th ed., 2008, ch. 2; Gülich, *Centrifugal Pumps*,
2010, ch. 3 and 4), in the usual engineering simplification:

* head curve at rated speed n0: H0(Q) = H_shutoff - a Q^2 (quadratic through the best
  efficiency point), scaled by an impeller condition factor w (1 = new; a worn impeller
  develops less head: H_shutoff -> w H_shutoff);
* affinity laws for speed ratio r = n / n0: Q ~ r, H ~ r^2, P ~ r^3, so
  H(Q, r) = r^2 H_shutoff w - a Q^2 and the efficiency at (Q, r) is the rated-speed
  efficiency at Q / r;
* efficiency: a parabola through zero flow, the best efficiency point (Q_bep, eta_bep) and
  zero again at 2 Q_bep, times the condition factor (wear lowers efficiency as well as head);
* system curve: H_sys(Q) = H_static + k Q^2;
* power: hydraulic rho g Q H, shaft = hydraulic / eta, electrical = shaft / (eta_motor eta_drive).

Flows in m3/s inside the formulas, heads in m, powers in W; helpers convert m3/d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RHO_WATER = 998.0  # kg/m3 at about 20 degC
G = 9.80665  # m/s2


@dataclass(frozen=True)
class PumpCurve:
    """A pump at rated speed. ``a`` follows from shut-off head and the best efficiency point."""

    shutoff_head_m: float
    bep_flow_m3_s: float
    bep_head_m: float
    bep_efficiency: float
    rated_speed_rpm: float = 1450.0
    min_speed_rpm: float = 0.0
    max_speed_rpm: float | None = None
    motor_efficiency: float = 0.95
    drive_efficiency: float = 0.97

    def __post_init__(self):
        if not self.shutoff_head_m > self.bep_head_m > 0:
            raise ValueError("shut-off head must exceed the head at the best efficiency point, both positive")
        if not 0 < self.bep_efficiency <= 1 or not 0 < self.motor_efficiency <= 1 or not 0 < self.drive_efficiency <= 1:
            raise ValueError("efficiencies must lie in (0, 1]")

    @property
    def a(self) -> float:
        return (self.shutoff_head_m - self.bep_head_m) / self.bep_flow_m3_s**2

    def head_m(self, q_m3_s: float, speed_ratio: float = 1.0, condition: float = 1.0) -> float:
        return speed_ratio * speed_ratio * self.shutoff_head_m * condition - self.a * (q_m3_s * q_m3_s)

    def efficiency(self, q_m3_s: float, speed_ratio: float = 1.0, condition: float = 1.0) -> float:
        if speed_ratio <= 0:
            return 0.0
        x = q_m3_s / speed_ratio / self.bep_flow_m3_s
        return max(0.0, self.bep_efficiency * condition * x * (2.0 - x))


@dataclass(frozen=True)
class SystemCurve:
    static_head_m: float
    k_s2_m5: float  # friction coefficient: H = static + k Q^2 (Q in m3/s)

    def head_m(self, q_m3_s: float) -> float:
        return self.static_head_m + self.k_s2_m5 * (q_m3_s * q_m3_s)


@dataclass(frozen=True)
class OperatingPoint:
    flow_m3_s: float
    head_m: float
    efficiency: float
    hydraulic_w: float
    shaft_w: float
    electrical_w: float

    @property
    def flow_m3_d(self) -> float:
        return self.flow_m3_s * 86400.0

    @property
    def specific_energy_kwh_m3(self) -> float:
        return self.electrical_w / 1000.0 / (self.flow_m3_s * 3600.0) if self.flow_m3_s > 0 else math.inf


def power(pump: PumpCurve, q_m3_s: float, head_m: float, speed_ratio: float, condition: float = 1.0
          ) -> tuple[float, float, float, float]:
    """(efficiency, hydraulic W, shaft W, electrical W) at a given flow and head."""
    eta = pump.efficiency(q_m3_s, speed_ratio, condition)
    hyd = RHO_WATER * G * q_m3_s * head_m
    shaft = hyd / eta if eta > 0 else (0.0 if hyd == 0 else math.inf)
    return eta, hyd, shaft, shaft / (pump.motor_efficiency * pump.drive_efficiency)


def operating_point(pump: PumpCurve, system: SystemCurve, speed_ratio: float = 1.0, n_parallel: int = 1,
                    condition: float = 1.0) -> OperatingPoint:
    """Where ``n_parallel`` identical pumps at ``speed_ratio`` meet the system curve.

    Parallel pumps at equal speed share the flow equally: each sees Q / n at the common head,
    so r^2 w H_s - a (Q/n)^2 = H_static + k Q^2, solved in closed form.
    """
    if n_parallel < 1 or speed_ratio <= 0:
        return OperatingPoint(0.0, system.static_head_m, 0.0, 0.0, 0.0, 0.0)
    lift = speed_ratio * speed_ratio * pump.shutoff_head_m * condition - system.static_head_m
    if lift <= 0:
        return OperatingPoint(0.0, system.static_head_m, 0.0, 0.0, 0.0, 0.0)
    q_total = math.sqrt(lift / (pump.a / (n_parallel * n_parallel) + system.k_s2_m5))
    head = system.head_m(q_total)
    eta, hyd, shaft, el = power(pump, q_total / n_parallel, head, speed_ratio, condition)
    return OperatingPoint(q_total, head, eta, n_parallel * hyd, n_parallel * shaft, n_parallel * el)


def speed_for_flow(pump: PumpCurve, system: SystemCurve, q_m3_s: float, n_parallel: int = 1,
                   condition: float = 1.0) -> float:
    """The speed ratio at which ``n_parallel`` pumps deliver ``q_m3_s`` into the system."""
    head = system.head_m(q_m3_s)
    q1 = q_m3_s / n_parallel
    return math.sqrt((head + pump.a * (q1 * q1)) / (pump.shutoff_head_m * condition))
