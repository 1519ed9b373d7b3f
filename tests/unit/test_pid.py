"""Discrete PID: anti-windup (both kinds), velocity form, limits, rate limit, filter, bumpless transfers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.pid import PID, PIDSettings
from controllers.sensors import Sensor, t90_factor

TS = 1 / 1440


def _pid(**kw):
    sp = kw.pop("setpoint", 1.0)
    base = dict(K=2.0, Ti_d=0.01, Tt_d=0.005, u_min=0.0, u_max=10.0)
    base.update(kw)
    return PID(PIDSettings(**base), sp, TS)


def test_bsm1_form_by_hand():
    """u = u0 + K e + I, I += Ts (K e / Ti + (u - v)/Tt): two samples computed by hand."""
    pid = _pid(K=25.0, Ti_d=0.002, Tt_d=0.001, offset=144.0, u_max=360.0, setpoint=2.0)
    u1 = pid.step(1.5)
    assert u1 == pytest.approx(144 + 25 * 0.5)
    i1 = TS * 25 * 0.5 / 0.002
    assert pid.step(1.5) == pytest.approx(144 + 25 * 0.5 + i1)


def test_output_respects_limits_and_integral_acts():
    pid = _pid()
    outs = [pid.step(0.0) for _ in range(50)]
    assert all(0.0 <= u <= 10.0 for u in outs)
    assert outs[1] > outs[0]


def _recovery_samples(pid, n_saturated):
    for _ in range(n_saturated):
        u = pid.step(-100.0)
    assert u == 10.0
    return next((k for k in range(1, 100000) if pid.step(5.0) < 10.0), 100000)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.2, 50), st.floats(1e-3, 0.1), st.integers(100, 5000),
       st.sampled_from(["back_calculation", "clamping"]))
def test_anti_windup_bounds_recovery(K, Ti, n_saturated, mode):
    """After a long saturation, the output leaves the limit within a bounded number of samples once
    the error changes sign; the bound does not grow with the time spent saturated."""
    pid = _pid(K=K, Ti_d=Ti, Tt_d=0.5 * Ti, anti_windup=mode)
    k = _recovery_samples(pid, n_saturated)
    assert k <= 1 + math.ceil(3 * 0.5 * Ti / TS) + 1


def test_without_anti_windup_the_integral_winds_up():
    """Control experiment: a huge tracking time disables back-calculation; recovery then takes
    longer than the bound above and grows with the saturation time."""
    short = _recovery_samples(_pid(Tt_d=1e9), 100)
    long_ = _recovery_samples(_pid(Tt_d=1e9), 300)
    assert short > 1 + math.ceil(3 * 0.005 / TS) + 1
    assert long_ > short


def test_velocity_form_cannot_wind_up():
    pid = _pid(form="velocity")
    assert _recovery_samples(pid, 5000) <= 2


def test_rate_limit():
    pid = _pid(rate_max_per_d=1440.0)  # 1 unit per minute
    pid.initialise(u_now=0.0, y_now=1.0)
    outs = [pid.step(-50.0) for _ in range(5)]
    assert np.allclose(np.diff([0.0] + outs), 1.0)


def test_setpoint_weight_and_derivative_filter():
    """b scales the proportional kick of a setpoint step; the derivative on y is filtered:
    a unit step of y gives a first D of -K Td / (Tf + Ts), decaying with ratio Tf / (Tf + Ts)."""
    pid = _pid(K=2.0, Ti_d=math.inf, Td_d=0.01, N=5.0, b=0.5, u_min=-1e9, u_max=1e9, setpoint=0.0)
    pid.initialise(0.0, 0.0)
    pid.setpoint = 1.0
    assert pid.step(0.0) == pytest.approx(2.0 * 0.5)
    Tf = 0.01 / 5
    u = [pid.step(1.0) for _ in range(3)]
    d0 = -2.0 * 0.01 / (Tf + TS)
    assert u[0] == pytest.approx(2.0 * (0.5 - 1.0) + d0)
    assert (u[1] - 2.0 * (0.5 - 1.0)) / d0 == pytest.approx(Tf / (Tf + TS))


def test_bumpless_start_manual_and_retune():
    pid = _pid(offset=3.0)
    pid.initialise(u_now=7.0, y_now=0.8)
    assert pid.step(0.8) == pytest.approx(7.0, abs=0.2)
    pid.set_manual(4.0)
    for _ in range(10):
        assert pid.step(0.9) == 4.0
    pid.set_auto()
    assert pid.step(0.9) == pytest.approx(4.0, abs=0.05)  # no bump on the way back
    before = pid.step(0.9)
    pid.retune(K=6.0, Ti_d=0.02)
    assert pid.step(0.9) == pytest.approx(before, abs=0.2)


@pytest.mark.parametrize("order", [1, 2, 8])
def test_sensor_t90(order):
    """A step through the lag cascade reaches 90 % at T90; the sampled cascade is an approximation
    whose error shrinks with the sample time (here T90/200: within 2 % of T90)."""
    Ts = 1 / 1440 / 20
    T90 = 10 / 1440
    s = Sensor(T90, order, 0.0, None, None, Ts)
    s.measure(0.0)
    k90 = next(k for k in range(1, 100000) if s.measure(1.0) >= 0.9)
    assert abs(k90 * Ts - T90) <= 0.02 * T90
    assert t90_factor(1) == pytest.approx(np.log(10))
