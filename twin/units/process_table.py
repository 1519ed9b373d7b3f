"""Kinetics as data: a process table (Petersen matrix) read from YAML and checked when it loads.

A table names its components (with their COD and nitrogen content, which may be parameter
expressions such as ``i_XB``), its parameters (value, unit, source), fixed constants, and its
processes: a rate expression and the stoichiometric coefficients as expressions of the
parameters. Loading evaluates every coefficient and refuses a table in which a process creates
or destroys COD or nitrogen, naming the file, the process and the residual. The same check runs
whenever the matrix is evaluated for another parameter set (:meth:`ProcessTable.stoichiometry`).

Expressions are arithmetic only (numbers, names, ``+ - * / **``, parentheses), evaluated in
the order written with Python floats, so a matrix built here equals, bit for bit, the same
formulas written in code. ``twin/units/asm1_process_table.yaml`` is the ASM1 table; an ASM2d or
ASM3 table follows the same layout (:func:`load_process_table`).
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from twin.errors import ConfigError
from twin.units.base import did_you_mean

#: a process balances when its residual is below this fraction of its largest term
BALANCE_REL_TOL = 1e-9
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class Expression:
    """An arithmetic expression over named values, parsed once."""

    def __init__(self, text: Any, where: str, names: set[str]) -> None:
        self.text = str(text)
        self.where = where
        try:
            self._tree = ast.parse(self.text, mode="eval").body
        except SyntaxError:
            raise ConfigError(f"{where}: cannot read the expression {self.text!r}") from None
        self._check(self._tree, names)

    def _check(self, node: ast.AST, names: set[str]) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ConfigError(f"{self.where}: unknown name '{node.id}' in {self.text!r}{did_you_mean(node.id, names)}")
            return
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            self._check(node.left, names)
            self._check(node.right, names)
            return
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            self._check(node.operand, names)
            return
        raise ConfigError(f"{self.where}: only numbers, names and + - * / ** are allowed, got {self.text!r}")

    def __call__(self, values: dict[str, Any]) -> Any:
        return self._eval(self._tree, values)

    def _eval(self, node: ast.AST, values: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, values), self._eval(node.right, values))
        return _UNARY[type(node.op)](self._eval(node.operand, values))


@dataclass(frozen=True)
class Parameter:
    name: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class Component:
    name: str
    unit: str
    cod: Expression
    nitrogen: Expression
    #: False for a product that leaves the liquid and is not carried as a state (N2 gas)
    state: bool


@dataclass(frozen=True)
class Process:
    name: str
    rate: Expression
    coefficients: dict[str, Expression]


class ProcessTable:
    """A checked process table. ``states``: the component names carried as states, in order."""

    def __init__(self, name: str, source: str, parameters: dict[str, Parameter], constants: dict[str, float],
                 components: dict[str, Component], processes: list[Process], where: str) -> None:
        self.name = name
        self.source = source
        self.parameters = parameters
        self.constants = constants
        self.components = components
        self.processes = processes
        self.where = where
        self.states = tuple(n for n, c in components.items() if c.state)
        self.gases = tuple(n for n, c in components.items() if not c.state)

    def defaults(self) -> dict[str, float]:
        return {n: p.value for n, p in self.parameters.items()}

    def _values(self, params: dict[str, float] | None) -> dict[str, float]:
        values = dict(self.constants)
        values.update(self.defaults())
        for k, v in (params or {}).items():
            if k in self.parameters:
                values[k] = float(v)
        return values

    def full_matrix(self, params: dict[str, float] | None = None) -> np.ndarray:
        """Coefficients of every process (rows) for every component, gases included (columns in
        table order)."""
        values = self._values(params)
        names = list(self.components)
        S = np.zeros((len(self.processes), len(names)))
        for j, proc in enumerate(self.processes):
            for comp, expr in proc.coefficients.items():
                S[j, names.index(comp)] = expr(values)
        return S

    def residuals(self, params: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """COD and nitrogen created per unit of each process's rate (zero when it balances)."""
        values = self._values(params)
        S = self.full_matrix(params)
        out = {}
        for what, attr in (("COD", "cod"), ("N", "nitrogen")):
            w = np.array([getattr(c, attr)(values) for c in self.components.values()], dtype=float)
            out[what] = S @ w
        return out

    def check_balances(self, params: dict[str, float] | None = None) -> None:
        """ConfigError naming the process that creates or destroys COD or nitrogen."""
        values = self._values(params)
        S = self.full_matrix(params)
        for what, attr in (("COD", "cod"), ("N", "nitrogen")):
            w = np.array([getattr(c, attr)(values) for c in self.components.values()], dtype=float)
            for j, proc in enumerate(self.processes):
                terms = S[j] * w
                scale = float(np.max(np.abs(terms))) if terms.size else 0.0
                if abs(float(np.sum(terms))) > BALANCE_REL_TOL * max(scale, 1e-300):
                    raise ConfigError(f"{self.where}: process '{proc.name}' does not conserve {what}: its "
                                      f"coefficients create {float(np.sum(terms)):.6g} per unit of rate "
                                      f"(terms: {', '.join(f'{n} {t:.4g}' for n, t in zip(self.components, terms) if t)})")

    def stoichiometry(self, params: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(S, gas): the state columns (processes x states) and the gas product columns, for the
        table's parameters overridden by ``params``; balances checked first."""
        self.check_balances(params)
        S = self.full_matrix(params)
        names = list(self.components)
        cols = [names.index(n) for n in self.states]
        gas = [names.index(n) for n in self.gases]
        return S[:, cols], S[:, gas]

    def rates(self, concentrations: dict[str, Any], params: dict[str, float] | None = None) -> list[Any]:
        """Evaluate every process rate (works element-wise on NumPy arrays)."""
        values = self._values(params)
        values.update(concentrations)
        return [p.rate(values) for p in self.processes]


def _mapping(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return v


def load_process_table(path: str | Path | None = None, text: str | None = None) -> ProcessTable:
    """Read, parse and check a process table (ConfigError naming file and field on any problem)."""
    where = str(path) if path is not None else "<process table>"
    if text is None:
        if path is None:
            raise ConfigError("load_process_table: give a path or the text")
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the file ({exc.strerror})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    doc = _mapping(doc, where)
    allowed = {"name", "source", "constants", "parameters", "components", "processes"}
    for key in doc:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}")
    constants = {}
    for k, v in _mapping(doc.get("constants") or {}, f"{where}: constants").items():
        v = _mapping(v, f"{where}: constants.{k}")
        if not isinstance(v.get("value"), (int, float)) or not v.get("source"):
            raise ConfigError(f"{where}: constants.{k}: give a numeric 'value' and its 'source'")
        constants[k] = float(v["value"])
    parameters = {}
    for k, v in _mapping(doc.get("parameters") or {}, f"{where}: parameters").items():
        v = _mapping(v, f"{where}: parameters.{k}")
        if not isinstance(v.get("value"), (int, float)) or not math.isfinite(v["value"]):
            raise ConfigError(f"{where}: parameters.{k}.value: expected a number")
        if not v.get("unit") or not v.get("source"):
            raise ConfigError(f"{where}: parameters.{k}: give its 'unit' and 'source'")
        parameters[k] = Parameter(k, float(v["value"]), str(v["unit"]), str(v["source"]))
    symbols = set(constants) | set(parameters)
    components = {}
    for k, v in _mapping(doc.get("components") or {}, f"{where}: components").items():
        v = _mapping(v, f"{where}: components.{k}")
        if not v.get("unit"):
            raise ConfigError(f"{where}: components.{k}: give its 'unit'")
        components[k] = Component(k, str(v["unit"]), Expression(v.get("COD", 0), f"{where}: components.{k}.COD", symbols),
                                  Expression(v.get("N", 0), f"{where}: components.{k}.N", symbols),
                                  bool(v.get("state", True)))
    processes = []
    procs = doc.get("processes")
    if not isinstance(procs, list) or not procs:
        raise ConfigError(f"{where}: processes: expected a non-empty list")
    for j, v in enumerate(procs):
        v = _mapping(v, f"{where}: processes[{j}]")
        name = str(v.get("name", f"process {j + 1}"))
        at = f"{where}: processes[{j}] ('{name}')"
        coeffs = {}
        for comp, expr in _mapping(v.get("stoichiometry") or {}, f"{at}.stoichiometry").items():
            if comp not in components:
                raise ConfigError(f"{at}.stoichiometry: unknown component '{comp}'{did_you_mean(comp, components)}")
            coeffs[comp] = Expression(expr, f"{at}.stoichiometry.{comp}", symbols)
        if "rate" not in v:
            raise ConfigError(f"{at}: give its 'rate' expression")
        processes.append(Process(name, Expression(v["rate"], f"{at}.rate", symbols | set(components)), coeffs))
    table = ProcessTable(str(doc.get("name", "")), str(doc.get("source", "")), parameters, constants, components,
                         processes, where)
    table.check_balances()
    return table


@cache
def bundled_table(name: str) -> ProcessTable:
    """A table shipped in ``twin/units`` (``asm1`` -> ``asm1_process_table.yaml``), loaded once."""
    res = resources.files("twin.units") / f"{name}_process_table.yaml"
    return load_process_table(f"twin/units/{name}_process_table.yaml", res.read_text())
