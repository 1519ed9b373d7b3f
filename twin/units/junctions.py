"""Flow junctions and boundaries: influent source, mixer, splitter, sink.

These hold no liquid (ideal junctions): their outlet concentrations follow from their
inlets at every instant, and their flows from linear relations with their inputs.
"""

from __future__ import annotations

from numba import njit

from twin.errors import ConfigError
from twin.units.asm1 import COMPONENTS, each_component
from twin.units.base import FlowTerm, InputVar, Port, UnitModel

#: BSM1 constant (steady-state) influent, Alex et al. (2008), Table 2.7 / Copp (2002).
BSM1_CONSTANT_INFLUENT: dict[str, float] = {
    "Q": 18446.0, "SI": 30.0, "SS": 69.5, "XI": 51.2, "XS": 202.32, "XBH": 28.17, "XBA": 0.0,
    "XP": 0.0, "SO": 0.0, "SNO": 0.0, "SNH": 31.56, "SND": 6.95, "XND": 10.59, "SALK": 7.0,
}


@njit(cache=True, error_model="numpy")
def source_outlets(t, x, Q, C, ins, outs, u, p):
    o = outs[0]
    for i in range(13):
        C[o, i] = u[1 + i]


@njit(cache=True, error_model="numpy")
def no_derivatives(t, x, Q, C, ins, outs, u, p, dx):
    pass


@njit(cache=True, error_model="numpy")
def no_outlets(t, x, Q, C, ins, outs, u, p):
    pass


class InfluentSource(UnitModel):
    """Boundary that delivers an influent stream: its flow and concentrations are inputs.

    Inputs ``Q_m3_d`` and one ``<component>_g_m3`` per ASM1 component; defaults are
    the BSM1 constant influent. The influent processes of a scenario drive them.
    """

    type_name = "influent"
    description = "influent boundary (flow and ASM1 concentrations are inputs)"
    feedthrough = True
    outlets_kernel = source_outlets
    derivatives_kernel = no_derivatives

    def outlets(self):
        return (Port("out"),)

    def inputs(self):
        units = dict(COMPONENTS)
        return (InputVar("Q_m3_d", "m3/d", BSM1_CONSTANT_INFLUENT["Q"]),) + tuple(
            InputVar(f"{n}_g_m3", units[n], BSM1_CONSTANT_INFLUENT[n]) for n, _ in COMPONENTS
        )

    def flow_equations(self):
        return [[FlowTerm("out", "out", 1.0), FlowTerm("u", "Q_m3_d", -1.0)]]


@njit(cache=True, error_model="numpy")
def mixer_outlets(t, x, Q, C, ins, outs, u, p):
    o = outs[0]
    q_out = Q[o]
    for i in range(13):
        C[o, i] = 0.0
    if q_out > 0.0:
        for k in ins:
            w = Q[k] / q_out
            for i in range(13):
                C[o, i] += w * C[k, i]


class Mixer(UnitModel):
    """Ideal mixing of any number of inlets (option ``inlets``: list of port names)."""

    type_name = "mixer"
    options = frozenset({"inlets"})
    example_options = {"inlets": ["a", "b"]}
    description = "ideal flow mixer (flow-weighted concentrations)"
    feedthrough = True
    outlets_kernel = mixer_outlets
    derivatives_kernel = no_derivatives

    def __init__(self, name, params, config):
        names = config.get("inlets")
        if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"unit '{name}': option 'inlets' must be a list of at least two port names")
        super().__init__(name, params, config)

    def inlets(self):
        return tuple(Port(n) for n in self.config["inlets"])

    def outlets(self):
        return (Port("out"),)

    def flow_equations(self):
        return [[FlowTerm("out", "out", 1.0)] + [FlowTerm("in", p.name, -1.0) for p in self.inlets()]]

    def conserved(self):
        return each_component()


@njit(cache=True, error_model="numpy")
def splitter_outlets(t, x, Q, C, ins, outs, u, p):
    i_in = ins[0]
    for o in outs:
        for i in range(13):
            C[o, i] = C[i_in, i]


class Splitter(UnitModel):
    """Flow splitter. Option ``outlets``: mapping of outlet name to a flow in m3/d (an input
    ``Q_<name>_m3_d`` an actuator can change) or to ``rest`` (takes what is left; at most one).

    With a ``rest`` outlet the inflow is set upstream; without one the outlets set it
    (as the return and waste pumps set a settler's underflow).
    """

    type_name = "splitter"
    options = frozenset({"outlets"})
    example_options = {"outlets": {"pumped": 100.0, "rest": "rest"}}
    description = "flow splitter with pumped outlets (inputs) and at most one 'rest' outlet"
    feedthrough = True
    outlets_kernel = splitter_outlets
    derivatives_kernel = no_derivatives

    def __init__(self, name, params, config):
        outs = config.get("outlets")
        if not isinstance(outs, dict) or len(outs) < 1:
            raise ConfigError(f"unit '{name}': option 'outlets' must map outlet names to a flow (m3/d) or 'rest'")
        rest = [k for k, v in outs.items() if v == "rest"]
        if len(rest) > 1:
            raise ConfigError(f"unit '{name}': at most one outlet may be 'rest' (got {rest})")
        for k, v in outs.items():
            if v != "rest" and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ConfigError(f"unit '{name}': outlets.{k}: expected a flow >= 0 in m3/d or 'rest', got {v!r}")
        super().__init__(name, params, config)

    def inlets(self):
        return (Port("in"),)

    def outlets(self):
        return tuple(Port(n) for n in self.config["outlets"])

    def inputs(self):
        return tuple(InputVar(f"Q_{k}_m3_d", "m3/d", float(v))
                     for k, v in self.config["outlets"].items() if v != "rest")

    def flow_equations(self):
        outs = self.config["outlets"]
        eqs = [[FlowTerm("in", "in", 1.0)] + [FlowTerm("out", k, -1.0) for k in outs]]
        for k, v in outs.items():
            if v != "rest":
                eqs.append([FlowTerm("out", k, 1.0), FlowTerm("u", f"Q_{k}_m3_d", -1.0)])
        return eqs

    def conserved(self):
        return each_component()


class Sink(UnitModel):
    """Boundary that receives a stream (effluent, wasted sludge)."""

    type_name = "sink"
    description = "boundary receiving a stream (effluent, wasted sludge)"
    feedthrough = True
    outlets_kernel = no_outlets
    derivatives_kernel = no_derivatives

    def inlets(self):
        return (Port("in"),)

