"""The checks every registered unit type must pass (the plug-in contract of twin.units.base)."""

from __future__ import annotations

import dataclasses
import sys
import textwrap

import numpy as np
import pytest

from twin.units import registered_types, unit_type
from twin.units.asm1 import NC
from twin.units.base import UnitModel


@pytest.mark.parametrize("name", registered_types())
def test_registered_unit_type_contract(name):
    cls = unit_type(name)
    assert issubclass(cls, UnitModel) and cls.type_name == name and cls.description
    unit = cls.from_config("u", dict(cls.example_options))
    if cls.Params is not type(None):
        assert dataclasses.is_dataclass(cls.Params)
        for f in dataclasses.fields(cls.Params):
            assert f.default is not dataclasses.MISSING, f"{name}.{f.name} has no (cited) default"
    states = unit.states()
    assert all(s.unit for s in states), "every state declares its unit of measure"
    assert len({s.name for s in states}) == len(states)
    assert all(i.unit for i in unit.inputs())
    p = unit.param_array()
    assert np.all(np.isfinite(p))
    x0 = unit.initial_state()
    assert x0.shape == (len(states),)
    n_in, n_out = len(unit.inlets()), len(unit.outlets())
    # flow relations refer only to declared ports and inputs
    ports_in = {q.name for q in unit.inlets()}
    ports_out = {q.name for q in unit.outlets()}
    inputs = {i.name for i in unit.inputs()}
    for eq in unit.flow_equations():
        for term in eq:
            assert term.name in {"in": ports_in, "out": ports_out, "u": inputs,
                                 "q": set(unit.state_flows())}[term.where]
    # kernels: finite, right shapes, deterministic
    rng = np.random.default_rng(0)
    Q = rng.uniform(100, 1000, n_in + n_out)
    C = np.zeros((n_in + n_out, NC))
    C[:n_in] = rng.uniform(0.1, 100, (n_in, NC))
    ins = np.arange(n_in, dtype=np.int64)
    outs = np.arange(n_in, n_in + n_out, dtype=np.int64)
    u = np.array([i.default for i in unit.inputs()], dtype=float)
    if unit.state_flows():
        q = np.full(len(unit.state_flows()), np.nan)
        cls.flows_kernel(0.0, x0.copy(), u, p, q)
        assert np.all(np.isfinite(q)) and np.all(q >= 0)
        for eq in unit.flow_equations():
            for term in eq:
                assert term.where != "q" or term.name in unit.state_flows()
    results = []
    for _ in range(2):
        CC = C.copy()
        dx = np.full(len(states), np.nan)
        cls.outlets_kernel(0.0, x0.copy(), Q, CC, ins, outs, u, p)
        cls.derivatives_kernel(0.0, x0.copy(), Q, CC, ins, outs, u, p, dx)
        if states:
            assert np.all(np.isfinite(dx))
        assert np.all(np.isfinite(CC))
        results.append((CC, dx))
    np.testing.assert_array_equal(results[0][0], results[1][0])


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
