"""Studies: arms x replications with common random numbers, paired differences with bootstrap
intervals, and the economics of the difference.

A study file names a scenario, overrides common to every run, and arms (overrides of their
own: a maintenance policy, the optimiser on or off, a tariff). Replication k of every arm runs
with the same seed (``seed0 + k``), so an arm and its baseline share every random stream that
their decisions do not change (common random numbers): failure times, sensor noise, influent,
weather. Each run writes its figures to ``DIR/runs/ARM/SEED.json`` (atomically), so a killed
study resumes without redoing finished runs. Runs go through an executor: ``local`` (a process
pool) or ``dask``; a run's figures depend only on its scenario and seed, so the executor never
changes a result.

Figures per run (``metrics``): from the maintenance KPIs (failures, planned and unplanned
downtime, maintenance cost including downtime) and, with a process model, electricity and its
cost, and hours above the effluent limits. Paired differences (baseline minus arm: positive is
a saving) get percentile bootstrap intervals of their mean (SciPy ``bootstrap``, seeded).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import Field, ValidationError, model_validator

from twin.errors import ConfigError
from twin.scenario import _Strict

YEAR_S = 365 * 86400


class ArmSpec(_Strict):
    set: dict[str, Any] = Field(default_factory=dict)
    note: str = ""


class EconomicsSpec(_Strict):
    """Inputs of the business case (no defaults posing as data)."""

    arm: str  # the arm whose savings against the baseline pay for the investment
    investment: float = Field(ge=0)
    running_cost_per_year: float = Field(ge=0)
    rate: float = Field(ge=0, lt=1)
    horizon_years: int = Field(ge=1, le=50)
    currency: str = "currency of the cost data"


class SensitivitySpec(_Strict):
    """Uncertain inputs of a study and their ranges: the plant's own figures, like the economics.

    ``inputs``: economic inputs (``investment``, ``running_cost_per_year``, ``rate``) as absolute
    low/high values, and price factors on parts of the simulated saving (``labour_cost``,
    ``parts_cost``, ``downtime_cost``, ``electricity_price``) as low/high multipliers of 1. They
    enter the economics only, so they are analysed from the replications without new runs:
    tornado, Morris and Sobol (``analysis.sensitivity``). ``simulation_interval`` adds the
    replications' interval of the yearly saving as one more input. ``simulated``: scenario keys
    (as ``--set``) with a low and a high value; they change the runs, so each is varied one at a
    time (tornado only) by new paired runs of the baseline and the arm on the study's first
    ``simulated_replications`` seeds: a small design, not a global one."""

    arm: str | None = None  # default: the economics' arm
    output: str = "npv"
    inputs: dict[str, tuple[float, float]] = Field(default_factory=dict)
    simulation_interval: bool = True
    sobol_samples: int = Field(1024, ge=16)
    morris_trajectories: int = Field(20, ge=2)
    simulated: dict[str, tuple[Any, Any]] = Field(default_factory=dict)
    simulated_replications: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _check(self):
        from analysis.sensitivity import ECONOMIC_INPUTS, OUTPUTS, SAVING_PARTS

        if self.output not in OUTPUTS:
            raise ValueError(f"output '{self.output}': expected one of {', '.join(OUTPUTS)}")
        known = (*ECONOMIC_INPUTS, *SAVING_PARTS)
        for name, (low, high) in self.inputs.items():
            if name not in known:
                raise ValueError(f"inputs.{name}: not an input of the economics; expected one of {', '.join(known)}")
            if not low < high:
                raise ValueError(f"inputs.{name}: expected [low, high] with low < high, got [{low}, {high}]")
        if self.sobol_samples & (self.sobol_samples - 1):
            raise ValueError(f"sobol_samples: expected a power of two (Sobol sequence), got {self.sobol_samples}")
        return self


class StudySpec(_Strict):
    name: str
    scenario: str  # relative to the study file
    overrides: dict[str, Any] = Field(default_factory=dict)
    arms: dict[str, ArmSpec] = Field(min_length=2)
    baseline: str
    replications: int = Field(10, ge=2)
    seed0: int = 1
    fleet_only: bool = False
    confidence: float = Field(0.95, gt=0, lt=1)
    economics: EconomicsSpec | None = None
    sensitivity: SensitivitySpec | None = None

    @model_validator(mode="after")
    def _refs(self):
        if self.baseline not in self.arms:
            raise ValueError(f"baseline '{self.baseline}' is not an arm ({', '.join(self.arms)})")
        if self.economics is not None and self.economics.arm not in self.arms:
            raise ValueError(f"economics.arm '{self.economics.arm}' is not an arm ({', '.join(self.arms)})")
        sens = self.sensitivity
        if sens is not None:
            arm = sens.arm or (self.economics.arm if self.economics else None)
            if arm is None:
                raise ValueError("sensitivity.arm: needed when the study has no economics (the arm whose saving "
                                 "is analysed)")
            if arm not in self.arms or arm == self.baseline:
                raise ValueError(f"sensitivity.arm '{arm}' is not an arm other than the baseline")
            if self.economics is None:
                if sens.output != "savings_per_year":
                    raise ValueError(f"sensitivity.output '{sens.output}' needs the study's economics "
                                     "(or output: savings_per_year)")
                bad = [n for n in sens.inputs if n in ("investment", "running_cost_per_year", "rate")]
                if bad:
                    raise ValueError(f"sensitivity.inputs.{bad[0]}: needs the study's economics")
        return self


def load_study(path: str | Path) -> tuple[StudySpec, Path]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such study file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        from twin.scenario import _format_error

        raise ConfigError(f"{path}: " + "; ".join(_format_error(e, data, root=StudySpec) for e in exc.errors()[:5])) from None
    check_study(spec, path)
    return spec, path


def check_study(spec: StudySpec, path: Path) -> None:
    """Refuse, before anything runs, a study whose scenario is missing or whose overrides (common,
    then each arm's) name an unknown key or make an invalid scenario; the message names the study
    file and the field (``overrides`` or ``arms.ARM.set``)."""
    from twin.scenario import apply_override, load_scenario, validate_scenario

    try:
        s, _ = load_scenario(path.parent / spec.scenario)
    except ConfigError as exc:
        raise ConfigError(f"{path}: scenario: {exc}") from None
    base = s.to_dict()
    for field, sets in [("overrides", spec.overrides)] + [(f"arms.{a}.set", {**spec.overrides, **arm.set})
                                                          for a, arm in spec.arms.items()]:
        data = json.loads(json.dumps(base))
        try:
            for key, value in sets.items():
                apply_override(data, key, value, f"{path}: {field}")
            validate_scenario(data, f"{path}: {field}")
        except ConfigError as exc:
            text = str(exc)
            if not text.startswith(f"{path}: {field}"):
                text = f"{path}: {field}: {text}"
            raise ConfigError(text) from None


def run_plan(spec: StudySpec, replications: int | None = None) -> list[tuple[str, int]]:
    n = replications or spec.replications
    return [(arm, spec.seed0 + k) for k in range(n) for arm in spec.arms]


def _scenario_for(spec: StudySpec, base: Path, arm: str, seed: int, extra: dict[str, Any] | None = None):
    from twin.scenario import apply_override, load_scenario, validate_scenario

    s, path = load_scenario(base / spec.scenario)
    data = s.to_dict()
    for key, value in {**spec.overrides, **spec.arms[arm].set}.items():
        apply_override(data, key, value, f"study arm '{arm}'")
    for key, value in (extra or {}).items():
        apply_override(data, key, value, f"study sensitivity input '{key}'")
    data["seed"] = int(seed)
    if spec.fleet_only:
        data.setdefault("fleet", {})["process_model"] = False
    where = f"study arm '{arm}'"
    if extra:
        where = f"study sensitivity input {', '.join(f'{k!r} = {v}' for k, v in extra.items())} ({where})"
    return validate_scenario(data, where), Path(path).parent


def figures(kpis: dict, duration_s: int) -> dict[str, float]:
    """The figures a study compares, from one run's KPIs (per year where it is a rate)."""
    years = duration_s / YEAR_S
    out: dict[str, float] = {}
    m = kpis.get("maintenance", {}).get("by_type", {}).get("total")
    if m:
        cost = m["cost"]
        out.update({"failures_per_year": m["failures"] / years,
                    "unplanned_downtime_h_per_year": m["downtime_h"]["unplanned"] / years,
                    "planned_downtime_h_per_year": m["downtime_h"]["planned"] / years,
                    "downtime_h_per_year": (m["downtime_h"]["unplanned"] + m["downtime_h"]["planned"]) / years,
                    "maintenance_cost_per_year": cost["total"] / years,
                    "maintenance_labour_cost_per_year": cost["labour"] / years,
                    "maintenance_parts_cost_per_year": cost["parts"] / years,
                    "downtime_cost_per_year": cost["downtime"] / years})
    e = kpis.get("energy")
    if e:
        el = e.get("electricity") or {"kWh": e["total_kWh"], "cost": e["total_cost"]}
        out.update({"electricity_kWh_per_year": el["kWh"] / years, "electricity_cost_per_year": el["cost"] / years})
    b = kpis.get("bsm1")
    if b:
        # the share of the evaluation window above each limit, as hours in a year (summed over limits)
        out["hours_above_limits_per_year"] = sum(v["pct_time"] for v in b["violations"].values()) / 100 * YEAR_S / 3600
        out["EQI"] = b["EQI"]
    out["total_cost_per_year"] = out.get("maintenance_cost_per_year", 0.0) + out.get("electricity_cost_per_year", 0.0)
    return out


def run_one(args: tuple) -> dict[str, float]:
    """One run of a study (in a worker): build the arm's scenario for the seed, run, figures."""
    spec_dict, base, arm, seed, *rest = args
    extra = rest[0] if rest else None
    from twin.run import run_scenario

    spec = StudySpec.model_validate(spec_dict)
    scenario, sbase = _scenario_for(spec, Path(base), arm, seed, extra)
    res = run_scenario(scenario, sbase)
    if res.failed is not None:
        raise RuntimeError(f"arm '{arm}', seed {seed}: {res.failed}")
    return figures(res.kpis, scenario.duration_s)


def _write_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _sensitivity_point(key: str, value: Any) -> str:
    """The folder of the runs with one simulated input at one value (``runs/sensitivity/...``)."""
    return f"sensitivity/{_safe(key)}={_safe(json.dumps(value, sort_keys=True))}"


def run_jobs(jobs: list[tuple[str, str, int, dict | None]], spec: StudySpec, base: Path, out: Path,
             executor: str = "local", workers: int | None = None, scheduler: str | None = None,
             progress=None) -> dict[tuple[str, str, int], dict]:
    """Run every job ``(folder, arm, seed, extra overrides)`` whose figures are not already in
    ``out/runs/[folder/]ARM/SEED.json``, through the executor; return the figures of all jobs."""
    done: dict[tuple[str, str, int], dict] = {}
    todo = []
    for job in jobs:
        f = out / "runs" / job[0] / job[1] / f"{job[2]}.json"
        if f.exists():
            done[job[:3]] = json.loads(f.read_text())
        else:
            todo.append(job)
    args = {job[:3]: (spec.model_dump(), str(base), job[1], job[2], job[3]) for job in todo}

    def store(key, fig):
        _write_atomic(out / "runs" / key[0] / key[1] / f"{key[2]}.json", fig)
        done[key] = fig
        if progress is not None:
            progress(len(done), len(jobs))

    if executor == "dask":
        try:
            from distributed import Client, LocalCluster, as_completed
        except ImportError:
            raise ConfigError("--executor dask needs dask.distributed: pip install -e '.[dask]'") from None
        if not args:
            return done
        cluster = None if scheduler else LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                                      processes=True, dashboard_address=":0")
        client = Client(scheduler or cluster)
        try:
            futs = {client.submit(run_one, a, pure=False): key for key, a in args.items()}
            for fut in as_completed(futs):
                store(futs[fut], fut.result())
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif executor == "local" and (workers or os.cpu_count() or 1) > 1 and len(args) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count(), mp_context=ctx) as pool:
            futs = {pool.submit(run_one, a): key for key, a in args.items()}
            for fut in as_completed(futs):
                store(futs[fut], fut.result())
    else:
        for key, a in args.items():
            store(key, run_one(a))
    return done


def execute(spec: StudySpec, base: Path, out: Path, replications: int | None = None, executor: str = "local",
            workers: int | None = None, scheduler: str | None = None, progress=None) -> dict[tuple[str, int], dict]:
    """Run every (arm, seed) not already in ``out/runs``; return all figures."""
    for arm in spec.arms:  # every arm's scenario is checked before anything runs
        _scenario_for(spec, base, arm, spec.seed0)
    jobs = [("", arm, seed, None) for arm, seed in run_plan(spec, replications)]
    done = run_jobs(jobs, spec, base, out, executor, workers, scheduler, progress)
    return {(arm, seed): fig for (_, arm, seed), fig in done.items()}


def bootstrap_mean(d: np.ndarray, confidence: float, seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    if d.size < 2 or np.all(d == d[0]):
        return float(d.mean()), float(d.mean())
    r = bootstrap((d,), np.mean, confidence_level=confidence, method="percentile", n_resamples=4000,
                  random_state=np.random.default_rng(seed))
    return float(r.confidence_interval.low), float(r.confidence_interval.high)


def summarise(spec: StudySpec, results: dict[tuple[str, int], dict], replications: int | None = None) -> dict:
    """Per-arm means and intervals, paired differences against the baseline with bootstrap
    intervals, how the intervals narrow with the number of replications, and the economics."""
    from analysis.economics import Investment, economics

    n = replications or spec.replications
    seeds = [spec.seed0 + k for k in range(n)]
    # figures every run has (a study resumed from runs of an older version may lack newer figures)
    metrics = sorted(set.intersection(*(set(results[a, s]) for a in spec.arms for s in seeds)))
    arms: dict[str, Any] = {}
    diffs: dict[str, Any] = {}
    for arm in spec.arms:
        vals = {m: np.array([results[arm, s][m] for s in seeds]) for m in metrics}
        arms[arm] = {m: {"mean": float(v.mean()), "sd": float(v.std(ddof=1)),
                         "ci": bootstrap_mean(v, spec.confidence, 1)} for m, v in vals.items()}
        if arm == spec.baseline:
            continue
        d = {m: np.array([results[spec.baseline, s][m] - results[arm, s][m] for s in seeds]) for m in metrics}
        diffs[arm] = {m: {"mean": float(v.mean()), "ci": bootstrap_mean(v, spec.confidence, 2),
                          "per_replication": [float(x) for x in v]} for m, v in d.items()}
        steps = sorted({k for k in (2, 3, 5, 10, 20, 50, 100, n) if 2 <= k <= n})
        diffs[arm]["_interval_width_by_replications"] = {
            m: {str(k): float(np.subtract(*bootstrap_mean(v[:k], spec.confidence, 3)[::-1])) for k in steps}
            for m, v in d.items() if m in ("total_cost_per_year", "unplanned_downtime_h_per_year")}
    out = {"name": spec.name, "baseline": spec.baseline, "replications": n, "seeds": seeds,
           "confidence": spec.confidence, "arms": arms, "savings_against_baseline": diffs,
           "sign": "savings = baseline minus arm (positive: the arm saves)"}
    ec = spec.economics
    if ec is not None:
        inv = Investment(ec.investment, ec.running_cost_per_year, ec.rate, ec.horizon_years)
        per = np.array(diffs[ec.arm]["total_cost_per_year"]["per_replication"])
        point = economics(inv, float(per.mean()))
        rng = np.random.default_rng(4)
        boot = [economics(inv, float(rng.choice(per, per.size).mean())) for _ in range(2000)]
        q = [(1 - spec.confidence) / 2 * 100, (1 + spec.confidence) / 2 * 100]
        ci = {}
        for k in point:
            v = np.array([b[k] for b in boot], dtype=float)
            v = v[np.isfinite(v)]
            ci[k] = [float(x) for x in np.percentile(v, q)] if v.size else [math.nan, math.nan]
        out["economics"] = {"inputs": ec.model_dump(), "savings_per_year": float(per.mean()),
                            "point": point, "ci": ci,
                            "note": "savings: total cost per year (maintenance incl. downtime, and electricity with a "
                                    "process model) of the baseline minus the arm, from the paired replications"}
    return out


def _saving_parts(diff: dict[str, float]) -> dict[str, float]:
    """A yearly saving (metric -> mean of baseline minus arm) split into the parts a price factor scales."""
    from analysis.sensitivity import SAVING_PARTS

    parts = {k: float(diff.get(fig, 0.0)) for k, fig in SAVING_PARTS.items()}
    parts["other"] = float(diff["total_cost_per_year"]) - sum(parts.values())
    return parts


def _simulated_points(spec: StudySpec) -> list[tuple[str, Any]]:
    return [(key, value) for key, pair in spec.sensitivity.simulated.items() for value in pair]


def sensitivity(spec: StudySpec, base: Path, out: Path, results: dict[tuple[str, int], dict], summary: dict,
                executor: str = "local", workers: int | None = None, scheduler: str | None = None,
                progress=None) -> dict:
    """Which uncertain inputs drive the study's output (``sensitivity.output``: NPV by default).

    Economic inputs and price factors: tornado, Morris and Sobol of the economic model over the
    paired replications' mean saving (no new runs; see ``analysis.sensitivity``). Simulated inputs:
    one at a time at their low and high values, each a new pair of runs (baseline and arm) per
    seed on the study's first seeds, through the executor; the output at the nominal economic
    inputs is compared with the same seeds' output of the study's own runs."""
    from analysis.economics import Investment
    from analysis.sensitivity import analyse, economic_model

    sens = spec.sensitivity
    arm = sens.arm or spec.economics.arm
    ec = spec.economics
    inv = Investment(ec.investment, ec.running_cost_per_year, ec.rate, ec.horizon_years) if ec else None
    d = summary["savings_against_baseline"][arm]
    f, nominal = economic_model(_saving_parts({m: v["mean"] for m, v in d.items() if not m.startswith("_")}),
                                inv, sens.output)
    ranges = {k: (float(lo), float(hi)) for k, (lo, hi) in sens.inputs.items()}
    if sens.simulation_interval:
        lo, hi = d["total_cost_per_year"]["ci"]
        mean = d["total_cost_per_year"]["mean"]
        if hi > lo:
            ranges["saving_offset"] = (lo - mean, hi - mean)
    result: dict[str, Any] = {
        "arm": arm, "output": sens.output, "nominal": nominal, "ranges": ranges,
        "note": "economic inputs and price factors: analysed over the replications' mean saving without new runs "
                "(decisions held as simulated); saving_offset: the replications' interval of the yearly saving"}
    if ranges:
        try:
            result.update(analyse(f, nominal, ranges, sens.sobol_samples, sens.morris_trajectories, seed=spec.seed0,
                                  confidence=spec.confidence))
        except ValueError as exc:
            result["error"] = str(exc)
    if sens.simulated:
        seeds = summary["seeds"][:sens.simulated_replications]
        jobs = [(_sensitivity_point(key, value), a, seed, {key: value})
                for key, value in _simulated_points(spec) for seed in seeds for a in (spec.baseline, arm)]
        done = run_jobs(jobs, spec, base, out, executor, workers, scheduler, progress)

        def output_of(fig: dict[tuple[str, int], dict]) -> float:
            diff = {m: float(np.mean([fig[spec.baseline, s][m] - fig[arm, s][m] for s in seeds]))
                    for m in fig[spec.baseline, seeds[0]]}
            g, nom = economic_model(_saving_parts(diff), inv, sens.output)
            return float(g(nom))

        rows = []
        for key, (low, high) in sens.simulated.items():
            at = {}
            for value in (low, high):
                folder = _sensitivity_point(key, value)
                at[json.dumps(value)] = output_of({(a, s): done[folder, a, s] for a in (spec.baseline, arm) for s in seeds})
            o_lo, o_hi = at[json.dumps(low)], at[json.dumps(high)]
            rows.append({"input": key, "low": low, "high": high, "output_at_low": o_lo, "output_at_high": o_hi,
                         "swing": abs(o_hi - o_lo)})
        rows.sort(key=lambda r: (-r["swing"], r["input"]))
        result["simulated"] = {
            "seeds": seeds, "base": output_of({(a, s): results[a, s] for a in (spec.baseline, arm) for s in seeds}),
            "rows": rows, "runs": len(jobs),
            "note": f"one at a time, {len(seeds)} paired replication(s) per value (a small design: new runs); "
                    "base: the study's own runs on the same seeds"}
    return result


def claims_table(summary: dict) -> list[dict]:
    """The specification's claims beside the simulated figures (``analysis/claims.yaml``)."""
    from importlib import resources

    claims = yaml.safe_load((resources.files("analysis") / "claims.yaml").read_text()).get("economics", {})
    rows = []
    ec = summary.get("economics")
    diffs = summary["savings_against_baseline"]
    # the economics' arm, else the arm that saves the most
    arm = ec["inputs"]["arm"] if ec else max(diffs, key=lambda a: diffs[a]["total_cost_per_year"]["mean"])
    d = diffs[arm]
    if "annual_savings_eur" in claims:
        sim = ec["savings_per_year"] if ec else d["total_cost_per_year"]["mean"]
        rows.append({"figure": "savings per year", "claimed": claims["annual_savings_eur"], "simulated": sim,
                     "interval": d["total_cost_per_year"]["ci"]})
    if "downtime_avoided_h_per_year" in claims and "downtime_h_per_year" in d:
        rows.append({"figure": "downtime avoided, h per year", "claimed": claims["downtime_avoided_h_per_year"],
                     "simulated": d["downtime_h_per_year"]["mean"], "interval": d["downtime_h_per_year"]["ci"]})
    if ec:
        rows.append({"figure": "ROI %", "claimed": claims.get("roi_pct"), "simulated": ec["point"]["roi_pct"],
                     "interval": ec["ci"]["roi_pct"]})
        rows.append({"figure": "payback, months", "claimed": claims.get("payback_months"),
                     "simulated": ec["point"]["payback_months"], "interval": ec["ci"]["payback_months"]})
        rows.append({"figure": f"NPV over {ec['inputs']['horizon_years']} years at {100 * ec['inputs']['rate']:g} %",
                     "claimed": None, "simulated": ec["point"]["npv"], "interval": ec["ci"]["npv"]})
    return rows


def run_study(path: str | Path, out: str | Path, replications: int | None = None, executor: str = "local",
              workers: int | None = None, scheduler: str | None = None, fleet_only: bool = False,
              progress=None) -> dict:
    spec, p = load_study(path)
    if fleet_only:
        spec = spec.model_copy(update={"fleet_only": True})
    if replications is not None and replications < 2:
        raise ConfigError("--replications: at least 2 are needed for an interval")
    out = Path(out)
    if spec.sensitivity is not None:  # every scenario of the sensitivity runs is checked before anything runs
        arm = spec.sensitivity.arm or spec.economics.arm
        for key, value in _simulated_points(spec):
            for a in (spec.baseline, arm):
                _scenario_for(spec, p.parent, a, spec.seed0, {key: value})
    results = execute(spec, p.parent, out, replications, executor, workers, scheduler, progress)
    summary = summarise(spec, results, replications)
    summary["claims"] = claims_table(summary)
    if spec.sensitivity is not None:
        summary["sensitivity"] = sensitivity(spec, p.parent, out, results, summary, executor, workers, scheduler,
                                             progress)
    _write_atomic(out / "study.json", summary)
    from analysis.study_report import write_study_report

    write_study_report(summary, out / "report.html")
    return summary
