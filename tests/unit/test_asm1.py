"""ASM1 stoichiometry, rates and the reactor kernel."""

from __future__ import annotations

import numpy as np
import pytest
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
    reactor_derivatives(0.0, c.copy(), Q, C, np.array([0]), np.array([1]), np.array([kla, 1.0, 15.0, 1.0]), P, dx)
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


def test_temperature_model_reproduces_the_bsm2_reference_points():
    """With the BSM2 temperature model, at 15 degC nothing changes, and at 10 degC the rates are
    the BSM2 10 degC values (mu_H 3.0, b_H 0.2, mu_A 0.3, b_A 0.03, k_h 2.5, k_a 0.05 -> 0.04),
    oxygen saturation falls to its 10 degC solubility ratio and KLa by 1.024^-5."""
    from twin.units.asm1 import ASM1Reactor, so_sat_factor

    base = ReactorParams()
    warm = ReactorParams(temperature_model=1)
    c = np.full(NC, 5.0)
    c_in = np.full(NC, 8.0)
    dx15, _ = _reactor_rhs_T(c, c_in, 15.0, ASM1Reactor("r", warm, {}))
    dx_ref, _ = _reactor_rhs_T(c, c_in, 15.0, ASM1Reactor("r", base, {}))
    np.testing.assert_allclose(dx15, dx_ref, rtol=1e-12)
    assert so_sat_factor(15.0) == 1.0
    # 10 degC: compare with a fixed-temperature reactor given the 10 degC constants directly
    cold = ReactorParams(mu_H=3.0, b_H=0.2, mu_A=0.3, b_A=0.03, k_h=2.5, k_a=0.04,
                         SO_sat_g_m3=8.0 * so_sat_factor(10.0))
    dx10, _ = _reactor_rhs_T(c, c_in, 10.0, ASM1Reactor("r", warm, {}), kla=100.0)
    dx_cold, _ = _reactor_rhs_T(c, c_in, 15.0, ASM1Reactor("r", cold, {}), kla=100.0 * 1.024**-5)
    np.testing.assert_allclose(dx10, dx_cold, rtol=1e-10)
    assert 1.1 < so_sat_factor(10.0) < 1.15  # oxygen is more soluble in colder water


def _reactor_rhs_T(c, c_in, T, unit, kla=0.0):
    P = unit.param_array()
    Q = np.array([1000.0, 1000.0])
    C = np.vstack([c_in, c])
    dx = np.empty(NC)
    reactor_derivatives(0.0, c.copy(), Q, C, np.array([0]), np.array([1]), np.array([kla, 1.0, T, 1.0]), P, dx)
    return dx, P


def test_oxygen_saturation_follows_the_pressure_factor():
    """The aeration term is KLa (f_P SO_sat - SO) with f_P the barometric saturation factor."""
    from twin.units.asm1 import ASM1Reactor

    p = ReactorParams()
    P = ASM1Reactor("r", p, {}).param_array()
    c = np.full(NC, 5.0)
    c[IDX["SO"]] = 2.0
    out = []
    for f in (1.0, 0.9):
        dx = np.empty(NC)
        reactor_derivatives(0.0, c.copy(), np.array([1000.0, 1000.0]), np.vstack([c, c]), np.array([0]),
                            np.array([1]), np.array([200.0, 1.0, 15.0, f]), P, dx)
        out.append(dx[IDX["SO"]])
    assert out[0] - out[1] == pytest.approx(200.0 * 8.0 * 0.1, rel=1e-12)
