"""Primary clarifier of BSM2: the Otterpohl and Freund model.

Model: Otterpohl and Freund (1992), *Dynamic models for clarifiers of activated sludge
plants with dry and wet weather flows*, Water Science and Technology 26(5-6), 1391-1400, in
the form and with the parameters of the IWA Benchmark Simulation Model No. 2: Gernaey,
Jeppsson, Vanrolleghem and Copp (2014), *Benchmarking of Control Strategies for Wastewater
Treatment Plants*, IWA Scientific and Technical Report No. 23, section on the primary
clarifier; Jeppsson et al. (2007), *Benchmark simulation model no 2: general protocol and
exploratory case studies*, Water Science and Technology 56(8), 67-78.

The clarifier is one completely mixed volume V that smooths the influent, and an empirical
split of that volume's content into primary effluent (overflow) and primary sludge
(underflow):

    dC/dt     = Q_in / V (C_in - C)                              each ASM1 component
    dQ_m/dt   = (Q_in - Q_m) / t_m                               smoothed flow (m3/d)
    t_h       = V / Q_m                                          hydraulic retention time (d)
    eta_COD   = f_corr (2.88 f_X - 0.118) (1.45 + 6.15 ln(t_h 24 60))   COD removal (%)
    eta_X     = min(100, max(0, eta_COD / f_X))                  particulate COD removal (%)
    f_i       = 1 - f_SX,i eta_X / 100                           f_SX,i = 1 particulate, 0 soluble
    Q_u       = f_PS Q_in,   Q_o = Q_in - Q_u
    C_o,i     = f_i C_i
    C_u,i     = ((1 - f_i) Q_in / Q_u + f_i) C_i

so every component leaves the volume as it entered (``Q_o C_o + Q_u C_u = Q_in C``).

Simplifications, with their reasons:

* no temperature state: the streams of this project carry the 13 ASM1 concentrations and no
  temperature (the BSM2 model passes temperature through when its temperature model is off,
  as in the BSM1-style plants here);
* no conversion in the clarifier (as in BSM2: its residence time, about an hour, is short
  against the ASM1 rates, and it is not aerated);
* negative concentrations are not clipped to zero (the BSM2 code clips outlets at zero; the
  states here stay positive for positive inflows, and clipping would break the balances);
* the retention time uses the smoothed flow with a floor of 1e-3 m3/d, so a dry inflow gives
  a long retention time and no division by zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from twin.errors import ConfigError
from twin.units.asm1 import COMPONENTS, NC, PARTICULATES, MixedNonReactive
from twin.units.base import FlowTerm, Port, StateVar, UnitModel, did_you_mean

#: 1 for the components that settle (the particulates), 0 for the solubles: f_SX,i of
#: Otterpohl and Freund, all particulate factors set to 1 as in BSM2 (Gernaey et al. 2014)
SETTLEABLE = np.array([1.0 if name in PARTICULATES else 0.0 for name, _ in COMPONENTS])
MIN_FLOW_M3_D = 1e-3


@dataclass(frozen=True)
class PrimaryClarifierParams:
    """BSM2 primary clarifier (Gernaey et al. 2014, Table of the primary clarifier parameters;
    Jeppsson et al. 2007): the same values as the BSM2 Matlab/Simulink reference and the
    bsm2-python implementation."""

    #: clarifier volume (m3), BSM2
    volume_m3: float = 900.0
    #: correction factor of the COD removal efficiency (-), BSM2
    f_corr: float = 0.65
    #: mean fraction of particulate COD in the influent, COD_part / COD_tot (-), BSM2
    f_X: float = 0.85
    #: time constant of the flow smoothing used for the retention time (d), BSM2 (3 h)
    t_m_d: float = 0.125
    #: primary sludge flow as a fraction of the influent flow (-), BSM2
    f_PS: float = 0.007

    def validate(self) -> str | None:
        if self.volume_m3 <= 0 or self.t_m_d <= 0:
            return "volume_m3 and t_m_d must be positive"
        if not 0 < self.f_PS < 1:
            return f"f_PS must lie between 0 and 1 (got {self.f_PS})"
        if not 0 < self.f_X <= 1:
            return f"f_X must lie in (0, 1] (got {self.f_X})"
        if self.f_corr < 0:
            return f"f_corr must not be negative (got {self.f_corr})"
        return None


# parameter array layout
_V, _FCORR, _FX, _TM, _FPS = range(5)
_SX = 5  # then the 13 settleability factors


@njit(cache=True, error_model="numpy")
def particulate_removal_pct(hrt_d, f_corr, f_x):
    """eta_X: removal of particulate COD (%) at retention time ``hrt_d`` (Otterpohl and Freund 1992)."""
    eta_cod = f_corr * (2.88 * f_x - 0.118) * (1.45 + 6.15 * math.log(hrt_d * 24.0 * 60.0))
    return min(100.0, max(0.0, eta_cod / f_x))


@njit(cache=True, error_model="numpy")
def primary_outlets(t, x, Q, C, ins, outs, u, p):
    """Overflow carries f_i of the volume's concentration; the underflow the rest, thickened."""
    hrt_d = p[_V] / max(x[0], MIN_FLOW_M3_D)
    eta = particulate_removal_pct(hrt_d, p[_FCORR], p[_FX]) / 100.0
    thickening = 1.0 / p[_FPS]  # Q_in / Q_u
    o, w = outs[0], outs[1]
    for i in range(13):
        f = 1.0 - p[_SX + i] * eta
        c = x[1 + i]
        C[o, i] = f * c
        C[w, i] = ((1.0 - f) * thickening + f) * c


@njit(cache=True, error_model="numpy")
def primary_derivatives(t, x, Q, C, ins, outs, u, p, dx):
    q_in = Q[ins[0]]
    dx[0] = (q_in - x[0]) / p[_TM]
    dil = q_in / p[_V]
    for i in range(13):
        dx[1 + i] = dil * (C[ins[0], i] - x[1 + i])


class PrimaryClarifier(MixedNonReactive, UnitModel):
    """Primary clarifier (Otterpohl and Freund 1992, BSM2 form): inlet ``in``, outlets
    ``overflow`` (primary effluent) and ``underflow`` (primary sludge, f_PS of the inflow).

    States: ``Q_m`` (smoothed inflow, m3/d) and the 13 ASM1 concentrations of the volume.
    The clarifier lies outside the activated-sludge system, so it reports no solids inventory
    for the BSM1 sludge-production balance (the default of :meth:`UnitModel.solids_inventory_kg`).
    """

    type_name = "primary_clarifier"
    description = "primary clarifier (Otterpohl-Freund, BSM2): mixed volume, HRT-dependent removal of particulates"
    Params = PrimaryClarifierParams
    feedthrough = False  # outlets follow from the states (the volume's content and smoothed flow)
    options = frozenset({"initial"})
    outlets_kernel = primary_outlets
    derivatives_kernel = primary_derivatives

    def __init__(self, name, params, config):
        super().__init__(name, params, config)
        self.initial_state()  # a misspelt 'initial' entry is a flowsheet error, raised here

    def inlets(self):
        return (Port("in"),)

    def outlets(self):
        return (Port("overflow"), Port("underflow"))

    def states(self):
        return (StateVar("Q_m", "m3/d"),) + tuple(StateVar(n, unit) for n, unit in COMPONENTS)

    def flow_equations(self):
        f_ps = self.params.f_PS
        return [[FlowTerm("out", "underflow", 1.0), FlowTerm("in", "in", -f_ps)],
                [FlowTerm("out", "overflow", 1.0), FlowTerm("out", "underflow", 1.0), FlowTerm("in", "in", -1.0)]]

    def param_array(self):
        p = self.params
        return np.concatenate(([p.volume_m3, p.f_corr, p.f_X, p.t_m_d, p.f_PS], SETTLEABLE))

    def initial_state(self):
        """The BSM2 design flow (20 648 m3/d, Gernaey et al. 2014) and 1 g/m3 of every component,
        or the ``initial`` option's values (``Q_m`` and component names)."""
        x = np.ones(1 + NC)
        x[0] = 20648.0
        names = ["Q_m"] + [n for n, _ in COMPONENTS]
        for k, v in (self.config.get("initial") or {}).items():
            if k not in names:
                raise ConfigError(f"unit '{self.name}': initial.{k}: no such state{did_you_mean(k, names)} "
                                  f"(states: {', '.join(names)})")
            x[names.index(k)] = float(v)
        return x

