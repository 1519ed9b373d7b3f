"""The checks every registered unit type must pass (the plug-in contract of twin.units.base)."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
from numba import njit

from twin.units import registered_types, unit_type
from twin.units.asm1 import NC, ASM1Reactor
from twin.units.conformance import CHECKS, check_unit_type, format_findings
from twin.units.junctions import splitter_outlets


@pytest.mark.parametrize("name", registered_types())
def test_registered_unit_type_contract(name):
    """Every registered unit type passes the shared checks (twin.units.conformance)."""
    findings = check_unit_type(name)
    assert [f.check for f in findings] == list(CHECKS)
    assert all(f.passed for f in findings), format_findings(name, findings)


class _LeakyReactor(ASM1Reactor):
    """An ASM1 reactor that claims to conserve ammonia on its own (ASM1 converts it)."""

    type_name = "leaky"

    def conserved(self):
        return {"SNH": np.eye(NC)[9]}


@njit(cache=False)
def _short_outlets(t, x, Q, C, ins, outs, u, p):
    for i in range(12):
        C[outs[0], i] = x[i]


class _ShortOutlets(ASM1Reactor):
    type_name = "short"
    outlets_kernel = _short_outlets


class _FeedthroughUndeclared(ASM1Reactor):
    """Outlets copy the inlet (a junction) while the class says feedthrough = False."""

    type_name = "copy"
    outlets_kernel = splitter_outlets


def _failed(findings):
    return {f.check: f.detail for f in findings if not f.passed}


def test_checks_catch_an_unconserved_quantity():
    failed = _failed(check_unit_type("leaky", _LeakyReactor))
    assert list(failed) == ["mass balance"]
    assert "'SNH' is not conserved" in failed["mass balance"]


def test_checks_catch_an_outlet_concentration_left_unwritten():
    failed = _failed(check_unit_type("short", _ShortOutlets))
    assert "outlets_kernel leaves outlet 'out' without a finite value of SALK" in failed["kernels"]


def test_checks_catch_undeclared_feedthrough():
    failed = _failed(check_unit_type("copy", _FeedthroughUndeclared))
    assert "feedthrough = False" in failed["feedthrough"]


def test_checks_name_a_type_registered_under_another_name():
    failed = _failed(check_unit_type("reactor", ASM1Reactor))
    assert "type_name = 'asm1_reactor'" in failed["registration"]


def test_a_third_party_unit_registers_through_its_entry_point(tmp_path, monkeypatch):
    """A unit type in another distribution is found through the twin.units entry-point group."""
    pkg = tmp_path / "extra_units"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from twin.units.junctions import Sink

        class Outfall(Sink):
            type_name = "outfall"
            description = "a river outfall"
    '''))
    dist = tmp_path / "extra_units-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-units\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[twin.units]\noutfall = extra_units:Outfall\nbroken = extra_units:Nope\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from twin import units

    units._entry_points.cache_clear()
    try:
        assert "outfall" in registered_types()
        assert unit_type("outfall").__name__ == "Outfall"
        from twin.errors import ConfigError

        with pytest.raises(ConfigError, match="unit type 'broken' .* failed to load"):
            unit_type("broken")
    finally:
        sys.modules.pop("extra_units", None)
        monkeypatch.undo()
        units._entry_points.cache_clear()
