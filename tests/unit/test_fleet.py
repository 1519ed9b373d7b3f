"""Fleet reliability: simulated failures against the configured distributions and the classical
age-replacement result (Barlow and Proschan 1965, *Mathematical Theory of Reliability*, ch. 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from scipy import integrate, optimize, stats

from twin.run import run_scenario
from twin.scenario import validate_scenario

SHAPE, SCALE = 2.5, 1000.0
C_PREVENTIVE, C_CORRECTIVE = 100.0, 1000.0


def _fleet_file(tmp_path, shape, scale, n_assets=200) -> str:
    data = {
        "types": {"widget": {
            "modes": {"wear": {"kind": "wearout", "weibull_shape": shape, "weibull_scale_h": scale}},
            # (almost) instantaneous work and fixed costs: the assumptions of the analytical model
            "repair": {"median_h": 0.001, "sigma": 1e-6, "replace_h": 0.001},
            "costs": {"labour_per_h": 0.0, "repair_parts": C_CORRECTIVE, "replacement": C_PREVENTIVE,
                      "downtime_per_h": 0.0},
        }},
        "assets": [{"type": "widget", "count": n_assets, "prefix": "W"}],
    }
    p = tmp_path / f"fleet_{shape}.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def _run(tmp_path, shape, scale, policy, years=4, load=1.0, seed=1, n_assets=200):
    s = {"name": "fleet", "seed": seed, "duration": f"{int(years * 365)}d",
         "fleet": {"file": _fleet_file(tmp_path, shape, scale, n_assets), "process_model": False, "load": load,
                   "step": "1h", "policies": {"widget": policy},
                   "crews": {"count": 1000, "shift_start_h": 0, "shift_end_h": 24},
                   "spares": {"default": {"stock": 100000, "lead_time": "1h"}}}}
    return run_scenario(validate_scenario(s, "fleet"), tmp_path)


def test_times_to_failure_follow_the_configured_weibull(tmp_path):
    """Run to failure at constant load: a Weibull fitted to the simulated ages at failure
    recovers shape and scale within four asymptotic standard errors of the MLE
    (var(beta_hat) = 0.608 beta^2 / n, var(ln eta_hat) = 1.109 / (beta^2 n))."""
    res = _run(tmp_path, SHAPE, SCALE, {"kind": "rtf"}, years=1)
    ages = np.array([f["age_h"] for f in _agent_failures(res)])
    n = ages.size
    assert n > 1000
    beta, _, eta = stats.weibull_min.fit(ages, floc=0.0)
    assert abs(beta - SHAPE) <= 4 * math.sqrt(0.608 * SHAPE**2 / n)
    assert abs(math.log(eta / SCALE)) <= 4 * math.sqrt(1.109 / (SHAPE**2 * n))


def test_load_accelerates_ageing(tmp_path):
    """da/dt = L^p: at twice the load (p = 1) the assets live half as long."""
    res = _run(tmp_path, SHAPE, SCALE, {"kind": "rtf"}, years=1, load=2.0)
    fails = _agent_failures(res)
    n = len(fails)
    per_asset_hours = 365 * 24
    mttf = 200 * per_asset_hours / n
    expected = SCALE / 2 * math.gamma(1 + 1 / SHAPE)
    assert abs(mttf - expected) / expected < 0.05


def _agent_failures(res):
    return [e["data"] for e in res.events.records if e["kind"] == "failure"]


def _cost_rate_analytical(T, shape, scale):
    R = lambda t: math.exp(-((t / scale) ** shape))  # noqa: E731
    cycle = integrate.quad(R, 0, T)[0]
    return (C_PREVENTIVE * R(T) + C_CORRECTIVE * (1 - R(T))) / cycle


@pytest.mark.parametrize("shape,beats", [(3.0, True), (1.0, False)])
def test_age_replacement_against_run_to_failure(tmp_path, shape, beats):
    """For a wear-out type (shape 3) replacing at the optimal age T* costs less per hour than run
    to failure; for random failures (shape 1) it cannot. Simulated cost rates agree with the
    analytical C(T) = (Cp R(T) + Cf F(T)) / int_0^T R(t) dt within 5 %."""
    scale = 1000.0
    rtf_rate = C_CORRECTIVE / (scale * math.gamma(1 + 1 / shape))
    if beats:
        T = optimize.minimize_scalar(lambda t: _cost_rate_analytical(t, shape, scale), bounds=(50, 3 * scale),
                                     method="bounded").x
    else:
        T = 0.5 * scale  # any age: with a constant hazard nothing is gained
    analytical = _cost_rate_analytical(T, shape, scale)
    hours = 3 * 365 * 24
    sim_rtf = _total_cost(_run(tmp_path, shape, scale, {"kind": "rtf"}, years=3)) / (200 * hours)
    sim_age = _total_cost(_run(tmp_path, shape, scale, {"kind": "time_based", "interval_h": float(T),
                                                          "inspection_interval": "1h"}, years=3)) / (200 * hours)
    assert sim_rtf == pytest.approx(rtf_rate, rel=0.05)
    assert sim_age == pytest.approx(analytical, rel=0.05)
    assert (sim_age < sim_rtf) == beats


def _total_cost(res):
    return res.kpis["maintenance"]["by_type"]["total"]["cost"]["total"]


def test_same_seed_same_maintenance_results(tmp_path):
    a = _run(tmp_path, SHAPE, SCALE, {"kind": "rtf"}, years=1, seed=5, n_assets=30).kpis["maintenance"]
    b = _run(tmp_path, SHAPE, SCALE, {"kind": "rtf"}, years=1, seed=5, n_assets=30).kpis["maintenance"]
    c = _run(tmp_path, SHAPE, SCALE, {"kind": "rtf"}, years=1, seed=6, n_assets=30).kpis["maintenance"]
    assert a == b and a != c


def test_predictive_policy_prevents_wear_out_failures(tmp_path):
    """The Weibull-hazard predictor replaces assets whose failure probability within the horizon
    passes the threshold: on a wear-out type (shape 3) it prevents most failures that run to
    failure suffers (same seed, common random numbers), and its alarms are scored."""
    rtf = _run(tmp_path, 3.0, 1000.0, {"kind": "rtf"}, years=1, n_assets=100).kpis["maintenance"]
    pred = _run(tmp_path, 3.0, 1000.0, {"kind": "predictive", "horizon_h": 200.0, "probability": 0.3,
                                        "inspection_interval": "1h"}, years=1, n_assets=100).kpis["maintenance"]
    assert pred["by_type"]["total"]["failures"] < 0.5 * rtf["by_type"]["total"]["failures"]
    assert pred["by_type"]["total"]["work_orders"]["preventive"] > 0
    a = pred["alarms"]
    assert a["count"] == pred["by_type"]["total"]["work_orders"]["preventive"]
    assert 0.0 <= a["precision"] <= 1.0 and a["mean_lead_time_h"] is None or a["mean_lead_time_h"] <= 720.0
    assert pred["by_type"]["total"]["useful_life_wasted_h"] > 0
