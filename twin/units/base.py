"""The process-unit plug-in contract.

A unit type is one class derived from :class:`UnitModel`. It declares

* its ports (:class:`Port`), each carrying a stream of a named *kind*
  (``"asm1_liquid"``: a flow in m3/d and the 13 ASM1 concentrations in g/m3);
* its states (:class:`StateVar`, name and unit of measure);
* its inputs (:class:`InputVar`): values held constant, or piecewise linear in
  time, between two discrete events (aeration KLa, pumped flows, influent);
* a parameter dataclass ``Params`` whose defaults are cited;
* its flow relations: linear equations between its port flows and its inputs
  (liquid has no storage in a unit of fixed volume, so flows are algebraic);
* two numba kernels, pure functions of the states, streams, inputs and
  parameters: ``outlets_kernel`` (outlet concentrations) and
  ``derivatives_kernel`` (state derivatives);
* the quantities it conserves (:meth:`UnitModel.conserved`, weights over the
  stream components) and how much of each it holds (:meth:`UnitModel.holdup`),
  so that its mass balances can be checked (:mod:`twin.units.conformance`).

Kernel signatures (all arrays float64 unless stated)::

    outlets_kernel(t, x, Q, C, ins, outs, u, p)        # writes C[outs[k], :]
    derivatives_kernel(t, x, Q, C, ins, outs, u, p, dx)  # writes dx[:]

``x``/``dx`` are the unit's slice of the flat state vector, ``Q`` the flows of
all streams (m3/d), ``C`` the stream concentration matrix (streams x
components), ``ins``/``outs`` int64 arrays of the unit's stream indices in port
order, ``u`` the unit's slice of the input vector and ``p`` its parameter
array (:meth:`UnitModel.param_array`). Time ``t`` is in days.

The flowsheet compiler (:mod:`twin.flowsheet`) wires units together and
generates one right-hand side that calls these kernels in a valid order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from twin.errors import ConfigError


@dataclass(frozen=True)
class Port:
    """A unit's connection point. ``kind`` must match at both ends of a connection."""

    name: str
    kind: str = "asm1_liquid"


@dataclass(frozen=True)
class StateVar:
    """A named state with its unit of measure (for example ``"g COD/m3"``)."""

    name: str
    unit: str


@dataclass(frozen=True)
class InputVar:
    """A named input (actuator or boundary value) with unit and default."""

    name: str
    unit: str
    default: float = 0.0


@dataclass(frozen=True)
class FlowTerm:
    """One term of a linear flow equation: ``coeff * flow(port)`` or ``coeff * input``.

    ``where`` is ``"in"``, ``"out"`` (a port flow), ``"u"`` (an input value) or ``"q"`` (a flow
    the unit computes from its states).
    """

    where: str
    name: str
    coeff: float


class UnitModel:
    """Base class of all process units; see the module docstring for the contract."""

    type_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type] = type(None)
    #: True when outlet concentrations depend algebraically on inlet streams
    #: (mixers, splitters); False when they follow from the unit's states only.
    feedthrough: ClassVar[bool] = False
    #: Option keys a flowsheet entry may give besides ``type`` and ``params``.
    options: ClassVar[frozenset[str]] = frozenset()
    #: A minimal valid set of options, used by the checks every registered unit type must pass.
    example_options: ClassVar[dict[str, Any]] = {}
    outlets_kernel: ClassVar[Callable | None] = None
    derivatives_kernel: ClassVar[Callable | None] = None
    #: optional ``flows_kernel(t, x, u, p, q)``: flows that depend on the unit's states (an
    #: overflow weir, a pump that runs dry), referred to as ``FlowTerm("q", name)``
    flows_kernel: ClassVar[Callable | None] = None

    def __init__(self, name: str, params: Any, config: dict[str, Any]) -> None:
        self.name = name
        self.params = params
        self.config = config

    # -- declarations ---------------------------------------------------------------
    @classmethod
    def from_config(cls, name: str, config: dict[str, Any]) -> UnitModel:
        """Build a unit from its flowsheet entry (``params`` block plus type options)."""
        config = dict(config)
        raw_params = config.pop("params", {}) or {}
        for key in config:
            if key not in cls.options:
                raise ConfigError(f"unit '{name}': unknown option '{key}'{did_you_mean(key, cls.options)}")
        params = build_params(cls.Params, raw_params, where=f"unit '{name}' params")
        return cls(name, params, config)

    def inlets(self) -> tuple[Port, ...]:
        return ()

    def outlets(self) -> tuple[Port, ...]:
        return ()

    def states(self) -> tuple[StateVar, ...]:
        return ()

    def inputs(self) -> tuple[InputVar, ...]:
        return ()

    def state_flows(self) -> tuple[str, ...]:
        """Names of the flows :attr:`flows_kernel` computes from the states (m3/d)."""
        return ()

    def flow_equations(self) -> list[list[FlowTerm]]:
        """Linear relations ``sum(terms) = 0`` between port flows and inputs."""
        return []

    def param_array(self) -> np.ndarray:
        return np.zeros(0)

    def initial_state(self) -> np.ndarray:
        return np.zeros(len(self.states()))

    # -- optional hooks ---------------------------------------------------------------
    def solids_inventory_kg(self, x: np.ndarray) -> float:
        """Mass of suspended solids held in the unit (kg SS), for sludge production."""
        return 0.0

    def volume_m3(self) -> float:
        return 0.0

    def conserved(self) -> dict[str, np.ndarray]:
        """Quantities the unit neither creates nor destroys: name -> weights over the stream
        components (the quantity carried by a stream is ``Q * weights @ C``, g/d).

        A non-reactive unit conserves each component; a reactive one linear combinations (for
        ASM1: inert COD, charge, COD plus nitrogen's oxygen equivalent). Boundaries (an influent,
        a sink) conserve nothing. :mod:`twin.units.conformance` checks
        ``d holdup/dt = inflow - outflow`` for every quantity named here, at random states.
        """
        return {}

    def holdup(self, x: np.ndarray) -> dict[str, float]:
        """Amount of each :meth:`conserved` quantity held in the unit at state ``x`` (g for
        weights per g/m3). Default: none (a junction that holds no liquid)."""
        return {k: 0.0 for k in self.conserved()}

    def external_signals(self) -> tuple[tuple[str, str], ...]:
        """(name, unit) of measurable signals this unit has but does not compute: algebraic
        values the equipment layer solves for and stores in ``Plant.aux`` (air header pressure)."""
        return ()

    def signals(self) -> dict[str, tuple[int, str]]:
        """Named measurable signals: name -> (state index within the unit, unit)."""
        return {s.name: (i, s.unit) for i, s in enumerate(self.states())}


def build_params(cls: type, raw: dict[str, Any], where: str) -> Any:
    """Instantiate a parameter dataclass from a mapping, with a clear error on bad keys."""
    if cls is type(None):
        if raw:
            raise ConfigError(f"{where}: this unit type takes no parameters")
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of parameter names to numbers")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown parameter '{key}'{did_you_mean(key, fields)}")
        expected = fields[key].type
        if expected in ("float", float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
            value = float(value)
        elif expected in ("int", int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where}.{key}: expected an integer, got {value!r}")
        values[key] = value
    params = cls(**values)
    check = getattr(params, "validate", None)
    if check is not None:
        problem = check()
        if problem:
            raise ConfigError(f"{where}: {problem}")
    return params


def did_you_mean(word: str, options) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest option, or an empty string."""
    import difflib

    by_lower = {str(o).lower(): str(o) for o in options}
    close = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""
