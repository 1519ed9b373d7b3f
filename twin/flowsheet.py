"""Flowsheets: units plus connections, checked and compiled into one right-hand side.

A flowsheet is read from YAML (a bundled plant such as ``bsm1`` or a user file)::

    units:
      reactor1: {type: asm1_reactor, params: {volume_m3: 1000}}
      ...
    connections:
      - influent.out -> mix.influent as influent     # "as NAME" names the stream
    evaluation: {effluent: effluent, waste: waste, ...}

Compilation checks the wiring (unknown unit type, unconnected or doubly connected
port, stream kind mismatch, flows not determined, algebraic loop) and each unit's kernels
(one call in Python on the unit's initial state: every outlet concentration and every
derivative written, no index outside the arrays), solves the flow
relations once into a matrix (stream flows = M @ inputs), orders the unit kernels and
generates one numba module holding the right-hand side and the integrator
(:mod:`twin.integrate`). The generated module is written to a cache folder named by the
hash of its source, so numba's on-disk cache makes a warm start cheap.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import ConfigError
from twin.integrate import INTEGRATOR_TEMPLATE
from twin.units import unit_type
from twin.units.base import UnitModel, did_you_mean
from twin.units.conformance import kernel_problems

_CONNECTION = re.compile(r"^\s*(\w+)\.(\w+)\s*->\s*(\w+)\.(\w+)\s*(?:as\s+(\w+))?\s*$")


@dataclass(frozen=True)
class Connection:
    name: str
    src_unit: str
    src_port: str
    dst_unit: str
    dst_port: str


#: the ``evaluation`` block of a flowsheet: which streams play which role in the BSM1 evaluation
EVALUATION_KEYS = ("effluent_stream", "waste_stream", "pumped_flows")


def _evaluation_roles(cfg: Any, source: str) -> dict[str, Any]:
    """Check a flowsheet's ``evaluation`` block: known keys (with a suggestion otherwise), stream
    names as text, pumped flows as stream -> kWh/m3."""
    if cfg is None:
        return {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{source}: evaluation: expected a mapping with {', '.join(EVALUATION_KEYS)}")
    for key, value in cfg.items():
        if key not in EVALUATION_KEYS:
            raise ConfigError(f"{source}: evaluation: unknown key '{key}'{did_you_mean(key, EVALUATION_KEYS)} "
                              f"(known: {', '.join(EVALUATION_KEYS)})")
        if key != "pumped_flows" and not isinstance(value, str):
            raise ConfigError(f"{source}: evaluation.{key}: expected a stream name, got {value!r}")
    pumped = cfg.get("pumped_flows") or {}
    if not isinstance(pumped, dict):
        raise ConfigError(f"{source}: evaluation.pumped_flows: expected a mapping of stream names to kWh/m3")
    for name, f in pumped.items():
        if isinstance(f, bool) or not isinstance(f, (int, float)) or f < 0:
            raise ConfigError(f"{source}: evaluation.pumped_flows.{name}: expected kWh/m3 (a number >= 0), got {f!r}")
    return dict(cfg)


@dataclass
class Flowsheet:
    """Units (in declaration order) and the connections between their ports."""

    name: str
    units: dict[str, UnitModel]
    connections: list[Connection]
    evaluation: dict[str, Any] = field(default_factory=dict)
    source: str = "<flowsheet>"

    @classmethod
    def from_config(cls, cfg: Any, source: str) -> Flowsheet:
        if not isinstance(cfg, dict):
            raise ConfigError(f"{source}: a flowsheet must be a mapping with 'units' and 'connections'")
        allowed = {"name", "description", "units", "connections", "evaluation"}
        for key in cfg:
            if key not in allowed:
                raise ConfigError(f"{source}: unknown key '{key}'{did_you_mean(key, allowed)}")
        units_cfg = cfg.get("units")
        if not isinstance(units_cfg, dict) or not units_cfg:
            raise ConfigError(f"{source}: 'units' must be a non-empty mapping of unit names to definitions")
        units: dict[str, UnitModel] = {}
        for name, ucfg in units_cfg.items():
            if not isinstance(ucfg, dict) or "type" not in ucfg:
                raise ConfigError(f"{source}: units.{name}: expected a mapping with a 'type'")
            ucfg = dict(ucfg)
            tname = ucfg.pop("type")
            try:
                units[name] = unit_type(tname).from_config(name, ucfg)
            except ConfigError as exc:
                raise ConfigError(f"{source}: units.{name}: {exc}") from None
        conns = []
        for i, c in enumerate(cfg.get("connections") or []):
            m = _CONNECTION.match(c) if isinstance(c, str) else None
            if not m:
                raise ConfigError(f"{source}: connections[{i}]: expected 'unit.port -> unit.port [as name]', got {c!r}")
            su, sp, du, dp, nm = m.groups()
            conns.append(Connection(nm or f"{su}_{sp}", su, sp, du, dp))
        return cls(str(cfg.get("name", "flowsheet")), units, conns, _evaluation_roles(cfg.get("evaluation"), source), source)

    # ------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ConfigError naming the unit and port of any wiring problem."""
        src = self.source
        seen_in: dict[tuple[str, str], str] = {}
        seen_out: dict[tuple[str, str], str] = {}
        names: set[str] = set()
        for c in self.connections:
            if c.name in names:
                raise ConfigError(f"{src}: two connections are named '{c.name}'")
            names.add(c.name)
            for unit, port, side, seen in ((c.src_unit, c.src_port, "outlet", seen_out),
                                           (c.dst_unit, c.dst_port, "inlet", seen_in)):
                if unit not in self.units:
                    raise ConfigError(f"{src}: connection '{c.name}': unknown unit '{unit}'{did_you_mean(unit, self.units)}")
                ports = {p.name: p for p in (self.units[unit].outlets() if side == "outlet" else self.units[unit].inlets())}
                if port not in ports:
                    raise ConfigError(f"{src}: connection '{c.name}': unit '{unit}' has no {side} port '{port}'"
                                      f"{did_you_mean(port, ports)} (its {side}s: {', '.join(ports) or 'none'})")
                if (unit, port) in seen:
                    raise ConfigError(f"{src}: port {unit}.{port} is connected twice ('{seen[(unit, port)]}' and '{c.name}')")
                seen[(unit, port)] = c.name
            k_out = {p.name: p.kind for p in self.units[c.src_unit].outlets()}[c.src_port]
            k_in = {p.name: p.kind for p in self.units[c.dst_unit].inlets()}[c.dst_port]
            if k_out != k_in:
                raise ConfigError(f"{src}: connection '{c.name}': {c.src_unit}.{c.src_port} carries '{k_out}' "
                                  f"but {c.dst_unit}.{c.dst_port} expects '{k_in}'")
        for uname, unit in self.units.items():
            for p in unit.inlets():
                if (uname, p.name) not in seen_in:
                    raise ConfigError(f"{src}: inlet port {uname}.{p.name} is not connected")
            for p in unit.outlets():
                if (uname, p.name) not in seen_out:
                    raise ConfigError(f"{src}: outlet port {uname}.{p.name} is not connected")
        self.check_evaluation()
        for uname, unit in self.units.items():
            for problem in kernel_problems(unit):
                raise ConfigError(f"{src}: unit '{uname}' (type '{unit.type_name}'): {problem} "
                                  f"(run 'twin units check {unit.type_name}' for all checks)")

    def check_evaluation(self) -> None:
        """The streams the ``evaluation`` block names exist (ConfigError naming the field otherwise)."""
        names = {c.name for c in self.connections}
        ev = self.evaluation
        named = [(f"evaluation.{k}", ev[k]) for k in ("effluent_stream", "waste_stream") if ev.get(k)]
        named += [(f"evaluation.pumped_flows.{k}", k) for k in ev.get("pumped_flows") or {}]
        for where, stream in named:
            if stream not in names:
                raise ConfigError(f"{self.source}: {where}: no stream '{stream}'{did_you_mean(stream, names)} "
                                  "(streams are the connections' names)")

    def compile(self) -> CompiledPlant:
        self.check()
        return CompiledPlant(self)


def _hash_files(paths: list[str]) -> str:
    h = hashlib.sha256()
    for p in sorted(set(paths)):
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def cache_dir() -> Path:
    """Folder for generated kernels: $TWIN_CACHE_DIR, else the user cache folder."""
    env = os.environ.get("TWIN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "plant-twin" / "kernels"


class CompiledPlant:
    """A checked flowsheet compiled into flat vectors and one generated numba module.

    Attributes: ``state_names`` ("unit.state"), ``state_units``, ``input_names``
    ("unit.input"), ``u_default``, ``P`` (all parameters), ``M`` (stream flows = M @ u),
    ``stream_names`` and the generated functions ``advance``, ``streams`` and ``derivs``.
    """

    def __init__(self, fs: Flowsheet):
        self.flowsheet = fs
        self.units = fs.units
        self.stream_names = [c.name for c in fs.connections]
        self.stream_index = {n: i for i, n in enumerate(self.stream_names)}
        n_streams = len(self.stream_names)
        self.state_slices: dict[str, slice] = {}
        self.input_slices: dict[str, slice] = {}
        self.param_slices: dict[str, slice] = {}
        self.ins: dict[str, np.ndarray] = {}
        self.outs: dict[str, np.ndarray] = {}
        state_names, state_units, input_names, input_units, u0, params, x0 = [], [], [], [], [], [], []
        ns = ni = npar = 0
        for uname, unit in fs.units.items():
            sts = unit.states()
            self.state_slices[uname] = slice(ns, ns + len(sts))
            ns += len(sts)
            state_names += [f"{uname}.{s.name}" for s in sts]
            state_units += [s.unit for s in sts]
            x0.append(np.asarray(unit.initial_state(), dtype=float))
            inp = unit.inputs()
            self.input_slices[uname] = slice(ni, ni + len(inp))
            ni += len(inp)
            input_names += [f"{uname}.{i.name}" for i in inp]
            input_units += [i.unit for i in inp]
            u0 += [i.default for i in inp]
            pa = np.asarray(unit.param_array(), dtype=float)
            self.param_slices[uname] = slice(npar, npar + pa.size)
            npar += pa.size
            params.append(pa)
            by_in = {(c.dst_unit, c.dst_port): self.stream_index[c.name] for c in fs.connections}
            by_out = {(c.src_unit, c.src_port): self.stream_index[c.name] for c in fs.connections}
            self.ins[uname] = np.array([by_in[(uname, p.name)] for p in unit.inlets()], dtype=np.int64)
            self.outs[uname] = np.array([by_out[(uname, p.name)] for p in unit.outlets()], dtype=np.int64)
        self.state_names, self.state_units = state_names, state_units
        self.input_names, self.input_units = input_names, input_units
        self.state_index = {n: i for i, n in enumerate(state_names)}
        self.input_index = {n: i for i, n in enumerate(input_names)}
        self.u_default = np.array(u0, dtype=float)
        self.x_default = np.concatenate(x0) if x0 else np.zeros(0)
        self.P = np.concatenate(params) if params else np.zeros(0)
        self.n_states, self.n_inputs, self.n_streams = ns, ni, n_streams
        self.qflow_slices: dict[str, slice] = {}
        nq = 0
        for uname, unit in fs.units.items():
            k = len(unit.state_flows())
            self.qflow_slices[uname] = slice(nq, nq + k)
            nq += k
        self.n_qflows = nq
        self.M, self.MQ = self._flow_matrix()
        self.order = self._kernel_order()
        self._module = self._generate()
        self.advance = self._module.advance
        self.streams = self._module.streams
        self.derivs = self._module.derivs
        self.sampled = self._module.advance_sampled
        self.add_state_flows = self._module.add_state_flows

    # -- flows -----------------------------------------------------------------------
    def _flow_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """Stream flows = M @ inputs + MQ @ state flows (the flow relations solved once)."""
        fs = self.flowsheet
        rows_a, rows_b, rows_q = [], [], []
        by_in = {(c.dst_unit, c.dst_port): self.stream_index[c.name] for c in fs.connections}
        by_out = {(c.src_unit, c.src_port): self.stream_index[c.name] for c in fs.connections}
        for uname, unit in fs.units.items():
            for eq in unit.flow_equations():
                a = np.zeros(self.n_streams)
                b = np.zeros(self.n_inputs)
                bq = np.zeros(self.n_qflows)
                for term in eq:
                    if term.where == "in":
                        a[by_in[(uname, term.name)]] += term.coeff
                    elif term.where == "out":
                        a[by_out[(uname, term.name)]] += term.coeff
                    elif term.where == "q":
                        sl = self.qflow_slices[uname]
                        bq[sl.start + unit.state_flows().index(term.name)] += term.coeff
                    else:
                        b[self.input_index[f"{uname}.{term.name}"]] += term.coeff
                rows_a.append(a)
                rows_b.append(b)
                rows_q.append(bq)
        A = np.array(rows_a).reshape(len(rows_a), self.n_streams)
        B = np.array(rows_b).reshape(len(rows_b), self.n_inputs)
        BQ = np.array(rows_q).reshape(len(rows_q), self.n_qflows)
        src = fs.source
        if A.shape[0] != self.n_streams or np.linalg.matrix_rank(A) < self.n_streams:
            free = self.n_streams - np.linalg.matrix_rank(A) if A.size else self.n_streams
            raise ConfigError(
                f"{src}: the stream flows are not determined by the flowsheet ({A.shape[0]} flow relations for "
                f"{self.n_streams} streams, {free} undetermined): every splitter needs pumped outlets or one "
                f"'rest' outlet, and every recycle loop a pumped flow")
        return -np.linalg.solve(A, B), -np.linalg.solve(A, BQ)

    def _kernel_order(self) -> list[str]:
        """Units whose outlets follow from states first, then feedthrough units in dependency order."""
        fs = self.flowsheet
        producer = {self.stream_index[c.name]: c.src_unit for c in fs.connections}
        stateful = [n for n, u in fs.units.items() if not u.feedthrough]
        pending = [n for n, u in fs.units.items() if u.feedthrough]
        done = set(stateful)
        order = list(stateful)
        while pending:
            ready = [n for n in pending if all(producer[s] in done for s in self.ins[n])]
            if not ready:
                raise ConfigError(f"{fs.source}: algebraic loop (a recycle with no tank in it) through units "
                                  f"{', '.join(pending)}")
            for n in ready:
                order.append(n)
                done.add(n)
                pending.remove(n)
        return order

    # -- code generation -------------------------------------------------------------------
    def _generate(self):
        fs = self.flowsheet
        lines = ["# generated by twin.flowsheet: do not edit", "import numpy as np", "from numba import njit", ""]
        files = []
        alias = {}
        for k, uname in enumerate(self.order):
            unit = fs.units[uname]
            kinds = ("outlets_kernel", "derivatives_kernel") + (("flows_kernel",) if unit.state_flows() else ())
            for kind in kinds:
                fn = getattr(type(unit), kind)
                if fn is None:
                    raise ConfigError(f"{fs.source}: unit type '{unit.type_name}' gives no {kind}")
                mod = sys.modules[fn.py_func.__module__]
                files.append(mod.__file__)
                alias[(uname, kind)] = f"k{k}_{kind[0]}"
                lines.append(f"from {mod.__name__} import {fn.py_func.__name__} as {alias[(uname, kind)]}")
        lines.append("")
        for uname in self.order:
            lines.append(f"IN_{uname} = np.array({self.ins[uname].tolist()}, dtype=np.int64)")
            lines.append(f"OUT_{uname} = np.array({self.outs[uname].tolist()}, dtype=np.int64)")
        lines.append(f"NS = {self.n_streams}")
        lines.append(f"NQ = {self.n_qflows}")
        lines.append(f"NX = {self.n_states}")
        lines.append("NC = 13")
        lines.append("")

        def call(uname, kind):
            s, i, p = self.state_slices[uname], self.input_slices[uname], self.param_slices[uname]
            args = (f"t, x[{s.start}:{s.stop}], Q, C, IN_{uname}, OUT_{uname}, "
                    f"u[{i.start}:{i.stop}], P[{p.start}:{p.stop}]")
            if kind == "derivatives_kernel":
                args += f", dx[{s.start}:{s.stop}]"
            return f"    {alias[(uname, kind)]}({args})"

        lines.append('@njit(cache=True, error_model="numpy")')
        lines.append("def add_state_flows(t, x, u, P, Q, q):")
        qunits = [n for n in self.order if fs.units[n].state_flows()]
        for n in qunits:
            s_, i_, p_, q_ = (self.state_slices[n], self.input_slices[n], self.param_slices[n],
                              self.qflow_slices[n])
            lines.append(f"    {alias[(n, 'flows_kernel')]}(t, x[{s_.start}:{s_.stop}], u[{i_.start}:{i_.stop}], "
                         f"P[{p_.start}:{p_.stop}], q[{q_.start}:{q_.stop}])")
        # only the nonzero entries of MQ, unrolled (a few per state flow)
        terms = [f"    Q[{k}] += {self.MQ[k, j]!r} * q[{j}]" for k in range(self.n_streams)
                 for j in range(self.n_qflows) if self.MQ[k, j] != 0.0]
        lines += terms or ["    pass"]
        lines.append("")
        lines.append('@njit(cache=True, error_model="numpy")')
        lines.append("def streams(t, x, u, Q, P, C):")
        body = [call(n, "outlets_kernel") for n in self.order if fs.units[n].outlets()]
        lines += body or ["    pass"]
        lines.append("")
        lines.append('@njit(cache=True, error_model="numpy")')
        lines.append("def rhs(t, x, u, Q, P, C, dx, q):")
        lines.append("    add_state_flows(t, x, u, P, Q, q)")
        lines.append("    streams(t, x, u, Q, P, C)")
        lines += [call(n, "derivatives_kernel") for n in self.order if fs.units[n].states()]
        lines.append("")
        lines.append(INTEGRATOR_TEMPLATE)
        from controllers.sampled import template

        lines.append(template())
        source = "\n".join(lines) + "\n"
        digest = hashlib.sha256((source + _hash_files(files + [__file__])).encode()).hexdigest()[:20]
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"plant_{digest}.py"
        if not path.exists():
            tmp = folder / f".plant_{digest}.{os.getpid()}.tmp"
            tmp.write_text(source)
            os.replace(tmp, path)
        modname = f"_twin_generated_plant_{digest}"
        if modname in sys.modules:
            return sys.modules[modname]
        spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
        return module

    def kernels_cached(self) -> bool:
        """Whether the generated kernels are already compiled: in this process, or in numba's
        on-disk cache beside the generated module (a cold cache means a 10-20 s compile)."""
        if getattr(self.advance, "signatures", None):
            return True
        path = Path(self._module.__file__)
        return any((path.parent / "__pycache__").glob(f"{path.stem}.advance-*.nbi"))

    # -- helpers for callers ------------------------------------------------------------
    def unit_of_state(self, index: int) -> str:
        for uname, sl in self.state_slices.items():
            if sl.start <= index < sl.stop:
                return uname
        return "?"

    def stream_values(self, t_d: float, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flows (m3/d) and concentrations (g/m3) of every stream at state ``x``, inputs ``u``."""
        Q = np.empty(self.n_streams)
        C = np.zeros((self.n_streams, 13))
        self._module.stream_values_into(float(t_d), x, u, self.M, self.P, Q, C, np.empty(max(self.n_qflows, 1)))
        return Q, C
