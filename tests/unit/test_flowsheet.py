"""Flowsheet wiring checks and the compiled plant."""

from __future__ import annotations

import numpy as np
import pytest

from twin.errors import ConfigError
from twin.flowsheet import Flowsheet
from twin.units.asm1 import IDX


def _one_tank(**over):
    cfg = {
        "units": {
            "inf": {"type": "influent"},
            "tank": {"type": "asm1_reactor", "params": {"volume_m3": 500.0}},
            "out": {"type": "sink"},
        },
        "connections": ["inf.out -> tank.in as feed", "tank.out -> out.in as effluent"],
    }
    cfg.update(over)
    return cfg


def test_unknown_unit_type_is_named():
    cfg = _one_tank()
    cfg["units"]["tank"]["type"] = "asm1_reacter"
    with pytest.raises(ConfigError, match=r"units.tank: unknown unit type 'asm1_reacter' \(did you mean 'asm1_reactor'"):
        Flowsheet.from_config(cfg, "fs.yaml")


def test_unconnected_port_is_named():
    cfg = _one_tank(connections=["inf.out -> tank.in as feed"])
    with pytest.raises(ConfigError, match=r"outlet port tank.out is not connected"):
        Flowsheet.from_config(cfg, "fs.yaml").compile()


def test_unknown_port_is_named():
    cfg = _one_tank(connections=["inf.out -> tank.inlet as feed", "tank.out -> out.in"])
    with pytest.raises(ConfigError, match=r"unit 'tank' has no inlet port 'inlet' \(its inlets: in\)"):
        Flowsheet.from_config(cfg, "fs.yaml").compile()


def test_doubly_connected_port():
    cfg = _one_tank()
    cfg["units"]["out2"] = {"type": "sink"}
    cfg["connections"].append("tank.out -> out2.in as again")
    with pytest.raises(ConfigError, match=r"port tank.out is connected twice"):
        Flowsheet.from_config(cfg, "fs.yaml").compile()


def test_stream_kind_mismatch(monkeypatch):
    from twin.units.base import Port
    from twin.units.junctions import Sink

    monkeypatch.setattr(Sink, "inlets", lambda self: (Port("in", kind="air"),))
    with pytest.raises(ConfigError, match=r"tank.out carries 'asm1_liquid' but out.in expects 'air'"):
        Flowsheet.from_config(_one_tank(), "fs.yaml").compile()


def test_negative_volume_is_refused():
    cfg = _one_tank()
    cfg["units"]["tank"]["params"]["volume_m3"] = -5
    with pytest.raises(ConfigError, match=r"units.tank.*volume_m3 must be positive"):
        Flowsheet.from_config(cfg, "fs.yaml")


def test_unknown_parameter_gets_a_suggestion():
    cfg = _one_tank()
    cfg["units"]["tank"]["params"] = {"volum_m3": 5}
    with pytest.raises(ConfigError, match=r"unknown parameter 'volum_m3' \(did you mean 'volume_m3'"):
        Flowsheet.from_config(cfg, "fs.yaml")


def test_undetermined_flows_are_refused():
    cfg = {
        "units": {
            "inf": {"type": "influent"},
            "mix": {"type": "mixer", "inlets": ["a", "b"]},
            "tank": {"type": "asm1_reactor"},
            "split": {"type": "splitter", "outlets": {"back": "rest", "out": "rest"}},
            "out": {"type": "sink"},
        },
        "connections": ["inf.out -> mix.a", "mix.out -> tank.in", "tank.out -> split.in",
                        "split.back -> mix.b", "split.out -> out.in"],
    }
    with pytest.raises(ConfigError, match="at most one outlet may be 'rest'"):
        Flowsheet.from_config(cfg, "fs.yaml")


def test_undetermined_underflow_is_refused():
    """A settler whose underflow no pump sets leaves one flow undetermined."""
    cfg = {
        "units": {
            "inf": {"type": "influent"},
            "tank": {"type": "asm1_reactor"},
            "settler": {"type": "takacs_settler"},
            "eff": {"type": "sink"},
            "sludge": {"type": "sink"},
        },
        "connections": ["inf.out -> tank.in", "tank.out -> settler.feed", "settler.effluent -> eff.in",
                        "settler.underflow -> sludge.in"],
    }
    with pytest.raises(ConfigError, match=r"stream flows are not determined .*1 undetermined"):
        Flowsheet.from_config(cfg, "fs.yaml").compile()


def test_algebraic_loop_is_refused():
    cfg = {
        "units": {
            "inf": {"type": "influent"},
            "mix": {"type": "mixer", "inlets": ["a", "b"]},
            "split": {"type": "splitter", "outlets": {"back": 10.0, "out": "rest"}},
            "out": {"type": "sink"},
        },
        "connections": ["inf.out -> mix.a", "mix.out -> split.in", "split.back -> mix.b", "split.out -> out.in"],
    }
    with pytest.raises(ConfigError, match="algebraic loop"):
        Flowsheet.from_config(cfg, "fs.yaml").compile()


def test_bsm1_flows_follow_from_mass_balance(bsm1_plant):
    """With the BSM1 defaults the reactor flow is Q_in + Qa + Qr and the effluent Q_in - Qw."""
    cp = bsm1_plant
    Q = cp.M @ cp.u_default
    q = {n: Q[i] for i, n in enumerate(cp.stream_names)}
    assert np.isclose(q["reactor1_feed"], 18446 + 55338 + 18446)
    assert np.isclose(q["effluent"], 18446 - 385)
    assert np.isclose(q["underflow"], 18446 + 385)
    assert np.isclose(q["settler_feed"], 18446 + 18446)  # reactor flow minus the internal recycle


def test_washout_of_an_inert_matches_the_analytic_solution():
    """One tank, inert soluble SI only: C(t) = C_in + (C0 - C_in) exp(-Q t / V) (exact)."""
    fs = Flowsheet.from_config(_one_tank(), "fs.yaml")
    cp = fs.compile()
    x = np.zeros(cp.n_states)
    x[IDX["SI"]] = 100.0
    u = np.zeros(cp.n_inputs)
    u[cp.input_index["inf.Q_m3_d"]] = 1000.0
    u[cp.input_index["inf.SI_g_m3"]] = 20.0
    du = np.zeros_like(u)
    t1 = 0.7
    t, h, steps, nfev, status, bad = cp.advance(x, u, du, 0.0, t1, 1e-4, 1e-9, 1e-9, 1.0, 10**7, cp.M, cp.P)
    assert status == 0 and t == t1
    exact = 20.0 + 80.0 * np.exp(-1000.0 / 500.0 * t1)
    assert abs(x[IDX["SI"]] - exact) < 1e-6


def test_linear_input_ramp_is_integrated_exactly():
    """A ramped inlet concentration c_in = a + b t through a tank: the integrator sees the ramp.

    Exact solution of dC/dt = k (a + b t - C), C(0) = C0:  C = a + b t - b/k + (C0 - a + b/k) e^{-kt}.
    """
    cp = Flowsheet.from_config(_one_tank(), "fs.yaml").compile()
    x = np.zeros(cp.n_states)
    u = np.zeros(cp.n_inputs)
    du = np.zeros_like(u)
    u[cp.input_index["inf.Q_m3_d"]] = 500.0  # k = Q/V = 1 1/d
    u[cp.input_index["inf.SI_g_m3"]] = 10.0
    du[cp.input_index["inf.SI_g_m3"]] = 40.0
    cp.advance(x, u, du, 0.0, 2.0, 1e-4, 1e-10, 1e-10, 1.0, 10**7, cp.M, cp.P)
    a, b, k, t = 10.0, 40.0, 1.0, 2.0
    exact = a + b * t - b / k + (0.0 - a + b / k) * np.exp(-k * t)
    assert abs(x[IDX["SI"]] - exact) < 1e-6
