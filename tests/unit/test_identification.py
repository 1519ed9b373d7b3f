"""Identification that is well-posed on a noisy plant: bounds, censoring, structure choice,
confidence intervals, and results that do not move with the last bits of the arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import simpy
from scipy.special import gammaincinv

from controllers.identify import FitBounds, StepData, fit_step, instrument_lags, known_delay, step_test
from controllers.lti import LTIPlant
from controllers.models import FOPDT, SOPDT
from controllers.pid import PID, PIDSettings
from controllers.tuning import tune

SCEN = Path(__file__).resolve().parents[2] / "scenarios"


def _record(model, noise_sd, seed, pattern="pulse", repeats=1, du=1.0, Ts=0.1, length=40.0, lo=None):
    """A test record of ``model`` sampled every ``Ts`` with white noise, built from the model's
    exact step response (superposition over the pattern's input changes)."""
    t = np.arange(0.0, repeats * length + Ts / 2, Ts)
    if pattern == "pulse":
        changes = [(r * length + dt, s) for r in range(repeats) for dt, s in ((0.0, du), (length / 2, -du))]
    else:
        changes = [(0.0, du)]
    data = StepData(t, np.zeros_like(t), du, 0.0, changes)
    y = data.response(model) + noise_sd * np.random.default_rng(seed).standard_normal(t.size)
    if lo is not None:
        y = np.maximum(y, lo)
    return StepData(t, y, du, 0.0, changes)


def test_known_delay_is_the_half_rule_on_the_instrument_lags():
    """BSM1 nitrate sensor (class B0: 8 equal lags, T90 10 min): each lag T = 10 / gammaincinv(8, 0.9)
    min; the half rule puts 7.5 T into the delay of a process slower than the sensor."""
    lags = instrument_lags(10.0, 8)
    T = 10.0 / gammaincinv(8, 0.9)
    assert lags == pytest.approx([T] * 8)
    assert known_delay(lags) == pytest.approx(7.5 * T)
    assert known_delay([], 0.3) == 0.3


@pytest.mark.parametrize("seed", range(6))
def test_first_order_data_keeps_the_simpler_structure(seed):
    """Noisy FOPDT data: the SOPDT's extra lag never fits significantly better, so the FOPDT
    stays (the structure must not flip on noise or rounding), and the parameters are found."""
    true = FOPDT(2.0, 5.0, 1.0)
    ident = fit_step(_record(true, 0.1, seed, repeats=2), bounds=FitBounds(theta_min=0.5))
    assert ident.chosen == "FOPDT"
    assert ident.model.k == pytest.approx(2.0, rel=0.05)
    assert ident.model.tau == pytest.approx(5.0, rel=0.15)


def test_second_order_data_is_recognised():
    true = SOPDT(-3.0, 4.0, 1.5, 0.5)
    ident = fit_step(_record(true, 0.02, 0, repeats=2))
    assert ident.chosen == "SOPDT"
    assert ident.structure_p < 1e-6
    assert ident.model.k == pytest.approx(-3.0, rel=0.02)
    assert ident.model.tau1 + ident.model.tau2 == pytest.approx(5.5, rel=0.05)


def test_confidence_intervals_cover_the_truth():
    """The 95 % intervals (relative half-widths) cover the true gain and time constant in most of
    20 noisy records; and they shrink when the record holds more repetitions."""
    true = FOPDT(1.0, 4.0, 1.0)
    hits, widths = 0, {1: [], 4: []}
    for seed in range(20):
        for reps in (1, 4) if seed < 8 else (1,):
            ident = fit_step(_record(true, 0.2, seed, repeats=reps), allow_sopdt=False,
                             bounds=FitBounds(theta_min=0.5))
            widths[reps].append(ident.rel_ci["k"])
            if reps == 1:
                m, ci = ident.model, ident.rel_ci
                hits += abs(m.k - 1.0) <= ci["k"] * abs(m.k) and abs(m.tau - 4.0) <= ci["tau"] * m.tau
    assert hits >= 16
    assert np.median(widths[4]) < 0.7 * np.median(widths[1])


def test_readings_clipped_at_the_range_end_are_left_out():
    """A response that runs into the sensor's zero (a step down from 1 g/m3) is clipped, not
    measured: with the range given the fit uses only real readings (the transient down to zero)
    and finds the model; without it the clipped zeros pull the gain down."""
    true = FOPDT(1.0, 3.0, 0.5)
    data = _record(true, 0.05, 1, pattern="step", du=-1.0)
    shifted = StepData(data.t, np.maximum(data.y + 0.8, 0.0), data.du, 0.8, data.changes)
    naive = fit_step(shifted, allow_sopdt=False)
    censored = fit_step(shifted, allow_sopdt=False, bounds=FitBounds(y_range=(0.0, 20.0)))
    assert censored.n_used < shifted.t.size
    assert abs(censored.model.k - 1.0) < abs(naive.model.k - 1.0)
    assert censored.model.k == pytest.approx(1.0, rel=0.1)


def test_an_undetermined_model_says_so():
    """Noise as large as the response: the gain's interval is wide and the decision rule names it."""
    ident = fit_step(_record(FOPDT(0.2, 5.0, 1.0), 0.5, 3), allow_sopdt=False)
    why = ident.determined(0.25, 0.5)
    assert "gain known to" in why


def test_pulse_test_is_one_sided_and_sequential():
    """The pulse pattern goes up and back (never below the operating point), and repeats until
    ``enough`` says the record is sufficient."""
    env = simpy.Environment()
    plant = LTIPlant(env, FOPDT(1.0, 0.02, 0.005), 0.0005)
    asked = []

    def enough(d):
        asked.append(d.repeats)
        return d.repeats >= 2

    proc = env.process(step_test(env, plant.read, plant.write, 0.0, 0.5, 4 * 3600, 60, pattern="pulse",
                                 repeats=5, min_repeats=1, enough=enough))
    env.run(proc)
    d = proc.value
    assert asked == [1, 2] and d.repeats == 2
    assert [round(c[1], 9) for c in d.changes] == [0.5, -0.5, 0.5, -0.5]
    levels = np.cumsum([c[1] for c in d.changes])
    assert levels.min() >= 0.0
    assert math.isfinite(d.noise_sd)


def test_operating_output_ignores_the_last_noisy_sample():
    """A PI on a noisy measurement: its last output scatters by K x noise, the held operating
    output (offset + integral) does not carry the proportional kick."""
    pid = PID(PIDSettings(K=10000.0, Ti_d=0.025, offset=18000.0, u_min=0.0, u_max=92230.0), 1.0, 1 / 1440)
    pid.initialise(18000.0, 1.0)
    rng = np.random.default_rng(0)
    outs, ops = [], []
    for _ in range(500):
        outs.append(pid.step(1.0 + 0.5 * rng.standard_normal()))
        ops.append(pid.operating_output())
    assert np.std(ops) < 0.3 * np.std(outs)


def _bsm1_records():
    """The identification records of both BSM1 loops from the auto-tuned scenario's initial-state
    tests (constant influent: no data file needed), with the fit bounds the loops use."""
    import controllers.autotune as at
    from twin.run import run_scenario
    from twin.scenario import load_scenario

    caught = []
    orig = at.fit_step

    def spy(data, **kw):
        caught.append((data, kw))
        return orig(data, **kw)

    s, p = load_scenario(SCEN / "bsm1_closedloop_dry_autotuned.yaml",
                         ["warmup=[]", "influent={kind: constant}", "duration=1h", "evaluation.start=0s",
                          "evaluation.end=1h", "outputs.report=false", "outputs.timeseries=false"], seed=2)
    at.fit_step = spy
    try:
        run_scenario(s, p.parent)
    finally:
        at.fit_step = orig
    last = {}
    for data, kw in caught:  # the final record of each loop (sequential tests refit growing records)
        last[round(float(data.y0), 12), data.du] = (data, kw)
    return s, list(last.values())


def test_bsm1_identification_does_not_move_with_last_bit_perturbations():
    """The identification records of the BSM1 DO and nitrate loops, perturbed at the 1e-12
    level (what another CPU's BLAS kernel does to a sum): the same model structure, and
    parameters and designed gains within 1 %."""
    scenario, records = _bsm1_records()
    assert len(records) == 2
    rng = np.random.default_rng(7)
    for data, kw in records:
        Ts = 1 / 1440
        base = fit_step(data, **kw)
        base_t = tune("pidtune", base.model.as_fopdt(), Ts, verify_with=base.model, pm_target_deg=45)
        for _ in range(3):
            y = data.y * (1 + 1e-12 * rng.standard_normal(data.y.size))
            other = fit_step(StepData(data.t, y, data.du, data.y0, data.changes), **kw)
            assert other.chosen == base.chosen
            for name in base.model.__dataclass_fields__:
                assert getattr(other.model, name) == pytest.approx(getattr(base.model, name), rel=0.01)
            t = tune("pidtune", other.model.as_fopdt(), Ts, verify_with=other.model, pm_target_deg=45)
            assert t.K == pytest.approx(base_t.K, rel=0.01)
            assert t.Ti == pytest.approx(base_t.Ti, rel=0.01)
