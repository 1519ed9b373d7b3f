"""Tuning rules, verification and identification against published known answers."""

from __future__ import annotations

import math

import pytest
import simpy

from controllers.identify import fit_step, relay_test, step_test
from controllers.lti import LTIPlant
from controllers.models import FOPDT, SOPDT, RationalTF
from controllers.tuning import simc_fopdt, tune, tyreus_luyben, zn_ultimate
from controllers.verify import Criteria, verify

THIRD_ORDER = RationalTF((1.0,), (1.0, 3.0, 3.0, 1.0))  # 1/(s+1)^3


def test_pidtune_like_rule_on_third_order_lag():
    """MATLAB's documented pidtune example on 1/(s+1)^3 gives the PI Kp = 1.14, Ki = 0.454 with a
    60 deg phase margin at about 0.52 rad/s; our rule must land on the same design (the sample
    time is tiny, so the discrete loop is practically continuous)."""
    t = tune("pidtune", THIRD_ORDER, Ts=1e-3)
    v = t.verification
    assert abs(v.pm_deg - 60.0) <= 2.0
    assert v.wc == pytest.approx(0.52, rel=0.03)
    assert t.K == pytest.approx(1.14, rel=0.03)
    assert t.K / t.Ti == pytest.approx(0.454, rel=0.03)
    assert v.ok


def test_simc_published_example():
    """Skogestad (2003): FOPDT k=1, tau=10, theta=2 with tau_c = theta gives Kc = 2.5, tau_I = 10."""
    Kc, tI = simc_fopdt(1.0, 10.0, 2.0)
    assert Kc == pytest.approx(2.5)
    assert tI == pytest.approx(10.0)


def test_ultimate_rules():
    """Ziegler-Nichols (1942) and Tyreus-Luyben (1992) PI from Ku, Pu."""
    assert zn_ultimate(8.0, 3.6) == pytest.approx((3.6, 3.0, 0.0))
    assert tyreus_luyben(8.0, 3.6) == pytest.approx((2.5, 7.92, 0.0))


def test_relay_test_finds_ultimate_point():
    """Relay feedback on 1/(s+1)^3: the true ultimate gain is 8 at w = sqrt(3) (Pu = 3.628);
    the describing-function estimate must be within 5 %."""
    env = simpy.Environment()
    plant = LTIPlant(env, THIRD_ORDER, 0.001)
    proc = env.process(relay_test(env, plant.read, plant.write, 0.0, 1.0, 0.0, 0.0, 86, n_periods=8))
    env.run(proc)
    r = proc.value
    assert r.converged
    assert r.Ku == pytest.approx(8.0, rel=0.05)
    assert r.Pu == pytest.approx(2 * math.pi / math.sqrt(3), rel=0.05)


def test_relay_with_hysteresis_lands_where_the_describing_function_says():
    """With hysteresis eps the limit cycle sits where G(jw) = -(pi/4d)(sqrt(a^2 - eps^2) + j eps)
    (Åström and Hägglund 1984): check the model's response at w = 2 pi / Pu."""
    import numpy as np

    env = simpy.Environment()
    plant = LTIPlant(env, THIRD_ORDER, 0.001)
    d, eps = 1.0, 0.02
    proc = env.process(relay_test(env, plant.read, plant.write, 0.0, d, eps, 0.0, 86, n_periods=8))
    env.run(proc)
    r = proc.value
    g = complex(THIRD_ORDER.freq(np.array([2 * math.pi / r.Pu]))[0])
    expected = -(math.pi / (4 * d)) * complex(math.sqrt(r.amplitude**2 - eps**2), eps)
    assert abs(g - expected) <= 0.05 * abs(expected)


@pytest.mark.parametrize("pattern", ["step", "doublet"])
@pytest.mark.parametrize("model", [FOPDT(2.0, 5.0, 1.0), SOPDT(-3.0, 4.0, 1.0, 0.5)])
def test_step_test_recovers_the_model(model, pattern):
    env = simpy.Environment()
    plant = LTIPlant(env, model, 0.01)
    proc = env.process(step_test(env, plant.read, plant.write, 0.0, 0.5, 60 * 86400, 864, pattern=pattern))
    env.run(proc)
    ident = fit_step(proc.value)
    assert ident.chosen == type(model).__name__
    for name in model.__dataclass_fields__:
        assert getattr(ident.model, name) == pytest.approx(getattr(model, name), rel=1e-3)


def test_verification_refuses_an_aggressive_design():
    """Ziegler-Nichols reaction-curve tuning is known to give small margins (quarter-amplitude
    damping): on a lag-dominant plant it is refused, with the reasons named."""
    t = tune("zn_step", FOPDT(1.0, 10.0, 1.0), Ts=0.1)
    assert not t.accepted
    assert any("margin" in r or "unstable" in r or "Ms" in r for r in t.verification.reasons)


def test_verification_margins_by_hand():
    """P control K=0.5 on 1/(s+1)^3, practically continuous: GM = 8/0.5 = 16; |L| < 1 everywhere,
    so no gain crossover (infinite phase margin)."""
    v = verify(THIRD_ORDER, 0.5, math.inf, 0.0, 1e-3, criteria=Criteria())
    assert v.gm == pytest.approx(16.0, rel=0.01)
    assert math.isinf(v.pm_deg)
    assert v.stable and v.ok
    v2 = verify(THIRD_ORDER, 9.0, math.inf, 0.0, 1e-3)
    assert not v2.stable and "closed loop unstable" in v2.reasons


@pytest.mark.parametrize("model", [FOPDT(2.0, 5.0, 1.0), SOPDT(-3.0, 4.0, 1.0, 0.7), FOPDT(0.5, 1.0, 1.9)])
def test_frequency_scan_agrees_with_python_control(model, monkeypatch):
    """The frequency-scan path (used for long delays) gives the margins python-control gives."""
    import controllers.verify as V

    t = tune("simc", model, Ts=0.1)
    exact = V.verify(model, t.K, t.Ti, t.Td, 0.1)
    monkeypatch.setattr(V, "MAX_EXACT_DELAY_SAMPLES", -1)
    scan = V.verify(model, t.K, t.Ti, t.Td, 0.1)
    assert scan.gm == pytest.approx(exact.gm, rel=0.01)
    assert scan.pm_deg == pytest.approx(exact.pm_deg, abs=0.5)
    assert scan.ms == pytest.approx(exact.ms, rel=0.01)
    assert scan.stable == exact.stable


def test_spurious_gain_crossovers_do_not_decide_the_phase_margin():
    """A delay-dominant plant (15 samples of delay) where python-control's margin search returns
    gain crossovers at which |L| is 0.57 and 0.46, one of them with a phase margin of -33 deg,
    for a loop that is stable with Ms 1.86 (so its phase margin is at least 31 deg): only
    crossovers where |L| = 1 count, and the frequency scan of the loop's own response agrees.
    A counterexample hypothesis found for the pidtune property."""
    model = SOPDT(k=-1.0, tau1=1.5678788438269704, tau2=0.02838735964758755, theta=2.4219002266959655)
    Ts = 0.16072665720682092
    t = tune("pidtune", model, Ts)
    v = t.verification
    assert t.accepted and v.stable
    assert v.pm_deg >= 2 * math.degrees(math.asin(1 / (2 * v.ms))) - 1.0  # the bound Ms puts on it
    assert 45.0 <= v.pm_deg <= 75.0 and 2.1 <= v.gm < math.inf
