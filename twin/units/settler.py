"""Takács layered secondary settler, non-reactive, as specified for BSM1.

Takács, Patry and Nolasco (1991), *A dynamic model of the clarification-thickening
process*, Water Research 25(10), 1263-1271; BSM1 form and parameters from Alex et al.
(2008), section 2.3. Layers are numbered here from the top (0) to the bottom (N-1).

Simplification (the BSM1 one): suspended solids are one state per layer; each
particulate ASM1 component leaves the settler in the same proportion to TSS as in the
current feed. Soluble components are carried per layer without settling. Solids move
by bulk flow (up above the feed layer, down below it) and by the double-exponential
settling velocity, with the flux limits of the Takács model and the threshold X_t for
the clarification zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from twin.units.asm1 import COMPONENTS, IDX, SOLUBLES, each_component
from twin.units.base import FlowTerm, Port, StateVar, UnitModel

_SOLUBLE_IDX = np.array([IDX[n] for n in SOLUBLES], dtype=np.int64)
_PARTICULATE_IDX = np.array([IDX[n] for n in ("XI", "XS", "XBH", "XBA", "XP", "XND")], dtype=np.int64)
_SOLIDS_IDX = np.array([IDX[n] for n in ("XI", "XS", "XBH", "XBA", "XP")], dtype=np.int64)


@dataclass(frozen=True)
class SettlerParams:
    """Defaults: BSM1 settler (Alex et al. 2008, Table 2.5): 1500 m2 x 4 m, ten layers,
    feed to the sixth layer counted from the bottom (the fifth from the top)."""

    area_m2: float = 1500.0
    height_m: float = 4.0
    layers: int = 10
    feed_layer_from_top: int = 5  # 1-based
    v0_max_m_d: float = 250.0  # maximum practical settling velocity
    v0_m_d: float = 474.0  # maximum Vesilind settling velocity
    r_h_m3_g: float = 0.000576  # hindered-zone settling parameter
    r_p_m3_g: float = 0.00286  # flocculant-zone settling parameter
    f_ns: float = 0.00228  # non-settleable fraction of the feed solids
    X_t_g_m3: float = 3000.0  # threshold concentration of the clarification zone
    tss_per_cod: float = 0.75  # g SS per g particulate COD

    def validate(self) -> str | None:
        if self.area_m2 <= 0 or self.height_m <= 0:
            return "area_m2 and height_m must be positive"
        if self.layers < 3:
            return f"layers must be at least 3 (got {self.layers})"
        if not 1 < self.feed_layer_from_top < self.layers:
            return f"feed_layer_from_top must lie between 2 and {self.layers - 1}"
        if min(self.v0_max_m_d, self.v0_m_d, self.r_h_m3_g, self.r_p_m3_g, self.f_ns) < 0:
            return "settling parameters must not be negative"
        return None


# parameter array layout
_A, _Z, _N, _F, _V0MAX, _V0, _RH, _RP, _FNS, _XT, _TSSF = range(11)


@njit(cache=True, error_model="numpy")
def _feed_tss(C, i_feed, f):
    s = 0.0
    for k in _SOLIDS_IDX:
        s += C[i_feed, k]
    return f * s


@njit(cache=True, error_model="numpy")
def settler_outlets(t, x, Q, C, ins, outs, u, p):
    n = int(p[_N])
    i_feed = ins[0]
    tss_feed = _feed_tss(C, i_feed, p[_TSSF])
    for o, layer in ((outs[0], 0), (outs[1], n - 1)):
        for j in range(_SOLUBLE_IDX.size):
            C[o, _SOLUBLE_IDX[j]] = x[n * (1 + j) + layer]
        if tss_feed > 0.0:
            ratio = x[layer] / tss_feed
            for k in _PARTICULATE_IDX:
                C[o, k] = C[i_feed, k] * ratio
        else:
            for k in _PARTICULATE_IDX:
                C[o, k] = 0.0


@njit(cache=True, error_model="numpy")
def settling_velocity(X, X_min, p):
    v = p[_V0] * (math.exp(-p[_RH] * (X - X_min)) - math.exp(-p[_RP] * (X - X_min)))
    return max(0.0, min(p[_V0MAX], v))


@njit(cache=True, error_model="numpy")
def settler_derivatives(t, x, Q, C, ins, outs, u, p, dx):
    n = int(p[_N])
    f = int(p[_F])  # feed layer, 0-based from the top
    area = p[_A]
    z = p[_Z]
    X_t = p[_XT]
    i_feed = ins[0]
    q_feed = Q[i_feed]
    v_up = Q[outs[0]] / area
    v_dn = Q[outs[1]] / area
    tss_feed = _feed_tss(C, i_feed, p[_TSSF])
    X_min = p[_FNS] * tss_feed
    # settling flux J from layer i down to layer i+1, computed on the fly (no allocation)
    vsx_i = settling_velocity(x[0], X_min, p) * x[0]
    j_in = 0.0
    for i in range(n):
        if i < n - 1:
            vsx_next = settling_velocity(x[i + 1], X_min, p) * x[i + 1]
            if i < f and x[i + 1] <= X_t:
                j_out = vsx_i
            else:
                j_out = min(vsx_i, vsx_next)
        else:
            vsx_next = 0.0
            j_out = 0.0
        if i < f:
            bulk = v_up * (x[i + 1] - x[i])
        elif i == f:
            bulk = q_feed * tss_feed / area - (v_up + v_dn) * x[i]
        else:
            bulk = v_dn * (x[i - 1] - x[i])
        dx[i] = (bulk + j_in - j_out) / z
        j_in = j_out
        vsx_i = vsx_next
    for j in range(_SOLUBLE_IDX.size):
        off = n * (1 + j)
        c_feed = C[i_feed, _SOLUBLE_IDX[j]]
        for i in range(n):
            s = x[off + i]
            if i < f:
                d = v_up * (x[off + i + 1] - s)
            elif i == f:
                d = q_feed * c_feed / area - (v_up + v_dn) * s
            else:
                d = v_dn * (x[off + i - 1] - s)
            dx[off + i] = d / z


class TakacsSettler(UnitModel):
    """Ten-layer (configurable) non-reactive Takács settler: feed in, effluent and underflow out.

    The underflow rate is set by what is pumped from it (the downstream splitter); the
    effluent is the feed minus the underflow.
    """

    type_name = "takacs_settler"
    description = "layered non-reactive secondary settler (Takács double-exponential settling)"
    Params = SettlerParams
    feedthrough = True  # particulate fractions of the outlets follow the current feed
    outlets_kernel = settler_outlets
    derivatives_kernel = settler_derivatives

    def inlets(self):
        return (Port("feed"),)

    def outlets(self):
        return (Port("effluent"), Port("underflow"))

    def states(self):
        n = self.params.layers
        names = [StateVar(f"TSS_{i + 1}", "g SS/m3") for i in range(n)]
        units = dict(COMPONENTS)
        for s in SOLUBLES:
            names += [StateVar(f"{s}_{i + 1}", units[s]) for i in range(n)]
        return tuple(names)

    def flow_equations(self):
        return [[FlowTerm("in", "feed", 1.0), FlowTerm("out", "effluent", -1.0),
                 FlowTerm("out", "underflow", -1.0)]]

    def param_array(self):
        p = self.params
        return np.array([p.area_m2, p.height_m / p.layers, p.layers, p.feed_layer_from_top - 1,
                         p.v0_max_m_d, p.v0_m_d, p.r_h_m3_g, p.r_p_m3_g, p.f_ns, p.X_t_g_m3,
                         p.tss_per_cod], dtype=float)

    def initial_state(self):
        n = self.params.layers
        x = np.ones(len(self.states()))
        x[:n] = np.linspace(10.0, 6000.0, n)
        return x

    def conserved(self):
        """Each soluble component, and suspended solids (the BSM1 settler carries solids as one
        TSS state per layer; particulate components follow the feed's proportions)."""
        out = {n: w for n, w in each_component().items() if n in SOLUBLES}
        w = np.zeros(len(COMPONENTS))
        w[_SOLIDS_IDX] = self.params.tss_per_cod
        out["TSS"] = w
        return out

    def holdup(self, x):
        p = self.params
        n = p.layers
        layer_m3 = p.area_m2 * p.height_m / n
        out = {s: float(np.sum(x[n * (1 + j):n * (2 + j)])) * layer_m3 for j, s in enumerate(SOLUBLES)}
        out["TSS"] = float(np.sum(x[:n])) * layer_m3
        return out

    def solids_inventory_kg(self, x):
        p = self.params
        return float(np.sum(x[: p.layers])) * p.area_m2 * p.height_m / p.layers / 1000.0

    def volume_m3(self) -> float:
        return self.params.area_m2 * self.params.height_m

