"""IWA Activated Sludge Model No. 1 (ASM1) and the completely mixed reactor that uses it.

Model: Henze, Grady, Gujer, Marais and Matsuo (1987), *Activated Sludge Model No. 1*,
IAWPRC Scientific and Technical Report No. 1, in the form used by the IWA Benchmark
Simulation Model No. 1 (Alex et al. 2008, *Benchmark Simulation Model no. 1 (BSM1)*,
IEA Lund University, section 2): 13 components, 8 processes, parameters at 15 degC.

The stoichiometric matrix and the rate expressions are data: the process table
``asm1_process_table.yaml`` (read by :mod:`twin.units.process_table`, which checks every
process for conservation of COD and nitrogen when it loads); :func:`stoichiometry` evaluates
it for a parameter set, and the compiled rates (:func:`rates8`) implement its rate expressions
(the tests check both against the table). Gaseous
nitrogen produced by denitrification is a product column of the table that is not
carried as a state (it leaves to the atmosphere); it is what closes the balances.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from twin.units.base import FlowTerm, InputVar, Port, StateVar, UnitModel

#: ASM1 components in state order, with units of measure.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("SI", "g COD/m3"),
    ("SS", "g COD/m3"),
    ("XI", "g COD/m3"),
    ("XS", "g COD/m3"),
    ("XBH", "g COD/m3"),
    ("XBA", "g COD/m3"),
    ("XP", "g COD/m3"),
    ("SO", "g O2/m3"),
    ("SNO", "g N/m3"),
    ("SNH", "g N/m3"),
    ("SND", "g N/m3"),
    ("XND", "g N/m3"),
    ("SALK", "mol HCO3/m3"),
)
NAMES: tuple[str, ...] = tuple(c[0] for c in COMPONENTS)
NC = len(NAMES)
IDX = {n: i for i, n in enumerate(NAMES)}
PARTICULATES: tuple[str, ...] = ("XI", "XS", "XBH", "XBA", "XP", "XND")
SOLUBLES: tuple[str, ...] = ("SI", "SS", "SO", "SNO", "SNH", "SND", "SALK")
#: Particulates that count towards suspended solids (TSS = 0.75 * their sum, BSM1).
SOLIDS_COD: tuple[str, ...] = ("XI", "XS", "XBH", "XBA", "XP")
TSS_PER_COD = 0.75  # g SS / g particulate COD (Alex et al. 2008, eq. for TSS)


@dataclass(frozen=True)
class ASM1Params:
    """ASM1 parameters. Defaults: the BSM1 set at 15 degC (Alex et al. 2008, Table 2.2 and 2.3).

    Rates in 1/d, half-saturation constants in g/m3 of the matching component.
    """

    Y_A: float = 0.24  # g cell COD formed / g N oxidised
    Y_H: float = 0.67  # g cell COD formed / g COD oxidised
    f_P: float = 0.08  # fraction of biomass yielding particulate products
    i_XB: float = 0.08  # g N / g COD in biomass
    i_XP: float = 0.06  # g N / g COD in particulate products
    mu_H: float = 4.0  # 1/d
    K_S: float = 10.0  # g COD/m3
    K_OH: float = 0.2  # g O2/m3
    K_NO: float = 0.5  # g N/m3
    b_H: float = 0.3  # 1/d
    eta_g: float = 0.8  # anoxic growth correction
    eta_h: float = 0.8  # anoxic hydrolysis correction
    k_h: float = 3.0  # g XS / (g XBH COD d)
    K_X: float = 0.1  # g XS / g XBH COD
    mu_A: float = 0.5  # 1/d
    K_NH: float = 1.0  # g N/m3
    b_A: float = 0.05  # 1/d
    K_OA: float = 0.4  # g O2/m3
    k_a: float = 0.05  # m3 / (g COD d)

    def validate(self) -> str | None:
        for name, value in self.__dict__.items():
            if value < 0:
                return f"parameter '{name}' must not be negative (got {value})"
        if not 0 < self.Y_H < 1 or not 0 < self.Y_A < 1:
            return "yields Y_H and Y_A must lie between 0 and 1"
        return None


#: Process names and their rate expressions (implemented in :func:`process_rates`).
PROCESSES: tuple[tuple[str, str], ...] = (
    ("aerobic growth of heterotrophs", "mu_H*SS/(K_S+SS)*SO/(K_OH+SO)*XBH"),
    ("anoxic growth of heterotrophs", "mu_H*SS/(K_S+SS)*K_OH/(K_OH+SO)*SNO/(K_NO+SNO)*eta_g*XBH"),
    ("aerobic growth of autotrophs", "mu_A*SNH/(K_NH+SNH)*SO/(K_OA+SO)*XBA"),
    ("decay of heterotrophs", "b_H*XBH"),
    ("decay of autotrophs", "b_A*XBA"),
    ("ammonification of soluble organic nitrogen", "k_a*SND*XBH"),
    (
        "hydrolysis of entrapped organics",
        "k_h*(XS/XBH)/(K_X+XS/XBH)*(SO/(K_OH+SO)+eta_h*K_OH/(K_OH+SO)*SNO/(K_NO+SNO))*XBH",
    ),
    ("hydrolysis of entrapped organic nitrogen", "rho7*XND/XS"),
)
NP = len(PROCESSES)
#: Oxygen equivalents used in the ASM1 matrix (g O2 / g N): nitrification and denitrification.
O2_PER_N_NITRIFIED = 4.57
O2_PER_N_DENITRIFIED = 2.86


def stoichiometry(p: ASM1Params) -> tuple[np.ndarray, np.ndarray]:
    """The ASM1 stoichiometric matrix (processes x components) and the N2 product column.

    Read from the process table ``asm1_process_table.yaml`` (Henze et al. 1987, Table 6.1) and
    evaluated for ``p``; the table checks that every process conserves COD and nitrogen for
    these parameters. Returns ``(S, n2)`` where ``n2[j]`` is the gaseous nitrogen (g N/m3)
    formed per unit of process rate ``j``.
    """
    from twin.units.process_table import bundled_table

    table = bundled_table("asm1")
    S, gas = table.stoichiometry(dataclasses.asdict(p))
    return S, gas[:, table.gases.index("N2")].copy()


def cod_weights() -> tuple[np.ndarray, float]:
    """COD content per unit of each component (g COD), and of gaseous N2 (per g N).

    Oxygen counts as negative COD; nitrate as -4.57 g COD/g N (relative to ammonia,
    which carries none in ASM1); N2 as -(4.57 - 2.86) g COD/g N.
    """
    w = np.zeros(NC)
    for n in ("SI", "SS", "XI", "XS", "XBH", "XBA", "XP"):
        w[IDX[n]] = 1.0
    w[IDX["SO"]] = -1.0
    w[IDX["SNO"]] = -O2_PER_N_NITRIFIED
    return w, -(O2_PER_N_NITRIFIED - O2_PER_N_DENITRIFIED)


def nitrogen_weights(p: ASM1Params) -> tuple[np.ndarray, float]:
    """Nitrogen content per unit of each component (g N), and of N2 (1 per g N)."""
    w = np.zeros(NC)
    for n in ("SNO", "SNH", "SND", "XND"):
        w[IDX[n]] = 1.0
    w[IDX["XBH"]] = p.i_XB
    w[IDX["XBA"]] = p.i_XB
    w[IDX["XP"]] = p.i_XP
    return w, 1.0


def conservation_residuals(p: ASM1Params) -> dict[str, np.ndarray]:
    """Per-process COD and N residuals of the stoichiometric table (should be ~0).

    XI's nitrogen is not tracked by ASM1 (it is inert and passes through), so it is left
    out of the N balance; it has no process term either way.
    """
    S, n2 = stoichiometry(p)
    wc, wc_n2 = cod_weights()
    wn, wn_n2 = nitrogen_weights(p)
    return {"COD": S @ wc + n2 * wc_n2, "N": S @ wn + n2 * wn_n2}


def each_component() -> dict[str, np.ndarray]:
    """Every ASM1 component as its own conserved quantity (a unit without conversion)."""
    return {n: np.eye(NC)[i] for i, n in enumerate(NAMES)}


def mixed_holdup(conserved: dict[str, np.ndarray], volume_m3: float, c: np.ndarray) -> dict[str, float]:
    """Holdup (g) of each conserved quantity in a completely mixed volume of concentration ``c``."""
    return {k: float(volume_m3 * (w @ c)) for k, w in conserved.items()}


class MixedNonReactive:
    """Mix-in for a completely mixed unit without conversion whose states are a leading state
    (temperature, level) followed by the ASM1 concentrations: every component is conserved and
    the holdup is volume x concentration. The unit's parameters give ``volume_m3``."""

    def volume_m3(self) -> float:
        return self.params.volume_m3

    def conserved(self):
        return each_component()

    def holdup(self, x):
        return mixed_holdup(self.conserved(), self.params.volume_m3, x[1:])


def invariants(p: ASM1Params) -> dict[str, np.ndarray]:
    """Linear combinations of the 13 components that no ASM1 process changes.

    Inert soluble and particulate COD; charge (alkalinity with ammonium and nitrate, mol/m3:
    ``SALK - SNH/14 + SNO/14``); and COD plus the oxygen equivalent of nitrogen taken relative
    to N2 (``COD + (4.57 - 2.86) N``, so that nitrate counts -2.86 g O2/g N and the N2 that
    denitrification sends to the atmosphere counts zero). COD and N alone are not conserved in
    the liquid because N2 leaves it; the table's balances including N2 are checked when the
    process table loads (:func:`conservation_residuals`).
    """
    wc, _ = cod_weights()
    wn, _ = nitrogen_weights(p)
    charge = np.zeros(NC)
    charge[IDX["SALK"]] = 1.0
    charge[IDX["SNH"]] = -1.0 / 14.0
    charge[IDX["SNO"]] = 1.0 / 14.0
    comps = each_component()
    return {"SI": comps["SI"], "XI": comps["XI"], "charge (mol)": charge,
            "COD + N oxygen equivalent (g O2)": wc + (O2_PER_N_NITRIFIED - O2_PER_N_DENITRIFIED) * wn}


@njit(cache=True, inline="always", error_model="numpy")
def rates8(c, k):
    """ASM1 process rates (g/m3/d) of concentration vector ``c``; ``k`` kinetic array.

    Returns the eight rates as a tuple (no heap allocation in the hot loop).
    """
    SS = c[1]
    XS = c[3]
    XBH = c[4]
    XBA = c[5]
    SO = c[7]
    SNO = c[8]
    SNH = c[9]
    SND = c[10]
    XND = c[11]
    mu_H, K_S, K_OH, K_NO, b_H, eta_g, eta_h, k_h, K_X, mu_A, K_NH, b_A, K_OA, k_a = (
        k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13]
    )
    o_sw = SO / (K_OH + SO)
    o_inh = K_OH / (K_OH + SO)
    no_sw = SNO / (K_NO + SNO)
    s_sw = mu_H * SS / (K_S + SS) * XBH
    r0 = s_sw * o_sw
    r1 = s_sw * o_inh * no_sw * eta_g
    r2 = mu_A * (SNH / (K_NH + SNH)) * (SO / (K_OA + SO)) * XBA
    r3 = b_H * XBH
    r4 = b_A * XBA
    r5 = k_a * SND * XBH
    r6 = 0.0
    if XBH != 0.0:
        ratio = XS / XBH
        r6 = k_h * (ratio / (K_X + ratio)) * (o_sw + eta_h * o_inh * no_sw) * XBH
    r7 = 0.0
    if XS != 0.0:
        r7 = r6 * (XND / XS)
    return r0, r1, r2, r3, r4, r5, r6, r7


@njit(cache=True, error_model="numpy")
def process_rates(c, k):
    """ASM1 process rates as an array (for checks and analysis; the kernel uses :func:`rates8`)."""
    return np.array(rates8(c, k))


# Layout of a reactor's parameter array.
_R_VOLUME, _R_SOSAT, _R_KIN = 0, 1, 2
_N_KIN = 14
_R_STOICH = _R_KIN + _N_KIN
_R_TEMP = _R_STOICH + NP * NC  # temperature model switch, then the six 10 degC reference values
#: ASM1 rate constants at 10 degC of the BSM2 model description (Gernaey et al. 2014,
#: *Benchmarking of Control Strategies for Wastewater Treatment Plants*, IWA Scientific and
#: Technical Report No. 23; the same values as the bsm2-python implementation): with the 15 degC
#: values they define k(T) = k15 exp(ln(k15 / k10) / 5 (T - 15)).
BSM2_RATES_10C = {"mu_H": 3.0, "b_H": 0.2, "mu_A": 0.3, "b_A": 0.03, "k_h": 2.5, "k_a": 0.04}


@njit(cache=True, inline="always", error_model="numpy")
def _arrhenius(k15, k10, T):
    return math.exp(math.log(k15 / k10) / 5.0 * (T - 15.0))


@njit(cache=True, inline="always", error_model="numpy")
def _o2_solubility(tc):
    tk = (tc + 273.15) / 100.0
    return math.exp(-66.7354 + 87.4755 / tk + 24.4526 * math.log(tk))


@njit(cache=True, error_model="numpy")
def so_sat_factor(T):
    """Oxygen saturation relative to 15 degC (the van't Hoff-type solubility fit used in BSM2)."""
    return _o2_solubility(T) / _o2_solubility(15.0)


def kinetic_array(p: ASM1Params) -> np.ndarray:
    return np.array(
        [p.mu_H, p.K_S, p.K_OH, p.K_NO, p.b_H, p.eta_g, p.eta_h, p.k_h, p.K_X,
         p.mu_A, p.K_NH, p.b_A, p.K_OA, p.k_a]
    )


@njit(cache=True, error_model="numpy")
def reactor_outlets(t, x, Q, C, ins, outs, u, p):
    """A completely mixed tank: the outlet concentration is the tank concentration."""
    o = outs[0]
    for i in range(13):
        C[o, i] = x[i]


@njit(cache=True, error_model="numpy", inline="always")
def content_mixing(dil, C, i_in, x, dx):
    """dC/dt = D (C_in - C) for the 13 concentrations after a tank's leading state (x[1:14]),
    with dilution rate D = Q_in / V: a mixed tank without conversion."""
    for i in range(13):
        dx[1 + i] = dil * (C[i_in, i] - x[1 + i])


@njit(cache=True, error_model="numpy")
def temperature_factors(p, T):
    """Factors of the eight process rates, oxygen saturation and KLa at temperature T: all 1
    unless the reactor's temperature model is on. Each temperature-dependent constant
    multiplies its processes' rates linearly (mu_H: processes 1-2, mu_A: 3, b_H: 4, b_A: 5,
    k_a: 6, k_h: 7-8)."""
    if p[_R_TEMP] <= 0.0:
        return (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    kin = p[_R_KIN:_R_KIN + _N_KIN]
    f_muH = _arrhenius(kin[0], p[_R_TEMP + 1], T)
    f_kh = _arrhenius(kin[7], p[_R_TEMP + 5], T)
    return (f_muH, f_muH, _arrhenius(kin[9], p[_R_TEMP + 3], T), _arrhenius(kin[4], p[_R_TEMP + 2], T),
            _arrhenius(kin[11], p[_R_TEMP + 4], T), _arrhenius(kin[13], p[_R_TEMP + 6], T), f_kh, f_kh,
            so_sat_factor(T), 1.024 ** (T - 15.0))


@njit(cache=True, error_model="numpy")
def content_outlets(t, x, Q, C, ins, outs, u, p):
    """Outlets of a mixed tank whose states are one leading variable (level, temperature) and
    then the 13 ASM1 concentrations: every outlet carries the content."""
    for o in outs:
        for i in range(13):
            C[o, i] = x[1 + i]


@njit(cache=True, error_model="numpy")
def reactor_derivatives(t, x, Q, C, ins, outs, u, p, dx):
    """dC/dt = Q/V (C_in - C) + sum_j nu_ij rho_j, plus f KLa (SO_sat - SO) for oxygen."""
    V = p[_R_VOLUME]
    so_sat = p[_R_SOSAT] * u[3]
    kla = u[0] * u[1]
    i_in = ins[0]
    dil = Q[i_in] / V
    r8 = rates8(x, p[_R_KIN:_R_KIN + _N_KIN])
    f = temperature_factors(p, u[2])
    rho = (r8[0] * f[0], r8[1] * f[1], r8[2] * f[2], r8[3] * f[3], r8[4] * f[4], r8[5] * f[5],
           r8[6] * f[6], r8[7] * f[7])
    so_sat *= f[8]
    kla *= f[9]
    for i in range(13):
        r = 0.0
        for j in range(8):
            nu = p[_R_STOICH + j * 13 + i]
            if nu != 0.0:
                r += nu * rho[j]
        dx[i] = dil * (C[i_in, i] - x[i]) + r
    dx[7] += kla * (so_sat - x[7])


@dataclass(frozen=True)
class ReactorParams:
    """A completely mixed activated-sludge reactor with ASM1 kinetics.

    Defaults: BSM1 aerobic tank (1333 m3) and oxygen saturation 8 g/m3 at 15 degC
    (Alex et al. 2008, Table 2.1 and section 2.2). The kinetic and stoichiometric
    values are :class:`ASM1Params` fields given in the same block.
    """

    volume_m3: float = 1333.0
    SO_sat_g_m3: float = 8.0
    #: 1: rate constants, oxygen saturation and KLa follow the reactor's temperature input the
    #: BSM2 way (values above are then the 15 degC ones); 0: fixed at 15 degC (BSM1)
    temperature_model: int = 0
    Y_A: float = ASM1Params.Y_A
    Y_H: float = ASM1Params.Y_H
    f_P: float = ASM1Params.f_P
    i_XB: float = ASM1Params.i_XB
    i_XP: float = ASM1Params.i_XP
    mu_H: float = ASM1Params.mu_H
    K_S: float = ASM1Params.K_S
    K_OH: float = ASM1Params.K_OH
    K_NO: float = ASM1Params.K_NO
    b_H: float = ASM1Params.b_H
    eta_g: float = ASM1Params.eta_g
    eta_h: float = ASM1Params.eta_h
    k_h: float = ASM1Params.k_h
    K_X: float = ASM1Params.K_X
    mu_A: float = ASM1Params.mu_A
    K_NH: float = ASM1Params.K_NH
    b_A: float = ASM1Params.b_A
    K_OA: float = ASM1Params.K_OA
    k_a: float = ASM1Params.k_a

    def asm1(self) -> ASM1Params:
        names = ASM1Params.__dataclass_fields__
        return ASM1Params(**{k: getattr(self, k) for k in names})

    def validate_temperature(self) -> str | None:
        if self.temperature_model not in (0, 1):
            return "temperature_model must be 0 (fixed 15 degC) or 1 (BSM2 temperature dependence)"
        return None

    def validate(self) -> str | None:
        if self.volume_m3 <= 0:
            return f"volume_m3 must be positive (got {self.volume_m3})"
        if self.SO_sat_g_m3 <= 0:
            return f"SO_sat_g_m3 must be positive (got {self.SO_sat_g_m3})"
        return self.validate_temperature() or self.asm1().validate()


class ASM1Reactor(UnitModel):
    """Completely mixed reactor with ASM1 kinetics; anoxic when its KLa input is 0.

    Inputs: ``kla_per_d`` (oxygen transfer coefficient the aeration delivers with clean
    diffusers, 1/d) and ``oxygen_transfer_factor`` (dimensionless, 1 = as designed; below 1
    when diffusers foul or the alpha factor falls): the effective coefficient is their
    product; ``temperature_C``; ``so_sat_pressure_factor``: oxygen saturation relative to
    its value at 1 atm (barometric pressure, see :mod:`twin.environment`). One inlet, one
    outlet; the outflow equals the inflow (constant volume).
    """

    type_name = "asm1_reactor"
    options = frozenset({"kla_per_d", "initial"})
    description = "completely mixed ASM1 reactor (anoxic or aerated through KLa)"
    Params = ReactorParams
    feedthrough = False
    outlets_kernel = reactor_outlets
    derivatives_kernel = reactor_derivatives

    def inlets(self):
        return (Port("in"),)

    def outlets(self):
        return (Port("out"),)

    def states(self):
        return tuple(StateVar(n, u) for n, u in COMPONENTS)

    def inputs(self):
        return (InputVar("kla_per_d", "1/d", float(self.config.get("kla_per_d", 0.0))),
                InputVar("oxygen_transfer_factor", "-", 1.0),
                InputVar("temperature_C", "degC", 15.0),
                InputVar("so_sat_pressure_factor", "-", 1.0))

    def flow_equations(self):
        return [[FlowTerm("out", "out", 1.0), FlowTerm("in", "in", -1.0)]]

    def param_array(self):
        p = self.params
        S, _ = stoichiometry(p.asm1())
        t10 = [BSM2_RATES_10C[k] for k in ("mu_H", "b_H", "mu_A", "b_A", "k_h", "k_a")]
        return np.concatenate(([p.volume_m3, p.SO_sat_g_m3], kinetic_array(p.asm1()), S.ravel(),
                               [float(p.temperature_model)], t10))

    def __init__(self, name, params, config):
        super().__init__(name, params, config)
        self.initial_state()  # a misspelt or negative 'initial' entry is a flowsheet error, raised here

    def initial_state(self):
        """1 g/m3 of every component, or the ``initial`` option's values (component names,
        concentrations at least 0)."""
        from twin.errors import ConfigError
        from twin.units.base import did_you_mean

        init = self.config.get("initial", {}) or {}
        if not isinstance(init, dict):
            raise ConfigError(f"unit '{self.name}': initial: expected a mapping of component to concentration")
        x = np.array([1.0] * NC)
        for k, v in init.items():
            if k not in IDX:
                raise ConfigError(f"unit '{self.name}': initial.{k}: no such state{did_you_mean(k, list(IDX))} "
                                  f"(states: {', '.join(IDX)})")
            try:
                x[IDX[k]] = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"unit '{self.name}': initial.{k}: expected a number, got {v!r}") from None
            if not x[IDX[k]] >= 0:
                raise ConfigError(f"unit '{self.name}': initial.{k}: a concentration cannot be negative, got {v!r}")
        return x

    def volume_m3(self) -> float:
        return self.params.volume_m3

    def conserved(self):
        """The ASM1 invariants (:func:`invariants`). Aeration supplies oxygen (negative COD),
        so the COD-and-nitrogen sum holds without it: the shared checks run at KLa 0."""
        return invariants(self.params.asm1())

    def holdup(self, x):
        return mixed_holdup(self.conserved(), self.params.volume_m3, x)

    def solids_inventory_kg(self, x):
        return tss(x) * self.params.volume_m3 / 1000.0


def tss(c) -> float:
    """Suspended solids (g SS/m3) of an ASM1 concentration vector: 0.75 x particulate COD."""
    return TSS_PER_COD * sum(c[IDX[n]] for n in SOLIDS_COD)
