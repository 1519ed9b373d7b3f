"""A unit type from an outside package, found through its entry point by the ``twin`` command.

The test writes a small package (``storage_units``: a first-order storage tank whose outflow is
the stored volume over a time constant) and a ``.dist-info`` folder with its ``entry_points.txt``
into a temporary folder, puts that folder on ``PYTHONPATH`` of ``twin`` subprocesses, and checks
that ``twin units`` lists the type, ``twin units check`` passes it, a flowsheet uses it in
``twin run``, and broken versions are refused before the run with exit 2 and one message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TANK = textwrap.dedent('''
    """A storage tank that empties at a rate proportional to its content (a linear reservoir)."""

    from dataclasses import dataclass

    import numpy as np
    from numba import njit

    from twin.units.asm1 import COMPONENTS, NC, each_component, mixed_holdup
    from twin.units.base import FlowTerm, Port, StateVar, UnitModel


    @dataclass(frozen=True)
    class StorageParams:
        """Defaults: a tank emptying with a 2 h time constant (a test value, not a design)."""

        time_constant_d: float = 2.0 / 24.0

        def validate(self):
            return None if self.time_constant_d > 0 else "time_constant_d must be positive"


    @njit(cache=True, error_model="numpy")
    def storage_flows(t, x, u, p, q):
        q[0] = max(x[0], 0.0) / p[0]


    @njit(cache=True, error_model="numpy")
    def storage_outlets(t, x, Q, C, ins, outs, u, p):
        for i in range(13):
            C[outs[0], i] = x[1 + i]


    @njit(cache=True, error_model="numpy")
    def storage_derivatives(t, x, Q, C, ins, outs, u, p, dx):
        q_in = Q[ins[0]]
        dx[0] = q_in - Q[outs[0]]
        for i in range(DERIVATIVES):
            dx[1 + i] = q_in / max(x[0], 1e-6) * (C[ins[0], i] - x[1 + i])


    class StorageTank(UnitModel):
        type_name = "storage_tank"
        description = "storage tank emptying in proportion to its volume (linear reservoir)"
        Params = StorageParams
        outlets_kernel = storage_outlets
        derivatives_kernel = storage_derivatives
        flows_kernel = storage_flows

        def inlets(self):
            return (Port("in"),)

        def outlets(self):
            return (Port("out"),)

        def states(self):
            return (StateVar("volume_m3", "m3"),) + tuple(StateVar(n, u) for n, u in COMPONENTS)

        def state_flows(self):
            return ("out_m3_d",)

        def flow_equations(self):
            return [[FlowTerm("out", "out", 1.0), FlowTerm("q", "out_m3_d", -1.0)]]

        def param_array(self):
            return np.array([self.params.time_constant_d])

        def initial_state(self):
            x = np.ones(1 + NC)
            x[0] = 1500.0
            return x

        def conserved(self):
            return each_component()

        def holdup(self, x):
            return mixed_holdup(self.conserved(), x[0], x[1:])
''')

FLOWSHEET = textwrap.dedent('''
    name: storage
    units:
      influent: {type: influent}
      tank: {type: storage_tank, params: {time_constant_d: 0.1}}
      effluent: {type: sink}
    connections:
      - influent.out -> tank.in as feed
      - tank.out -> effluent.in as effluent
''')

SCENARIO = textwrap.dedent('''
    name: storage_run
    plant: storage.yaml
    seed: 1
    initial: {mode: default}
    influent: {kind: constant}
    duration: 6h
    evaluation: {kind: none}
    outputs: {report: false}
''')


def _install(root: Path, derivatives: str = "13") -> None:
    """Write the package and its distribution metadata (what 'pip install' would leave)."""
    pkg = root / "storage_units"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text(TANK.replace("range(DERIVATIVES)", f"range({derivatives})"))
    dist = root / "storage_units-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: storage-units\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[twin.units]\nstorage_tank = storage_units:StorageTank\n")


def _twin(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture()
def plugin(tmp_path) -> Path:
    _install(tmp_path)
    (tmp_path / "storage.yaml").write_text(FLOWSHEET)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    return tmp_path


def test_an_outside_unit_is_listed_checked_and_run(plugin):
    listed = _twin(plugin, "units")
    assert listed.returncode == 0 and "storage_tank" in listed.stdout and "storage_units.StorageTank" in listed.stdout
    checked = _twin(plugin, "units", "check", "storage_tank")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "FAIL" not in checked.stdout and "all checks passed" in checked.stdout
    ran = _twin(plugin, "run", "scenario.yaml", "--out", "res", "--quiet")
    assert ran.returncode == 0, ran.stderr
    kpis = json.loads((plugin / "res" / "kpis.json").read_text())
    assert kpis["run"]["simulated_days"] == 0.25


def _refused(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one message
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def test_a_kernel_writing_outside_its_states_is_refused_before_the_run(plugin):
    _install(plugin, derivatives="14")  # one derivative too many: dx[14] of a 14-state unit
    _refused(_twin(plugin, "run", "scenario.yaml", "--out", "res", "--quiet"),
             "unit 'tank' (type 'storage_tank')", "derivatives_kernel", "out of bounds", "14 states",
             "twin units check storage_tank")
    assert not (plugin / "res").exists()
    checked = _twin(plugin, "units", "check", "storage_tank")
    assert checked.returncode == 1 and "FAIL kernels" in checked.stdout


def test_a_kernel_leaving_derivatives_unwritten_is_refused(plugin):
    _install(plugin, derivatives="12")
    _refused(_twin(plugin, "validate", "scenario.yaml"), "derivatives_kernel leaves SALK without a finite derivative")


def test_an_unconnected_port_is_refused(plugin):
    (plugin / "storage.yaml").write_text(FLOWSHEET.replace("  - tank.out -> effluent.in as effluent\n", ""))
    _refused(_twin(plugin, "run", "scenario.yaml", "--out", "res", "--quiet"),
             "outlet port tank.out is not connected")


def test_a_parameter_typo_is_refused_with_a_suggestion(plugin):
    (plugin / "storage.yaml").write_text(FLOWSHEET.replace("time_constant_d: 0.1", "time_constant_h: 0.1"))
    _refused(_twin(plugin, "run", "scenario.yaml", "--out", "res", "--quiet"),
             "units.tank", "unknown parameter 'time_constant_h' (did you mean 'time_constant_d'?)")


def test_an_unknown_unit_name_is_exit_2_with_a_suggestion(plugin):
    _refused(_twin(plugin, "units", "check", "storage_tnak"), "did you mean 'storage_tank'")
