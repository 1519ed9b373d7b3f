"""Takács settler: mass conservation and settling velocity."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import asm1_concentrations

from twin.units.asm1 import IDX, NC
from twin.units.settler import SettlerParams, TakacsSettler, settler_derivatives, settler_outlets, settling_velocity


def _settler():
    return TakacsSettler("settler", SettlerParams(), {})


def test_settling_velocity_published_shape():
    """Double-exponential velocity (Takács et al. 1991) with the BSM1 parameters: zero below the
    non-settleable concentration, capped at v0', hindered at high concentration."""
    p = _settler().param_array()
    assert settling_velocity(0.0, 0.0, p) == 0.0
    x = 3000.0
    expected = 474 * (np.exp(-0.000576 * x) - np.exp(-0.00286 * x))
    assert np.isclose(settling_velocity(x, 0.0, p), min(250.0, expected))
    assert np.isclose(settling_velocity(500.0, 0.0, p), 474 * (np.exp(-0.288) - np.exp(-1.43)))
    capped = p.copy()
    capped[4] = 100.0  # v0' below the Vesilind curve: the cap applies
    assert settling_velocity(500.0, 0.0, capped) == 100.0
    assert settling_velocity(500.0, 600.0, p) == 0.0  # below the non-settleable concentration


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 12000.0), min_size=10, max_size=10), asm1_concentrations(),
       st.floats(1000, 80000), st.floats(0.05, 0.95))
def test_solids_and_solubles_are_conserved(layers, feed, q_feed, under_frac):
    """d/dt (mass in settler) = in - out for TSS and every soluble, whatever the state and flows."""
    unit = _settler()
    p = unit.param_array()
    x = np.ones(len(unit.states())) * 5.0
    x[:10] = layers
    x[10:] = np.linspace(1, 30, 70)
    q_u = q_feed * under_frac
    Q = np.array([q_feed, q_feed - q_u, q_u])
    C = np.zeros((3, NC))
    C[0] = feed
    ins, outs = np.array([0]), np.array([1, 2])
    settler_outlets(0.0, x, Q, C, ins, outs, np.zeros(0), p)
    dx = np.empty_like(x)
    settler_derivatives(0.0, x, Q, C, ins, outs, np.zeros(0), p, dx)
    area, z = 1500.0, 0.4
    tss_feed = 0.75 * sum(feed[IDX[n]] for n in ("XI", "XS", "XBH", "XBA", "XP"))
    d_mass = np.sum(dx[:10]) * area * z
    flux = q_feed * tss_feed - Q[1] * x[0] - Q[2] * x[9]
    assert abs(d_mass - flux) <= 1e-9 * (abs(flux) + q_feed * tss_feed + 1.0)
    for j, name in enumerate(("SI", "SS", "SO", "SNO", "SNH", "SND", "SALK")):
        sl = x[10 * (1 + j):10 * (2 + j)]
        d_mass = np.sum(dx[10 * (1 + j):10 * (2 + j)]) * area * z
        flux = q_feed * feed[IDX[name]] - Q[1] * sl[0] - Q[2] * sl[-1]
        assert abs(d_mass - flux) <= 1e-9 * (abs(q_feed * feed[IDX[name]]) + abs(flux) + 1.0)


def test_outlet_particulates_follow_feed_fractions():
    unit = _settler()
    p = unit.param_array()
    x = np.ones(len(unit.states()))
    x[0], x[9] = 12.0, 6000.0
    C = np.zeros((3, NC))
    C[0, IDX["XBH"]], C[0, IDX["XI"]] = 2000.0, 1000.0
    settler_outlets(0.0, x, np.array([1.0, 0.5, 0.5]), C, np.array([0]), np.array([1, 2]), np.zeros(0), p)
    tss_feed = 0.75 * 3000.0
    assert np.isclose(C[2, IDX["XBH"]], 2000.0 * 6000.0 / tss_feed)
    assert np.isclose(0.75 * (C[1, IDX["XBH"]] + C[1, IDX["XI"]]), 12.0)
