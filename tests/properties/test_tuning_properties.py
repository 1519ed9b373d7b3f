"""Property tests: robust tuning rules give verified, stable, well-behaved loops on random plants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import lti_plants

from controllers.lti import simulate_loop
from controllers.pid import PID, PIDSettings
from controllers.tuning import ROBUST_RULES, tune
from controllers.verify import Criteria


def _settles(model, Ts, t) -> tuple[bool, str]:
    """Simulate the discrete PID against the plant: a unit setpoint step from rest must settle
    (error < 2 % over the last 10 % of the run), with no sustained oscillation and bounded output."""
    pid = PID(PIDSettings(K=t.K, Ti_d=t.Ti, Td_d=t.Td, N=t.N), 1.0, Ts)
    pid.initialise(0.0, 0.0)
    pid.setpoint = 1.0
    horizon = 30 * (model.theta + getattr(model, "tau", 0.0) + getattr(model, "tau1", 0.0)
                    + getattr(model, "tau2", 0.0)) + 12 * (t.Ti if math.isfinite(t.Ti) else 0.0)
    n = int(min(max(horizon / Ts, 300), 6000))
    y, u = simulate_loop(model, pid, Ts, n, substeps=2)
    tail = y[int(0.9 * n):]
    e = 1.0 - tail
    if not np.all(np.isfinite(y)):
        return False, "non-finite"
    if np.max(np.abs(e)) > 0.02:
        return False, f"not settled: max tail error {np.max(np.abs(e)):.3g}"
    u_bound = 10 * max(abs(t.K), 1.0 / abs(model.k))
    if np.max(np.abs(u)) > u_bound:
        return False, f"output {np.max(np.abs(u)):.3g} beyond {u_bound:.3g}"
    return True, ""


@pytest.mark.parametrize("rule", ROBUST_RULES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plant=lti_plants())
def test_robust_rule_gives_verified_stable_loop(rule, plant):
    model, Ts = plant
    c = Criteria()
    t = tune(rule, model, Ts, criteria=c)
    v = t.verification
    # a robust rule (detuned if needed) must produce an accepted design in this plant range ...
    assert t.accepted, f"{rule} on {model}: {v.reasons} {t.notes}"
    # ... that meets every criterion in python-control ...
    assert v.stable and v.gm >= c.gm_min and v.pm_deg >= c.pm_min_deg and v.ms <= c.ms_max
    assert math.copysign(1, t.K) == math.copysign(1, model.k)
    # ... and behaves in time as the frequency domain promised
    ok, why = _settles(model, Ts, t)
    assert ok, f"{rule} on {model}, K={t.K:.4g} Ti={t.Ti:.4g}: {why}"
