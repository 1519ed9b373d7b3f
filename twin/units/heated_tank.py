"""A heated sludge tank on the sludge line: temperature balance of a completely mixed tank.

    rho cp V dT/dt = rho cp Q (T_in - T) + Q_heat - UA (T - T_ambient)
    dC/dt = Q / V (C_in - C)                       (each ASM1 component: held, not converted)

(Metcalf & Eddy 2014, section 13-9, digester heating.) Inputs: the heat delivered to the
sludge (W, from a heat exchanger), the inlet sludge temperature and the ambient temperature.

Simplifications, stated: no biological conversion in the tank (anaerobic digestion is outside
ASM1), constant volume, and the tank lies outside the activated-sludge system boundary, so it
holds no solids for the sludge-production balance (the wasted sludge is counted where it
leaves the activated-sludge system).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from twin.units.asm1 import COMPONENTS, NC, MixedNonReactive, content_mixing, content_outlets
from twin.units.base import FlowTerm, InputVar, Port, StateVar, UnitModel

RHO_CP_WATER = 998.0 * 4186.0  # J/(m3 K)


@dataclass(frozen=True)
class HeatedTankParams:
    """Defaults: a 1000 m3 tank (two and a half days of BSM1 wasted sludge) with walls, roof and
    floor losing 1500 W/K (Metcalf & Eddy 2014, Table 13-22 ranges of U, times a tank area)."""

    volume_m3: float = 1000.0
    loss_ua_w_k: float = 1500.0

    def validate(self) -> str | None:
        if self.volume_m3 <= 0 or self.loss_ua_w_k < 0:
            return "volume_m3 must be positive and loss_ua_w_k not negative"
        return None


@njit(cache=True, error_model="numpy")
def tank_derivatives(t, x, Q, C, ins, outs, u, p, dx):
    V = p[0]
    ua = p[1]
    q = Q[ins[0]]
    heat_w, t_in, t_amb = u[0], u[1], u[2]
    # W -> K/d: divide by rho cp V (J/K), times 86400 s/d; Q in m3/d
    dx[0] = q / V * (t_in - x[0]) + (heat_w - ua * (x[0] - t_amb)) * 86400.0 / (RHO_CP_WATER * V)
    content_mixing(q / V, C, ins[0], x, dx)


class HeatedTank(MixedNonReactive, UnitModel):
    """Heated, completely mixed sludge tank: inlet ``in``, outlet ``out``; state ``T_C``."""

    type_name = "heated_tank"
    description = "heated sludge tank: temperature balance with heat input and losses (no conversion)"
    Params = HeatedTankParams
    feedthrough = False
    options = frozenset({"initial_temperature_C"})
    outlets_kernel = content_outlets
    derivatives_kernel = tank_derivatives

    def inlets(self):
        return (Port("in"),)

    def outlets(self):
        return (Port("out"),)

    def states(self):
        return (StateVar("T_C", "degC"),) + tuple(StateVar(n, u) for n, u in COMPONENTS)

    def inputs(self):
        return (InputVar("heat_W", "W", 0.0), InputVar("inlet_temperature_C", "degC", 15.0),
                InputVar("ambient_temperature_C", "degC", 10.0))

    def flow_equations(self):
        return [[FlowTerm("out", "out", 1.0), FlowTerm("in", "in", -1.0)]]

    def param_array(self):
        return np.array([self.params.volume_m3, self.params.loss_ua_w_k])

    def initial_state(self):
        x = np.ones(1 + NC)
        x[0] = float(self.config.get("initial_temperature_C", 35.0))
        return x

