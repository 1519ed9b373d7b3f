"""The checks every registered unit type must pass, with findings an author can act on.

Used by the test suite (``tests/unit/test_unit_contract.py``), by ``twin units check NAME``
and, for the kernel-shape part, by the flowsheet compiler before any run
(:func:`kernel_problems`). Each check returns :class:`Finding` objects; a failed finding says
what is wrong in the unit author's terms (which method, which state, which port).

Checks, in order (a failed early check skips those that need it):

``registration``  the class is a :class:`~twin.units.base.UnitModel` registered under its ``type_name``
``parameters``    ``Params`` is a dataclass whose every field has a default; ``example_options`` build a unit
``declarations``  states and inputs have names and units; ASM1 component states use the component's unit;
                  ``param_array`` and ``initial_state`` are finite and of the declared size
``flow relations`` every term names a declared port, input or state flow, and the relations can all hold
``kernels``       both kernels are numba functions that compile, write every outlet concentration and every
                  derivative (and nothing else), and give finite values
``feedthrough``   a unit declared ``feedthrough = False`` has outlets that do not depend on its inlets
``mass balance``  for every quantity the unit conserves: d(holdup)/dt = inflow - outflow, at random states
``determinism``   the same call gives bit-identical results twice, and the same unit builds twice alike
"""

from __future__ import annotations

import dataclasses
import math
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.errors import ConfigError
from twin.units.asm1 import COMPONENTS, NC
from twin.units.base import UnitModel

#: relative tolerance of the balance and compiled-vs-Python comparisons: far above rounding
#: (1e-16 per operation over a few hundred operations), far below any modelling error
REL_TOL = 1e-7
N_RANDOM_STATES = 5


@dataclass(frozen=True)
class Finding:
    """One check's outcome: ``passed`` and, when it failed, what to change."""

    check: str
    passed: bool
    detail: str = ""


class _Failed(Exception):
    """Raised inside a check to stop it with one message."""


# ------------------------------------------------------------------------------------------
def check_unit_type(name: str, cls: type | None = None, seed: int = 0) -> list[Finding]:
    """Run every check on the unit type registered as ``name`` (or on ``cls`` when given)."""
    findings: list[Finding] = []
    if cls is None:
        from twin.units import unit_type

        try:
            cls = unit_type(name)
        except ConfigError as exc:
            return [Finding("registration", False, str(exc))]

    def run(check: str, fn, *args) -> Any:
        try:
            result = fn(*args)
        except _Failed as exc:
            findings.append(Finding(check, False, str(exc)))
            return None
        except Exception as exc:  # an author's code raised: say where, in their file
            findings.append(Finding(check, False, _describe_exception(exc)))
            return None
        findings.append(Finding(check, True))
        return result if result is not None else True

    if not run("registration", _check_registration, name, cls):
        return findings
    unit = run("parameters", _check_parameters, cls)
    if unit is None:
        return findings
    if not run("declarations", _check_declarations, unit):
        return findings
    if not run("flow relations", _check_flow_relations, unit):
        return findings
    rng = np.random.default_rng(seed)
    if not run("kernels", _check_kernels, unit, rng):
        return findings
    run("feedthrough", _check_feedthrough, unit, rng)
    run("mass balance", _check_mass_balance, unit, rng)
    run("determinism", _check_determinism, unit, rng)
    return findings


def kernel_problems(unit: UnitModel) -> list[str]:
    """Problems of a configured unit's kernels (missing, not numba, wrong shapes), found by
    calling them once in Python on the unit's initial state: the flowsheet compiler refuses a
    plant with any, before the run."""
    try:
        _check_kernels(unit, np.random.default_rng(0), compiled=False)
    except _Failed as exc:
        return [str(exc)]
    except Exception as exc:
        return [_describe_exception(exc)]
    return []


def format_findings(name: str, findings: list[Finding]) -> str:
    """A report for the terminal: one line per check, the reason under each failure."""
    lines = [f"unit type '{name}':"]
    for f in findings:
        lines.append(f"  {'ok  ' if f.passed else 'FAIL'} {f.check}")
        if not f.passed:
            lines += [f"       {line}" for line in f.detail.splitlines()]
    done = {f.check for f in findings}
    skipped = [c for c in CHECKS if c not in done]
    if skipped:
        lines.append(f"  (not run after the failure: {', '.join(skipped)})")
    return "\n".join(lines)


CHECKS = ("registration", "parameters", "declarations", "flow relations", "kernels", "feedthrough",
          "mass balance", "determinism")


# ------------------------------------------------------------------------------------------
def _describe_exception(exc: Exception) -> str:
    """The exception with the author's file and line (the innermost frame outside this module)."""
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if not f.filename.endswith("conformance.py")]
    where = f" (at {frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _check_registration(name: str, cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, UnitModel)):
        raise _Failed(f"the entry point gives {cls!r}, not a subclass of twin.units.base.UnitModel")
    if cls.type_name != name:
        raise _Failed(f"registered as '{name}' but the class says type_name = {cls.type_name!r}: "
                      "make them equal (the entry-point name is what flowsheets write as 'type')")
    if not cls.description:
        raise _Failed("description is empty: give a one-line description (shown by 'twin units')")


def _check_parameters(cls: type[UnitModel]) -> UnitModel:
    if cls.Params is not type(None):
        if not dataclasses.is_dataclass(cls.Params):
            raise _Failed(f"Params = {cls.Params!r} is not a dataclass: declare the parameters as a "
                          "@dataclass(frozen=True) with one cited default per field")
        for f in dataclasses.fields(cls.Params):
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _Failed(f"parameter '{f.name}' has no default: every parameter needs a default value "
                              "with its source in the docstring or a comment")
    try:
        return cls.from_config("u", dict(cls.example_options))
    except ConfigError as exc:
        raise _Failed(f"the unit cannot be built from example_options = {cls.example_options!r}: {exc}. "
                      "Set example_options to a minimal valid set of options") from None


_COMPONENT_UNITS = dict(COMPONENTS)


def _check_declarations(unit: UnitModel) -> None:
    states = unit.states()
    for kind, items in (("state", states), ("input", unit.inputs())):
        names = [s.name for s in items]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise _Failed(f"{kind} names must be unique; repeated: {', '.join(dup)}")
        for s in items:
            if not s.name or not s.unit:
                raise _Failed(f"{kind} {s.name!r} declares no unit of measure: give one, e.g. 'g COD/m3', 'm', '-'")
    for s in states:
        base, _, suffix = s.name.partition("_")
        if base in _COMPONENT_UNITS and (not suffix or suffix.isdigit()) and s.unit != _COMPONENT_UNITS[base]:
            raise _Failed(f"state '{s.name}' is the ASM1 component {base}, measured in "
                          f"'{_COMPONENT_UNITS[base]}', but declares '{s.unit}'")
    for i in unit.inputs():
        if not math.isfinite(i.default):
            raise _Failed(f"input '{i.name}' has a non-finite default {i.default!r}")
    for side, ports in (("inlet", unit.inlets()), ("outlet", unit.outlets())):
        names = [p.name for p in ports]
        if len(set(names)) != len(names):
            raise _Failed(f"{side} port names must be unique: {names}")
    p = np.asarray(unit.param_array())
    if p.ndim != 1 or p.dtype.kind not in "fi":
        raise _Failed(f"param_array() must return a 1-D float array (got shape {p.shape}, dtype {p.dtype})")
    if not np.all(np.isfinite(p)):
        raise _Failed(f"param_array() holds non-finite values at positions {np.flatnonzero(~np.isfinite(p)).tolist()}")
    x0 = np.asarray(unit.initial_state(), dtype=float)
    if x0.shape != (len(states),):
        raise _Failed(f"initial_state() has shape {x0.shape}, but the unit declares {len(states)} states")
    if not np.all(np.isfinite(x0)):
        raise _Failed("initial_state() holds non-finite values")
    if unit.state_flows() and type(unit).flows_kernel is None:
        raise _Failed(f"state_flows() names {unit.state_flows()} but the class gives no flows_kernel")
    for q, w in unit.conserved().items():
        if np.shape(w) != (NC,):
            raise _Failed(f"conserved()['{q}'] must weigh the {NC} stream components (got shape {np.shape(w)})")
    held = unit.holdup(x0)
    if set(held) != set(unit.conserved()):
        raise _Failed(f"holdup() gives {sorted(held)} but conserved() names {sorted(unit.conserved())}: "
                      "give the amount held of every conserved quantity")


def _flow_system(unit: UnitModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unit's flow relations as ``A @ port_flows + B @ inputs + BQ @ state_flows = 0``."""
    ins = [p.name for p in unit.inlets()]
    outs = [p.name for p in unit.outlets()]
    inputs = [i.name for i in unit.inputs()]
    qs = list(unit.state_flows())
    eqs = unit.flow_equations()
    A = np.zeros((len(eqs), len(ins) + len(outs)))
    B = np.zeros((len(eqs), len(inputs)))
    BQ = np.zeros((len(eqs), len(qs)))
    known = {"in": ins, "out": outs, "u": inputs, "q": qs}
    words = {"in": "inlet port", "out": "outlet port", "u": "input", "q": "state flow"}
    for r, eq in enumerate(eqs):
        for term in eq:
            if term.where not in known:
                raise _Failed(f"flow relation {r + 1}: FlowTerm where={term.where!r}; use 'in', 'out', 'u' or 'q'")
            if term.name not in known[term.where]:
                from twin.units.base import did_you_mean

                raise _Failed(f"flow relation {r + 1} refers to {words[term.where]} '{term.name}', which the unit "
                              f"does not declare{did_you_mean(term.name, known[term.where])} "
                              f"(declared: {', '.join(known[term.where]) or 'none'})")
            k = known[term.where].index(term.name)
            if term.where == "in":
                A[r, k] += term.coeff
            elif term.where == "out":
                A[r, len(ins) + k] += term.coeff
            elif term.where == "u":
                B[r, k] += term.coeff
            else:
                BQ[r, k] += term.coeff
    return A, B, BQ


def _check_flow_relations(unit: UnitModel) -> None:
    A, _, _ = _flow_system(unit)
    if A.shape[0] and np.linalg.matrix_rank(A) < A.shape[0]:
        raise _Failed(f"the {A.shape[0]} flow relations are not independent (rank {np.linalg.matrix_rank(A)}): "
                      "one of them repeats or contradicts another")


def _consistent_flows(unit: UnitModel, x: np.ndarray, u: np.ndarray, p: np.ndarray,
                      rng: np.random.Generator, compiled: bool) -> np.ndarray:
    """Port flows (inlets then outlets, m3/d) that satisfy the unit's flow relations."""
    A, B, BQ = _flow_system(unit)
    n = A.shape[1]
    q = np.zeros(len(unit.state_flows()))
    if q.size:
        fk = type(unit).flows_kernel
        (fk if compiled else fk.py_func)(0.0, x.copy(), u.copy(), p.copy(), q)
        if not np.all(np.isfinite(q)):
            raise _Failed(f"flows_kernel gave non-finite state flows {q.tolist()} at the test state")
    flow_inputs = sum(abs(v) for v, i in zip(u, unit.inputs()) if i.unit == "m3/d")
    scale = 1000.0 + flow_inputs + float(np.sum(np.abs(q)))
    guess = rng.uniform(1.0, 2.0, n) * scale
    if not A.shape[0]:
        return guess
    b = -(B @ u + BQ @ q)
    flows = guess - np.linalg.pinv(A) @ (A @ guess - b)
    if np.max(np.abs(A @ flows - b)) > 1e-9 * scale:
        raise _Failed("the flow relations cannot all hold at once for the example inputs")
    return flows


def _kernel(unit: UnitModel, kind: str, compiled: bool):
    fn = getattr(type(unit), kind)
    if fn is None:
        raise _Failed(f"{kind} is not set: give a numba @njit function (see twin/units/base.py)")
    py = getattr(fn, "py_func", None)
    if py is None:
        raise _Failed(f"{kind} = {fn!r} is not a numba function: decorate it with @njit(cache=True, "
                      "error_model=\"numpy\") at module level")
    mod = sys.modules.get(py.__module__)
    if mod is None or getattr(mod, py.__name__, None) is not fn:
        raise _Failed(f"{kind} {py.__name__} is not a module-level name of {py.__module__}: the compiler imports "
                      "kernels by module and name")
    return fn if compiled else py


def _test_arrays(unit: UnitModel, rng: np.random.Generator, x: np.ndarray | None = None, compiled: bool = True):
    n_in, n_out = len(unit.inlets()), len(unit.outlets())
    x = np.asarray(unit.initial_state(), dtype=float).copy() if x is None else x
    u = np.array([i.default for i in unit.inputs()], dtype=float)
    p = np.asarray(unit.param_array(), dtype=float)
    Q = _consistent_flows(unit, x, u, p, rng, compiled)
    C = np.full((n_in + n_out, NC), np.nan)
    C[:n_in] = rng.uniform(0.5, 100.0, (n_in, NC))
    ins = np.arange(n_in, dtype=np.int64)
    outs = np.arange(n_in, n_in + n_out, dtype=np.int64)
    return x, Q, C, ins, outs, u, p


def _call_kernels(unit: UnitModel, arrays, compiled: bool) -> tuple[np.ndarray, np.ndarray]:
    x, Q, C, ins, outs, u, p = arrays
    CC = C.copy()
    dx = np.full(x.size, np.nan)
    for kind in ("outlets_kernel", "derivatives_kernel"):
        fn = _kernel(unit, kind, compiled)
        args = (0.0, x.copy(), Q.copy(), CC, ins, outs, u.copy(), p.copy()) + ((dx,) if kind == "derivatives_kernel" else ())
        try:
            with np.errstate(all="ignore"):
                fn(*args)
        except IndexError as exc:
            n = x.size
            raise _Failed(f"{kind} indexes outside its arrays: {_describe_exception(exc)}. The unit has {n} states "
                          f"(dx[0:{n}], x[0:{n}]), {ins.size} inlet and {outs.size} outlet streams (C[ins[k], 0:{NC}], "
                          f"C[outs[k], 0:{NC}]), {u.size} inputs (u) and {p.size} parameters (p)") from None
    return CC, dx


def _check_kernels(unit: UnitModel, rng: np.random.Generator, compiled: bool = True) -> None:
    arrays = _test_arrays(unit, rng, compiled=False)
    x, Q, C, ins, outs, u, p = arrays
    states = [s.name for s in unit.states()]
    CC, dx = _call_kernels(unit, arrays, compiled=False)
    ports_out = [pt.name for pt in unit.outlets()]
    for k, o in enumerate(outs):
        missing = [COMPONENTS[i][0] for i in range(NC) if not np.isfinite(CC[o, i])]
        if missing:
            raise _Failed(f"outlets_kernel leaves outlet '{ports_out[k]}' without a finite value of "
                          f"{', '.join(missing)}: write all {NC} concentrations of every outlet")
    if not np.array_equal(CC[ins], C[ins]):
        raise _Failed("outlets_kernel changed an inlet stream: a unit writes only its outlets' rows of C")
    bad = [states[i] for i in range(dx.size) if not np.isfinite(dx[i])]
    if bad:
        raise _Failed(f"derivatives_kernel leaves {', '.join(bad)} without a finite derivative: write dx[i] "
                      f"for every declared state (order: {', '.join(states)})")
    if not compiled:
        return
    try:
        CCc, dxc = _call_kernels(unit, arrays, compiled=True)
    except Exception as exc:
        raise _Failed(f"numba could not compile or run a kernel: {type(exc).__name__}: "
                      f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    _close("outlets_kernel compiled vs. Python", CCc[outs], CC[outs])
    _close("derivatives_kernel compiled vs. Python", dxc, dx)


def _close(what: str, a: np.ndarray, b: np.ndarray) -> None:
    if not np.allclose(a, b, rtol=REL_TOL, atol=1e-12):
        k = int(np.argmax(np.abs(a - b)))
        raise _Failed(f"{what} differ (largest at flat index {k}: {a.ravel()[k]!r} vs {b.ravel()[k]!r})")


def _check_feedthrough(unit: UnitModel, rng: np.random.Generator) -> None:
    if unit.feedthrough or not unit.inlets() or not unit.outlets():
        return
    arrays = _test_arrays(unit, rng)
    x, Q, C, ins, outs, u, p = arrays
    CC1, _ = _call_kernels(unit, arrays, compiled=True)
    C2 = C.copy()
    C2[ins] = C2[ins] * 1.5 + 1.0
    CC2, _ = _call_kernels(unit, (x, Q, C2, ins, outs, u, p), compiled=True)
    if not np.array_equal(CC1[outs], CC2[outs]):
        raise _Failed("the outlet concentrations change with the inlet concentrations, but the class says "
                      "feedthrough = False: set feedthrough = True so the compiler evaluates the unit after "
                      "the units that feed it")


def _random_state(x0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.where(x0 != 0.0, x0 * rng.uniform(0.5, 1.5, x0.size), rng.uniform(0.1, 1.0, x0.size))


def _check_mass_balance(unit: UnitModel, rng: np.random.Generator) -> None:
    conserved = unit.conserved()
    if not conserved:
        if unit.inlets() and unit.outlets():
            raise _Failed("the unit passes streams through but conserved() names no quantity: return the "
                          "components (or combinations) it neither creates nor destroys, e.g. "
                          "twin.units.asm1.each_component() for a unit without conversion")
        return
    x0 = np.asarray(unit.initial_state(), dtype=float)
    for trial in range(N_RANDOM_STATES):
        x = _random_state(x0, rng) if x0.size else x0.copy()
        arrays = _test_arrays(unit, rng, x)
        _, Q, C, ins, outs, u, p = arrays
        CC, dx = _call_kernels(unit, arrays, compiled=True)
        for name, w in conserved.items():
            w = np.asarray(w, dtype=float)
            flux_in = Q[ins] * (CC[ins] @ w)
            flux_out = Q[outs] * (CC[outs] @ w)
            if x.size and np.any(dx != 0.0):
                h = 1e-3 * (np.max(np.abs(x)) + 1e-12) / np.max(np.abs(dx))
                rate = (unit.holdup(x + h * dx)[name] - unit.holdup(x - h * dx)[name]) / (2 * h)
            else:
                rate = 0.0
            net = float(np.sum(flux_in) - np.sum(flux_out))
            scale = float(np.sum(np.abs(flux_in)) + np.sum(np.abs(flux_out)) + abs(rate)) + 1e-12
            if abs(rate - net) > 1e-6 * scale:
                raise _Failed(f"'{name}' is not conserved at random state {trial + 1}: the holdup changes by "
                              f"{rate:.6g} per day but inflow - outflow is {net:.6g} per day (difference "
                              f"{rate - net:.3g}). Check derivatives_kernel, outlets_kernel and holdup() for '{name}'")


def _check_determinism(unit: UnitModel, rng: np.random.Generator) -> None:
    again = type(unit).from_config("u", dict(type(unit).example_options))
    if not np.array_equal(unit.param_array(), again.param_array()):
        raise _Failed("two units built from the same options have different param_array(): "
                      "no randomness or global state in building a unit")
    if not np.array_equal(unit.initial_state(), again.initial_state()):
        raise _Failed("two units built from the same options have different initial_state()")
    x0 = np.asarray(unit.initial_state(), dtype=float)
    arrays = _test_arrays(unit, rng, _random_state(x0, rng) if x0.size else x0)
    first = _call_kernels(unit, arrays, compiled=True)
    second = _call_kernels(unit, arrays, compiled=True)
    for a, b, what in ((first[0], second[0], "outlets_kernel"), (first[1], second[1], "derivatives_kernel")):
        if not np.array_equal(a, b, equal_nan=True):
            raise _Failed(f"{what} gives different results for the same arguments: a kernel must be a pure "
                          "function (no module-level state, no random numbers)")
