"""Influent pumping station wet well with an overflow weir (bypass of treatment).

A completely mixed well of plan area A: the level h (m) follows the inflow minus what the lift
pumps take and what overflows,

    A dh/dt = Q_in - Q_pumped - Q_overflow,     V = A h,
    d(C)/dt = Q_in / V (C_in - C)                 (each ASM1 component, no reaction)

The pumps take the commanded flow (input ``Q_pump_cmd_m3_d``, set by the pump station) but
run dry below a minimum level: Q_pumped = Q_cmd * clip((h - h_off) / h_ramp, 0, 1). Above the
overflow level the excess leaves over a sharp-crested weir (Bos 1989, *Discharge Measurement
Structures*, rectangular weir: Q = (2/3) Cd L sqrt(2 g) H^1.5), the treatment bypass. Both
outflows carry the well's content. Both flows depend on the level, so they are state flows of
the flowsheet (see twin.units.base).

Simplification: no reaction in the well (its residence time is minutes to hours, short against
ASM1 rates); the level is kept at least a tenth of a millimetre for the concentration balance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from twin.units.asm1 import COMPONENTS, NC, content_mixing, content_outlets, each_component, mixed_holdup
from twin.units.base import FlowTerm, InputVar, Port, StateVar, UnitModel

G = 9.80665


@dataclass(frozen=True)
class WetWellParams:
    """Defaults: a well sized for about 20 minutes of average BSM1 dry-weather flow between the
    pump-off level and the overflow (18 446 m3/d / 1440 min/d x 20 min = 256 m3 over 2.5 m)."""

    area_m2: float = 100.0
    overflow_level_m: float = 3.0
    pump_off_level_m: float = 0.5
    dry_run_ramp_m: float = 0.1
    weir_length_m: float = 5.0
    weir_cd: float = 0.6

    def validate(self) -> str | None:
        if self.area_m2 <= 0 or self.weir_length_m <= 0 or self.dry_run_ramp_m <= 0:
            return "area_m2, weir_length_m and dry_run_ramp_m must be positive"
        if not 0 <= self.pump_off_level_m < self.overflow_level_m:
            return "the pump-off level must lie below the overflow level"
        return None


_A, _HOV, _HOFF, _RAMP, _WL, _CD = range(6)


@njit(cache=True, error_model="numpy")
def wetwell_flows(t, x, u, p, q):
    h = x[0]
    frac = (h - p[_HOFF]) / p[_RAMP]
    frac = 0.0 if frac < 0.0 else (1.0 if frac > 1.0 else frac)
    q[0] = max(u[0], 0.0) * frac
    head = h - p[_HOV]
    if head > 0.0:
        q[1] = (2.0 / 3.0) * p[_CD] * p[_WL] * math.sqrt(2.0 * G) * head**1.5 * 86400.0
    else:
        q[1] = 0.0


@njit(cache=True, error_model="numpy")
def wetwell_derivatives(t, x, Q, C, ins, outs, u, p, dx):
    i_in = ins[0]
    q_in = Q[i_in]
    dx[0] = (q_in - Q[outs[0]] - Q[outs[1]]) / p[_A]
    content_mixing(q_in / (max(x[0], 1e-4) * p[_A]), C, i_in, x, dx)


class WetWell(UnitModel):
    """Wet well of an influent pumping station: inlet ``in``, outlets ``pumped`` and ``overflow``."""

    type_name = "wet_well"
    description = "pumping-station wet well: level balance, lift-pump draw, overflow weir (bypass)"
    Params = WetWellParams
    feedthrough = False
    options = frozenset({"initial_level_m"})
    outlets_kernel = content_outlets
    derivatives_kernel = wetwell_derivatives
    flows_kernel = wetwell_flows

    def inlets(self):
        return (Port("in"),)

    def outlets(self):
        return (Port("pumped"), Port("overflow"))

    def states(self):
        return (StateVar("level_m", "m"),) + tuple(StateVar(n, u) for n, u in COMPONENTS)

    def inputs(self):
        return (InputVar("Q_pump_cmd_m3_d", "m3/d", 18446.0),)

    def state_flows(self):
        return ("pumped_m3_d", "overflow_m3_d")

    def flow_equations(self):
        return [[FlowTerm("out", "pumped", 1.0), FlowTerm("q", "pumped_m3_d", -1.0)],
                [FlowTerm("out", "overflow", 1.0), FlowTerm("q", "overflow_m3_d", -1.0)]]

    def param_array(self):
        p = self.params
        return np.array([p.area_m2, p.overflow_level_m, p.pump_off_level_m, p.dry_run_ramp_m,
                         p.weir_length_m, p.weir_cd])

    def initial_state(self):
        x = np.ones(1 + NC)
        x[0] = float(self.config.get("initial_level_m", 0.5 * (self.params.pump_off_level_m
                                                               + self.params.overflow_level_m)))
        return x

    def volume_m3(self) -> float:
        return self.params.area_m2 * self.params.overflow_level_m

    def conserved(self):
        return each_component()

    def holdup(self, x):
        return mixed_holdup(self.conserved(), x[0] * self.params.area_m2, x[1:])

    def solids_inventory_kg(self, x):
        from twin.units.asm1 import tss

        return tss(x[1:]) * max(x[0], 0.0) * self.params.area_m2 / 1000.0
