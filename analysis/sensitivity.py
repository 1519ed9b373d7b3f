"""Sensitivity of a study's result to its uncertain inputs: tornado, Morris screening, Sobol indices.

Three views of one model ``f(inputs) -> output`` over inputs with a low and a high value each:

- **Tornado** (one at a time): every input at its low and at its high value while the others stay
  at their nominal values; inputs sorted by the swing ``|f(high) - f(low)|``. Local: it misses
  interactions, which is why the two global methods come with it.
- **Morris** elementary effects (Morris 1991; Campolongo et al. 2007, ``mu_star``): a screening
  that ranks inputs with few model evaluations, ``r (k + 1)`` for ``k`` inputs.
- **Sobol** first-order and total indices (Sobol 2001; Saltelli et al. 2010 estimators), with
  bootstrap confidence intervals: the share of the output's variance each input explains alone
  (``S1``) and with its interactions (``ST``). Inputs are uniform between low and high.

The sampling and the estimators are SALib's (Herman & Usher 2017; Iwanaga et al. 2022); this
module adds the tornado and the economic model of a study. Every sampler is seeded, so an
analysis is the same on every machine and run.

The economic model of a study (:func:`economic_model`) needs no new simulation: the paired
replications give the yearly saving split into its parts (maintenance labour, parts, downtime
cost, electricity cost), and an input that only prices a quantity scales that part of the saving
(a factor on the electricity price scales the electricity cost saved; a factor on the cost of an
hour of downtime scales the downtime cost saved). Simplification, stated where it is used: the
decisions are held as simulated; an arm whose decisions depend on the price (the energy
optimiser) would decide differently at another price, so for it the factor gives the first-order
effect only. Inputs that change the simulation itself (crews, spares, a tariff the optimiser
plans against, load) are varied one at a time by new runs (``twin.study``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from analysis.economics import Investment, economics

# the parts of a yearly saving that a price factor scales, and the per-run figure each comes from
SAVING_PARTS = {"labour_cost": "maintenance_labour_cost_per_year", "parts_cost": "maintenance_parts_cost_per_year",
                "downtime_cost": "downtime_cost_per_year", "electricity_price": "electricity_cost_per_year"}
ECONOMIC_INPUTS = ("investment", "running_cost_per_year", "rate")
OUTPUTS = ("npv", "irr", "roi_pct", "payback_years", "net_savings_per_year", "savings_per_year")


def tornado(f: Callable[[dict[str, float]], float], nominal: Mapping[str, float],
            ranges: Mapping[str, Sequence[float]]) -> dict:
    """One-at-a-time low/high of every input in ``ranges`` around ``nominal``; rows sorted by swing
    (largest first). ``f`` takes a dict of every input's value."""
    base = float(f(dict(nominal)))
    rows = []
    for name, (low, high) in ranges.items():
        out_low = float(f({**nominal, name: low}))
        out_high = float(f({**nominal, name: high}))
        rows.append({"input": name, "low": float(low), "high": float(high), "nominal": float(nominal[name]),
                     "output_at_low": out_low, "output_at_high": out_high, "swing": abs(out_high - out_low)})
    rows.sort(key=lambda r: (-r["swing"], r["input"]))
    return {"base": base, "rows": rows}


def _problem(ranges: Mapping[str, Sequence[float]]) -> dict:
    names = list(ranges)
    bounds = [[float(ranges[n][0]), float(ranges[n][1])] for n in names]
    for n, (lo, hi) in zip(names, bounds):
        if not lo < hi:
            raise ValueError(f"sensitivity input '{n}': expected low < high, got [{lo}, {hi}]")
    return {"num_vars": len(names), "names": names, "bounds": bounds}


def _finite(Y: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"the output is not finite for {int(np.sum(~np.isfinite(Y)))} of {Y.size} samples (for "
                         "example a payback that never comes or an IRR that does not exist): choose another output "
                         "or narrower ranges")
    return Y


def _vectorised(f: Callable[[dict[str, float]], float], names: list[str], fixed: Mapping[str, float]):
    def g(X: np.ndarray) -> np.ndarray:
        return np.array([f({**fixed, **dict(zip(names, row))}) for row in X], dtype=float)
    return g


def sobol(f_vec: Callable[[np.ndarray], np.ndarray], ranges: Mapping[str, Sequence[float]], n: int,
          seed: int, confidence: float = 0.95) -> dict:
    """First-order and total Sobol indices with their bootstrap half-widths. ``f_vec`` maps a
    matrix of samples (one row per sample, columns in the order of ``ranges``) to outputs;
    ``n`` base samples (a power of two) make ``n (k + 2)`` evaluations."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    problem = _problem(ranges)
    X = sample.sample(problem, n, calc_second_order=False, seed=seed)
    Y = _finite(np.asarray(f_vec(X), dtype=float))
    if np.ptp(Y) == 0:
        raise ValueError("the output does not vary over the inputs' ranges: no variance to apportion")
    r = analyze.analyze(problem, Y, calc_second_order=False, conf_level=confidence, seed=seed)
    return {"method": "Sobol (Saltelli sampling, Jansen/Saltelli estimators, SALib)", "base_samples": n,
            "evaluations": int(Y.size),
            "indices": {name: {"S1": float(r["S1"][i]), "S1_conf": float(r["S1_conf"][i]),
                               "ST": float(r["ST"][i]), "ST_conf": float(r["ST_conf"][i])}
                        for i, name in enumerate(problem["names"])}}


def morris(f_vec: Callable[[np.ndarray], np.ndarray], ranges: Mapping[str, Sequence[float]], trajectories: int,
           seed: int, levels: int = 4, confidence: float = 0.95) -> dict:
    """Morris elementary effects: ``mu_star`` (mean absolute effect, in output units per full
    range of the input), ``sigma`` (spread: non-linearity or interactions)."""
    from SALib.analyze import morris as analyze
    from SALib.sample import morris as sample

    problem = _problem(ranges)
    X = sample.sample(problem, trajectories, num_levels=levels, seed=seed)
    Y = _finite(np.asarray(f_vec(X), dtype=float))
    r = analyze.analyze(problem, X, Y, num_levels=levels, conf_level=confidence, seed=seed)
    return {"method": "Morris elementary effects (SALib)", "trajectories": trajectories, "levels": levels,
            "evaluations": int(Y.size),
            "indices": {name: {"mu_star": float(r["mu_star"][i]), "mu_star_conf": float(r["mu_star_conf"][i]),
                               "mu": float(r["mu"][i]), "sigma": float(r["sigma"][i])}
                        for i, name in enumerate(problem["names"])}}


def economic_model(parts: Mapping[str, float], inv: Investment | None, output: str) -> tuple[
        Callable[[dict[str, float]], float], dict[str, float]]:
    """The study's output as a function of the economic inputs and the price factors.

    ``parts``: the mean yearly saving split as in :data:`SAVING_PARTS` (currency per year; they
    add up to the total cost saved per year) plus ``"other"`` for any remainder. Inputs of the
    returned function: ``investment``, ``running_cost_per_year``, ``rate`` (nominal: the study's
    economics), the factors in :data:`SAVING_PARTS` (nominal 1) and ``saving_offset`` (nominal
    0: a shift of the yearly saving, for the replications' interval). Returns the function and
    the nominal inputs."""
    if output not in OUTPUTS:
        raise ValueError(f"sensitivity output '{output}': expected one of {', '.join(OUTPUTS)}")
    if inv is None and output not in ("savings_per_year",):
        raise ValueError(f"sensitivity output '{output}' needs the study's economics (investment, rate, horizon)")
    nominal: dict[str, float] = {k: 1.0 for k in SAVING_PARTS}
    nominal["saving_offset"] = 0.0
    if inv is not None:
        nominal.update(investment=inv.investment, running_cost_per_year=inv.running_cost_per_year, rate=inv.rate)

    def f(x: dict[str, float]) -> float:
        saving = parts.get("other", 0.0) + x["saving_offset"] + sum(x[k] * parts.get(k, 0.0) for k in SAVING_PARTS)
        if output == "savings_per_year":
            return saving
        e = economics(Investment(x["investment"], x["running_cost_per_year"], x["rate"], inv.horizon_years), saving)
        return e[output]

    return f, nominal


def analyse(f: Callable[[dict[str, float]], float], nominal: Mapping[str, float],
            ranges: Mapping[str, Sequence[float]], sobol_samples: int, morris_trajectories: int, seed: int,
            confidence: float = 0.95) -> dict:
    """Tornado, Morris and Sobol of ``f`` over ``ranges`` (other inputs at ``nominal``)."""
    names = list(ranges)
    g = _vectorised(f, names, nominal)
    out: dict = {"tornado": tornado(f, nominal, ranges)}
    if len(names) >= 2:  # a global method needs two inputs; one that cannot run says why in "errors"
        for name, run in (("morris", lambda: morris(g, ranges, morris_trajectories, seed, confidence=confidence)),
                          ("sobol", lambda: sobol(g, ranges, sobol_samples, seed, confidence=confidence))):
            try:
                out[name] = run()
            except ValueError as exc:
                out.setdefault("errors", {})[name] = str(exc)
    return out
