"""Sensitivity analysis: Sobol indices against the Ishigami function's published values, Morris
and the tornado against hand calculations, and the economic model of a study."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.economics import Investment, economics
from analysis.sensitivity import economic_model, morris, sobol, tornado

A, B = 7.0, 0.1  # the Ishigami function's usual constants


def ishigami(X: np.ndarray) -> np.ndarray:
    return np.sin(X[:, 0]) + A * np.sin(X[:, 1]) ** 2 + B * X[:, 2] ** 4 * np.sin(X[:, 0])


def ishigami_indices() -> tuple[list[float], list[float]]:
    """Analytic Sobol indices of the Ishigami function with x_i uniform on [-pi, pi] (Ishigami &
    Homma 1990; Saltelli et al. 2008, Global Sensitivity Analysis: The Primer, p. 179):
    V1 = B pi^4/5 + B^2 pi^8/50 + 1/2, V2 = A^2/8, V3 = 0, V13 = 8 B^2 pi^8/225; with A = 7 and
    B = 0.1: S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437)."""
    pi = math.pi
    v1 = B * pi**4 / 5 + B**2 * pi**8 / 50 + 0.5
    v2 = A**2 / 8
    v13 = 8 * B**2 * pi**8 / 225
    v = v1 + v2 + v13
    return [v1 / v, v2 / v, 0.0], [(v1 + v13) / v, v2 / v, v13 / v]


def test_ishigami_reference_values():
    s1, st = ishigami_indices()
    assert s1 == pytest.approx([0.3139, 0.4424, 0.0], abs=1e-4)
    assert st == pytest.approx([0.5576, 0.4424, 0.2437], abs=1e-4)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sobol_indices_of_the_ishigami_function(seed):
    """Any seed: the estimates fall within 0.05 of the analytic indices (4096 base samples, a
    sampling error of about 0.01-0.02), and within their own bootstrap interval plus that margin."""
    ranges = {f"x{i}": (-math.pi, math.pi) for i in (1, 2, 3)}
    r = sobol(ishigami, ranges, 4096, seed)
    s1, st = ishigami_indices()
    for i, name in enumerate(ranges):
        got = r["indices"][name]
        assert got["S1"] == pytest.approx(s1[i], abs=0.05)
        assert got["ST"] == pytest.approx(st[i], abs=0.05)
        assert got["S1_conf"] > 0 and got["ST_conf"] > 0
    assert r["evaluations"] == 4096 * (3 + 2)
    ranking = sorted(ranges, key=lambda n: -r["indices"][n]["ST"])
    assert ranking == ["x1", "x2", "x3"]


def test_sobol_is_reproducible_with_its_seed():
    ranges = {f"x{i}": (-math.pi, math.pi) for i in (1, 2, 3)}
    assert sobol(ishigami, ranges, 256, 7) == sobol(ishigami, ranges, 256, 7)


def test_morris_of_a_linear_function_is_its_slope_times_the_range():
    """y = 3 a - 2 b + 0 c: every elementary effect of an input is its coefficient times its range
    (SALib's effects are per unit of the normalised input), so mu* = |coef| (high - low) and
    sigma = 0 for any sample."""
    ranges = {"a": (0.0, 2.0), "b": (10.0, 15.0), "c": (-1.0, 1.0)}
    r = morris(lambda X: 3 * X[:, 0] - 2 * X[:, 1] + 0 * X[:, 2], ranges, 10, seed=4)
    assert r["indices"]["a"]["mu_star"] == pytest.approx(6.0, rel=1e-9)
    assert r["indices"]["b"]["mu_star"] == pytest.approx(10.0, rel=1e-9)
    assert r["indices"]["b"]["mu"] == pytest.approx(-10.0, rel=1e-9)
    assert r["indices"]["c"]["mu_star"] == pytest.approx(0.0, abs=1e-12)
    assert all(v["sigma"] == pytest.approx(0.0, abs=1e-9) for v in r["indices"].values())


def test_tornado_by_hand():
    """f = 2 x + y^2 around x = 1, y = 3: x over [0, 4] gives 9 and 17 (swing 8), y over [2, 5]
    gives 6 and 27 (swing 21): y first."""
    t = tornado(lambda v: 2 * v["x"] + v["y"] ** 2, {"x": 1.0, "y": 3.0}, {"x": (0.0, 4.0), "y": (2.0, 5.0)})
    assert t["base"] == 11.0
    assert [r["input"] for r in t["rows"]] == ["y", "x"]
    y, x = t["rows"]
    assert (y["output_at_low"], y["output_at_high"], y["swing"]) == (6.0, 27.0, 21.0)
    assert (x["output_at_low"], x["output_at_high"], x["swing"]) == (9.0, 17.0, 8.0)


def test_economic_model_by_hand():
    """Savings of 40 (labour) + 10 (parts) + 30 (downtime) + 20 (electricity) = 100 a year against
    an investment of 150, running cost 20, 10 % over 3 years: NPV = -150 + 80 (1/1.1 + 1/1.21 +
    1/1.331). The investment moves the NPV one for one; doubling the electricity price adds 20 a
    year to the saving; the offset shifts the saving."""
    parts = {"labour_cost": 40.0, "parts_cost": 10.0, "downtime_cost": 30.0, "electricity_price": 20.0, "other": 0.0}
    inv = Investment(150.0, 20.0, 0.10, 3)
    f, nominal = economic_model(parts, inv, "npv")
    annuity = 1 / 1.1 + 1 / 1.21 + 1 / 1.331
    assert f(nominal) == pytest.approx(-150 + 80 * annuity, rel=1e-12)
    assert f(nominal) == pytest.approx(economics(inv, 100.0)["npv"], rel=1e-12)
    t = tornado(f, nominal, {"investment": (100.0, 200.0), "electricity_price": (0.5, 2.0), "saving_offset": (-10, 10)})
    rows = {r["input"]: r for r in t["rows"]}
    assert rows["investment"]["output_at_low"] - rows["investment"]["output_at_high"] == pytest.approx(100.0)
    assert rows["electricity_price"]["output_at_high"] - f(nominal) == pytest.approx(20.0 * annuity)
    assert rows["saving_offset"]["swing"] == pytest.approx(20.0 * annuity)
    g, _ = economic_model(parts, None, "savings_per_year")
    assert g({**nominal, "downtime_cost": 2.0}) == pytest.approx(130.0)
    with pytest.raises(ValueError, match="needs the study's economics"):
        economic_model(parts, None, "npv")
    with pytest.raises(ValueError, match="expected low < high"):
        sobol(ishigami, {"x1": (1.0, 1.0), "x2": (0.0, 1.0)}, 16, 1)


def test_an_output_that_is_not_finite_is_named_and_the_tornado_kept():
    """A payback that never comes (savings below the running cost at the low end) cannot be
    apportioned: Morris and Sobol say why, the tornado is still given."""
    from analysis.sensitivity import analyse

    parts = {"labour_cost": 0.0, "parts_cost": 50.0, "downtime_cost": 0.0, "electricity_price": 0.0, "other": 0.0}
    f, nominal = economic_model(parts, Investment(100.0, 20.0, 0.1, 5), "payback_years")
    out = analyse(f, nominal, {"parts_cost": (0.2, 2.0), "investment": (50.0, 150.0)}, 64, 4, seed=1)
    rows = {r["input"]: r for r in out["tornado"]["rows"]}
    assert math.isinf(rows["parts_cost"]["output_at_low"]) and math.isfinite(rows["parts_cost"]["output_at_high"])
    assert "not finite" in out["errors"]["sobol"] and "not finite" in out["errors"]["morris"]
    assert "sobol" not in out
