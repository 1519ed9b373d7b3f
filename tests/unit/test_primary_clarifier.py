"""The BSM2 primary clarifier (twin.units.primary_clarifier) against an independent implementation.

Reference: bsm2-python 0.0.16 (Miederer et al., FAU Erlangen-Nuremberg, after the BSM2
Matlab/Simulink implementation of U. Jeppsson, IEA Lund University), class
``bsm2_python.bsm2.primclar_bsm2.PrimaryClarifier`` with the parameters and settleability
vector of ``bsm2_python.bsm2.init.primclarinit_bsm2`` (VOL_P, PAR_P, XVECTOR_P) and its
temperature model off, integrated with constant input for 20 days. Both are fed the BSM1
constant influent (Alex et al. 2008, Table 2.7), at its flow and at twice its flow (a shorter
retention time, so a lower removal).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin.flowsheet import Flowsheet
from twin.steady import solve_steady_state
from twin.units.asm1 import NAMES, NC, ASM1Params, cod_weights, nitrogen_weights
from twin.units.junctions import BSM1_CONSTANT_INFLUENT
from twin.units.primary_clarifier import PrimaryClarifierParams, particulate_removal_pct

FLOWSHEET = {
    "units": {"influent": {"type": "influent"}, "primary": {"type": "primary_clarifier"},
              "overflow": {"type": "sink"}, "sludge": {"type": "sink"}},
    "connections": ["influent.out -> primary.in as feed", "primary.overflow -> overflow.in as overflow",
                    "primary.underflow -> sludge.in as sludge"],
}


def _twin_steady_state(q_in: float) -> dict[str, tuple[float, np.ndarray]]:
    cp = Flowsheet.from_config(FLOWSHEET, "primary test").compile()
    u = cp.u_default.copy()
    u[cp.input_index["influent.Q_m3_d"]] = q_in
    x, u, _ = solve_steady_state(cp, cp.x_default, u, [], settle_d=5.0, rtol=1e-9, atol=1e-9, h_max_d=0.05)
    Q, C = cp.stream_values(0.0, x, u)
    return {n: (Q[cp.stream_index[n]], C[cp.stream_index[n]]) for n in ("feed", "overflow", "sludge")}


def _bsm2_python(q_in: float) -> dict[str, tuple[float, np.ndarray]]:
    pc_mod = pytest.importorskip("bsm2_python.bsm2.primclar_bsm2")
    from bsm2_python.bsm2.init import asm1init_bsm2, primclarinit_bsm2

    pc = primclarinit_bsm2
    clarifier = pc_mod.PrimaryClarifier(pc.VOL_P, pc.YINIT1.copy(), pc.PAR_P, asm1init_bsm2.PAR1, pc.XVECTOR_P,
                                        tempmodel=False, activate=False)
    y_in = np.zeros(21)
    y_in[:NC] = [BSM1_CONSTANT_INFLUENT[n] for n in NAMES]
    y_in[14] = q_in
    y_in[15] = 15.0
    underflow, overflow, _ = clarifier.output(20.0, 0.0, y_in)
    return {"overflow": (overflow[14], overflow[:NC]), "sludge": (underflow[14], underflow[:NC])}


@pytest.mark.parametrize("q_in", [BSM1_CONSTANT_INFLUENT["Q"], 2 * BSM1_CONSTANT_INFLUENT["Q"]])
def test_steady_state_matches_bsm2_python(q_in):
    """Overflow and underflow flows and all 13 concentrations within 1e-5 (relative)."""
    got = _twin_steady_state(q_in)
    ref = _bsm2_python(q_in)
    for stream in ("overflow", "sludge"):
        np.testing.assert_allclose(got[stream][0], ref[stream][0], rtol=1e-9)
        np.testing.assert_allclose(got[stream][1], ref[stream][1], rtol=1e-5, atol=1e-9,
                                   err_msg=f"{stream} at Q = {q_in}")


def test_removal_follows_the_otterpohl_freund_efficiency():
    """At the BSM1 flow (retention time 70.3 min) the overflow keeps 1 - eta_X of every particulate
    and all of every soluble; eta_X from the model's equation, 49.2 %."""
    got = _twin_steady_state(BSM1_CONSTANT_INFLUENT["Q"])
    p = PrimaryClarifierParams()
    eta = particulate_removal_pct(p.volume_m3 / BSM1_CONSTANT_INFLUENT["Q"], p.f_corr, p.f_X)
    assert eta == pytest.approx(49.2, abs=0.05)
    feed = got["feed"][1]
    over = got["overflow"][1]
    for i, name in enumerate(NAMES):
        kept = 1 - eta / 100 if name.startswith("X") else 1.0
        assert over[i] == pytest.approx(kept * feed[i], rel=1e-6, abs=1e-9), name


@pytest.mark.parametrize("q_in", [BSM1_CONSTANT_INFLUENT["Q"], 0.3 * BSM1_CONSTANT_INFLUENT["Q"]])
def test_cod_and_nitrogen_are_conserved(q_in):
    """At steady state COD and nitrogen in the feed leave in overflow plus underflow (1e-9)."""
    s = _twin_steady_state(q_in)
    wc, _ = cod_weights()
    wn, _ = nitrogen_weights(ASM1Params())
    for w in (wc, wn):
        into = s["feed"][0] * (s["feed"][1] @ w)
        out = s["overflow"][0] * (s["overflow"][1] @ w) + s["sludge"][0] * (s["sludge"][1] @ w)
        assert out == pytest.approx(into, rel=1e-9)


def test_bundled_plant_with_primary_clarifier_reaches_steady_state():
    """bsm1_primary: the primary clarifier takes particulate COD off the reactors' feed, so the
    plant wastes less sludge than BSM1 at the same flows, and nitrifies as fully."""
    from twin.run import run_scenario
    from twin.scenario import load_scenario

    path = Path(__file__).resolve().parents[2] / "scenarios" / "bsm1_openloop_steady.yaml"
    runs = {}
    for plant in ("bsm1", "bsm1_primary"):
        s, p = load_scenario(path, [f"plant={plant}"])
        runs[plant] = run_scenario(s, p.parent).kpis
    with_pc, without = runs["bsm1_primary"], runs["bsm1"]
    assert with_pc["bsm1"]["SP"] < without["bsm1"]["SP"]
    assert with_pc["bsm1"]["effluent_avg"]["SNH"] < 2 * without["bsm1"]["effluent_avg"]["SNH"] + 0.5
