"""Kinetics as data: the ASM1 process table (twin/units/asm1_process_table.yaml) and its loader."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from twin.errors import ConfigError
from twin.units.asm1 import (
    IDX,
    NAMES,
    NC,
    NP,
    O2_PER_N_DENITRIFIED,
    O2_PER_N_NITRIFIED,
    PROCESSES,
    ASM1Params,
    invariants,
    kinetic_array,
    process_rates,
    stoichiometry,
)
from twin.units.process_table import bundled_table, load_process_table


def _henze_table_6_1(p: ASM1Params) -> tuple[np.ndarray, np.ndarray]:
    """The ASM1 stoichiometric matrix (processes x components) and the N2 product column.

    Henze et al. (1987), Table 6.1, written out as code: the reference for the table.
    Returns ``(S, n2)`` where ``n2[j]`` is the gaseous nitrogen (g N/m3) formed per unit of process rate ``j``.
    """
    S = np.zeros((NP, NC))
    n2 = np.zeros(NP)
    i = IDX
    YH, YA, fP, iXB, iXP = p.Y_H, p.Y_A, p.f_P, p.i_XB, p.i_XP
    # 1 aerobic growth of heterotrophs
    S[0, i["SS"]] = -1 / YH
    S[0, i["XBH"]] = 1
    S[0, i["SO"]] = -(1 - YH) / YH
    S[0, i["SNH"]] = -iXB
    S[0, i["SALK"]] = -iXB / 14
    # 2 anoxic growth of heterotrophs
    S[1, i["SS"]] = -1 / YH
    S[1, i["XBH"]] = 1
    S[1, i["SNO"]] = -(1 - YH) / (O2_PER_N_DENITRIFIED * YH)
    S[1, i["SNH"]] = -iXB
    S[1, i["SALK"]] = (1 - YH) / (14 * O2_PER_N_DENITRIFIED * YH) - iXB / 14
    n2[1] = (1 - YH) / (O2_PER_N_DENITRIFIED * YH)
    # 3 aerobic growth of autotrophs
    S[2, i["XBA"]] = 1
    S[2, i["SO"]] = -(O2_PER_N_NITRIFIED - YA) / YA
    S[2, i["SNO"]] = 1 / YA
    S[2, i["SNH"]] = -iXB - 1 / YA
    S[2, i["SALK"]] = -iXB / 14 - 1 / (7 * YA)
    # 4, 5 decay
    for j, x in ((3, "XBH"), (4, "XBA")):
        S[j, i["XS"]] = 1 - fP
        S[j, i[x]] = -1
        S[j, i["XP"]] = fP
        S[j, i["XND"]] = iXB - fP * iXP
    # 6 ammonification
    S[5, i["SND"]] = -1
    S[5, i["SNH"]] = 1
    S[5, i["SALK"]] = 1 / 14
    # 7 hydrolysis of organics
    S[6, i["SS"]] = 1
    S[6, i["XS"]] = -1
    # 8 hydrolysis of organic nitrogen
    S[7, i["SND"]] = 1
    S[7, i["XND"]] = -1
    return S, n2


@pytest.mark.parametrize("params", [ASM1Params(), ASM1Params(Y_H=0.6, Y_A=0.2, f_P=0.1, i_XB=0.086, i_XP=0.01)])
def test_table_gives_the_matrix_written_out_bit_for_bit(params):
    """The kernel's matrix comes from the table; it equals Henze's Table 6.1 coded by hand exactly."""
    S, n2 = stoichiometry(params)
    S_ref, n2_ref = _henze_table_6_1(params)
    assert np.array_equal(S, S_ref) and np.array_equal(n2, n2_ref)


def test_table_components_parameters_and_processes_match_the_asm1_unit():
    table = bundled_table("asm1")
    assert table.states == NAMES and table.gases == ("N2",)
    assert table.defaults() == dataclasses.asdict(ASM1Params())
    assert [p.name for p in table.processes] == [name for name, _ in PROCESSES]
    assert all(p.unit and p.source for p in table.parameters.values())


def test_compiled_rates_implement_the_table_rate_expressions():
    rng = np.random.default_rng(3)
    table = bundled_table("asm1")
    k = kinetic_array(ASM1Params())
    for _ in range(50):
        c = rng.uniform(0.01, 200.0, NC)
        expected = table.rates({n: c[i] for i, n in enumerate(NAMES)})
        np.testing.assert_allclose(process_rates(c, k), expected, rtol=1e-12)


def test_every_process_conserves_cod_and_nitrogen_including_n2():
    res = bundled_table("asm1").residuals()
    assert np.max(np.abs(res["COD"])) < 1e-12 and np.max(np.abs(res["N"])) < 1e-12
    assert len(res["COD"]) == NP


def test_asm1_invariants_are_not_changed_by_any_process():
    S, _ = stoichiometry(ASM1Params())
    for name, w in invariants(ASM1Params()).items():
        assert np.max(np.abs(S @ w)) < 1e-12, name


def _table_text(**edits: str) -> str:
    from importlib import resources

    text = (resources.files("twin.units") / "asm1_process_table.yaml").read_text()
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    return text


def test_a_table_that_does_not_conserve_cod_is_refused_when_it_loads(tmp_path):
    path = tmp_path / "asm1_typo.yaml"
    path.write_text(_table_text(**{"SO: -(O2_nit - Y_A)/Y_A": "SO: -(O2_nit + Y_A)/Y_A"}))
    with pytest.raises(ConfigError) as err:
        load_process_table(path)
    msg = str(err.value)
    assert str(path) in msg and "process 'aerobic growth of autotrophs' does not conserve COD" in msg


def test_a_misspelt_parameter_in_a_coefficient_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "asm1_typo.yaml"
    path.write_text(_table_text(**{"XND: i_XB - f_P*i_XP}\n  - name: decay of autotrophs":
                                   "XND: i_XB - f_P*i_XPP}\n  - name: decay of autotrophs"}))
    with pytest.raises(ConfigError, match=r"processes\[3\] \('decay of heterotrophs'\).stoichiometry.XND: "
                                          r"unknown name 'i_XPP'.*did you mean 'i_XP'"):
        load_process_table(path)


def test_expressions_are_arithmetic_only():
    text = _table_text(**{"stoichiometry: {SS: 1, XS: -1}": "stoichiometry: {SS: __import__('os'), XS: -1}"})
    with pytest.raises(ConfigError, match="only numbers, names and"):
        load_process_table(text=text)
