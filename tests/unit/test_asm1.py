"""ASM1 stoichiometry, rates and the reactor kernel."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import asm1_concentrations, flows_m3_d

from twin.units.asm1 import (
    IDX,
    NC,
    ASM1Params,
    ReactorParams,
    cod_weights,
    conservation_residuals,
    kinetic_array,
    nitrogen_weights,
    process_rates,
    reactor_derivatives,
    stoichiometry,
)


def test_stoichiometry_conserves_cod_and_nitrogen():
    """Every ASM1 process conserves COD and N (Henze et al. 1987, Table 6.1 continuity check)."""
    res = conservation_residuals(ASM1Params())
    assert np.max(np.abs(res["COD"])) < 1e-12
    assert np.max(np.abs(res["N"])) < 1e-12


def test_conservation_check_detects_a_wrong_entry():
    S, n2 = stoichiometry(ASM1Params())
    S[0, IDX["SO"]] *= 1.01  # a typo in the oxygen coefficient of aerobic growth
    wc, wc_n2 = cod_weights()
    assert abs((S @ wc + n2 * wc_n2)[0]) > 1e-3


def test_published_matrix_entries():
    """Spot values of the BSM1 parameter set (Alex et al. 2008, Table 2.2): Y_H = 0.67, Y_A = 0.24."""
    S, _ = stoichiometry(ASM1Params())
    assert np.isclose(S[0, IDX["SS"]], -1 / 0.67)
    assert np.isclose(S[0, IDX["SO"]], -(1 - 0.67) / 0.67)
    assert np.isclose(S[2, IDX["SO"]], -(4.57 - 0.24) / 0.24)
    assert np.isclose(S[2, IDX["SNH"]], -0.08 - 1 / 0.24)
    assert np.isclose(S[3, IDX["XND"]], 0.08 - 0.08 * 0.06)


def test_rates_at_a_hand_computed_state():
    """Aerobic heterotrophic growth: mu_H SS/(K_S+SS) SO/(K_OH+SO) XBH, evaluated by hand."""
    c = np.ones(NC)
    c[IDX["SS"]] = 10.0
    c[IDX["SO"]] = 0.2
    c[IDX["XBH"]] = 1000.0
    rho = process_rates(c, kinetic_array(ASM1Params()))
    assert np.isclose(rho[0], 4.0 * 0.5 * 0.5 * 1000.0)
    assert np.isclose(rho[3], 0.3 * 1000.0)


def _reactor_rhs(c, c_in, q, kla, p=None):
    p = p or ReactorParams()
    from twin.units.asm1 import ASM1Reactor

    unit = ASM1Reactor("r", p, {})
    P = unit.param_array()
    Q = np.array([q, q])
    C = np.vstack([c_in, c])
    dx = np.empty(NC)
    reactor_derivatives(0.0, c.copy(), Q, C, np.array([0]), np.array([1]), np.array([kla, 1.0]), P, dx)
    return dx, P


@settings(max_examples=200, deadline=None)
@given(asm1_concentrations(), asm1_concentrations(), flows_m3_d, st.floats(0, 400))
def test_reactor_mass_balance_closes(c, c_in, q, kla):
    """V dC/dt = Q (C_in - C) + V r; COD and N totals change only by transport, aeration and N2 loss."""
    p = ReactorParams()
    dx, _ = _reactor_rhs(c, c_in, q, kla, p)
    V = p.volume_m3
    S, n2 = stoichiometry(p.asm1())
    rho = process_rates(c, kinetic_array(p.asm1()))
    wc, wc_n2 = cod_weights()
    wn, _ = nitrogen_weights(p.asm1())
    transport = q / V * (c_in - c)
    aeration = np.zeros(NC)
    aeration[IDX["SO"]] = kla * (8.0 - c[IDX["SO"]])
    n2_rate = n2 @ rho
    cod_lhs = wc @ dx
    cod_rhs = wc @ (transport + aeration) - wc_n2 * n2_rate
    scale = 1.0 + np.abs(wc) @ np.abs(dx)
    assert abs(cod_lhs - cod_rhs) <= 1e-9 * scale
    n_lhs = wn @ dx
    n_rhs = wn @ transport - n2_rate
    assert abs(n_lhs - n_rhs) <= 1e-9 * (1.0 + np.abs(wn) @ np.abs(dx))
