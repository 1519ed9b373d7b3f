"""Wet well: level balance with lift-pump draw and overflow (treatment bypass)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.flowsheet import Flowsheet
from twin.units.wetwell import WetWell, WetWellParams, wetwell_flows


def _station():
    cfg = {
        "units": {
            "inf": {"type": "influent"},
            "well": {"type": "wet_well", "params": {"area_m2": 50.0, "overflow_level_m": 2.0}},
            "plant": {"type": "sink"},
            "river": {"type": "sink"},
        },
        "connections": ["inf.out -> well.in as raw", "well.pumped -> plant.in as pumped",
                        "well.overflow -> river.in as bypass"],
    }
    return Flowsheet.from_config(cfg, "station.yaml").compile()


def test_overflow_weir_formula_by_hand():
    """Rectangular sharp-crested weir: Q = (2/3) Cd L sqrt(2 g) H^1.5 (Bos 1989)."""
    unit = WetWell("w", WetWellParams(), {})
    q = np.zeros(2)
    x = np.zeros(14)
    x[0] = 3.1  # 0.1 m over the 3 m crest
    wetwell_flows(0.0, x, np.array([10000.0]), unit.param_array(), q)
    assert q[1] == pytest.approx((2 / 3) * 0.6 * 5.0 * math.sqrt(2 * 9.80665) * 0.1**1.5 * 86400)
    assert q[0] == pytest.approx(10000.0)  # well above the pump-off level: the pumps get their flow
    x[0] = 0.45  # half-way down the dry-run ramp (0.5 m off, 0.1 m ramp)
    wetwell_flows(0.0, x, np.array([10000.0]), unit.param_array(), q)
    assert q[0] == pytest.approx(0.0)


def test_mass_balance_with_bypass():
    """Inflow 30 000 m3/d against 10 000 m3/d of pumping: the well fills to the crest, then the
    excess overflows. Over the run, inflow = pumped + overflow + storage change (exactly)."""
    cp = _station()
    x = cp.x_default.copy()
    lvl = cp.state_index["well.level_m"]
    x[lvl] = 1.0
    x[cp.state_index["well.SNH"]] = 25.0
    u = cp.u_default.copy()
    u[cp.input_index["inf.Q_m3_d"]] = 30000.0
    u[cp.input_index["well.Q_pump_cmd_m3_d"]] = 10000.0
    du = np.zeros_like(u)
    area = 50.0
    pumped = overflow = 0.0
    t, dt = 0.0, 1.0 / 1440
    for _ in range(240):  # four hours in one-minute steps, flows sampled at each step's end
        h0 = x[lvl]
        cp.advance(x, u, du, t, t + dt, 1e-5, 1e-9, 1e-9, 1.0, 10**7, cp.M, cp.P)
        Q, _ = cp.stream_values(t + dt, x, u)
        t += dt
        pumped += Q[cp.stream_index["pumped"]] * dt
        overflow += Q[cp.stream_index["bypass"]] * dt
        assert x[lvl] >= h0 - 1e-9  # filling or holding at the crest
    stored = (x[lvl] - 1.0) * area
    inflow = 30000.0 * 240 / 1440
    assert pumped == pytest.approx(10000.0 * 240 / 1440, rel=1e-6)
    assert inflow == pytest.approx(pumped + overflow + stored, rel=2e-3)  # sampled sums of smooth flows
    assert overflow > 0.5 * (inflow - pumped)  # the well spilled
    assert 2.0 < x[lvl] < 2.3  # held just above the crest
    # the well's content tends to the influent concentration
    assert x[cp.state_index["well.SNH"]] == pytest.approx(31.56, rel=0.01)
