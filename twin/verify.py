"""``twin verify``: the BSM1 validation cases against the published results, for a user.

The same cases and tolerances as the validation tests (``tests/validation/test_bsm1.py``),
against the published BSM1 results shipped in ``analysis/bsm1_published.yaml`` (Jeppsson's 2009
Matlab/Simulink results distributed with Alex et al. 2008):

* ``steady``: open-loop steady state, every published reactor and settler value within 0.5 %
  (dissolved oxygen 2 %);
* ``closed_steady``: steady state with both loops at their setpoints: internal recycle within 0.1 %;
* ``openloop_dry``: open loop, BSM1 protocol with the dry-weather file: EQI, AE, PE, SP and the
  flow-weighted effluent averages within 1 %, total-N time in violation within 0.5 points;
* ``closedloop_dry``: default control with the BSM1 sensor and actuator models: EQI, AE,
  effluent ammonia and total N within 5 % (the noise realisation differs from the reference).

The dynamic cases need the dry-weather influent file (``--dry-file``, or the copy inside the
``bsm2-python`` package); without it they are reported as not run. ``--set`` overrides apply to
every case, so a changed plant (``--set plant=my_plant.yaml``) is checked the same way.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

CASES = ("steady", "closed_steady", "openloop_dry", "closedloop_dry")


@dataclass
class Row:
    case: str
    quantity: str
    simulated: float | None
    published: float
    tolerance: str
    passed: bool | None  # None: not run

    @property
    def deviation(self) -> float | None:
        if self.simulated is None:
            return None
        return abs(self.simulated - self.published) / abs(self.published)


def published() -> dict:
    return yaml.safe_load((resources.files("analysis") / "bsm1_published.yaml").read_text())


def dry_weather_file() -> str | None:
    """The BSM1 dry-weather file inside bsm2-python, located without importing it."""
    spec = importlib.util.find_spec("bsm2_python")
    if spec is not None and spec.submodule_search_locations:
        q = Path(list(spec.submodule_search_locations)[0]) / "data" / "dryinfluent.csv"
        if q.exists():
            return str(q)
    return None


def _scenario(name: str, overrides: list[str]):
    from twin.scenario import load_scenario

    path = resources.files("twin").joinpath("..", "scenarios", name)
    path = Path(str(path))
    if not path.exists():
        raise FileNotFoundError(f"bundled scenario {name} not found at {path}")
    return load_scenario(path, overrides)


def _rel(case: str, name: str, got: float, want: float, tol: float) -> Row:
    return Row(case, name, float(got), float(want), f"{100 * tol:g} %", abs(got - want) <= tol * abs(want))


def run_case(case: str, overrides: list[str], dry_file: str | None, ref: dict) -> list[Row]:
    from twin.run import run_scenario

    if case == "steady":
        s, p = _scenario("bsm1_openloop_steady.yaml", overrides)
        got = run_scenario(s, p.parent).kpis["steady_state"]
        rows = []
        for place, values in ref["openloop_steady_state"].items():
            for comp, v in values.items():
                rows.append(_rel(case, f"{place}.{comp}", got[place][comp], v, 0.02 if comp == "SO" else 0.005))
        return rows
    if case == "closed_steady":
        from twin.run import compile_flowsheet, load_flowsheet
        from twin.steady import solve_steady_state

        s, p = _scenario("bsm1_openloop_steady.yaml", overrides)
        cp = compile_flowsheet(load_flowsheet(s.plant, p.parent))
        u = cp.u_default.copy()
        loops = [(cp.state_index["reactor5.SO"], cp.input_index["reactor5.kla_per_d"], 2.0, 0.0, 360.0),
                 (cp.state_index["reactor2.SNO"], cp.input_index["recycle_split.Q_internal_recycle_m3_d"], 1.0, 0.0,
                  92230.0)]
        x, u, _ = solve_steady_state(cp, cp.x_default, u, loops, 50.0, 1e-6, 1e-6, 1 / 24)
        qa = u[cp.input_index["recycle_split.Q_internal_recycle_m3_d"]]
        return [_rel(case, "Qa_m3_d", qa, ref["closedloop_steady_state_flows"]["Qa"], 0.001)]
    name, key, keys, tol = {
        "openloop_dry": ("bsm1_openloop_dry.yaml", "openloop_dynamic_dry",
                         ["EQI", "AE", "PE", "SP"] + [f"effluent_avg.{k}" for k in
                                                      ("SNH", "SNO", "TSS", "Ntot", "TKN", "CODt", "BOD5", "Q")], 0.01),
        "closedloop_dry": ("bsm1_closedloop_dry.yaml", "closedloop_dynamic_dry",
                           ["EQI", "AE", "effluent_avg.SNH", "effluent_avg.Ntot"], 0.05)}[case]
    want_all = ref[key]
    if dry_file is None:
        rows = []
        for k in keys:
            want = want_all
            for part in k.split("."):
                want = want[part]
            rows.append(Row(case, k, None, float(want), f"{100 * tol:g} %", None))
        return rows
    s, p = _scenario(name, [f"warmup.0.influent.file={dry_file}", f"influent.file={dry_file}", *overrides])
    got_all = run_scenario(s, p.parent).kpis["bsm1"]
    rows = []
    for k in keys:
        got, want = got_all, want_all
        for part in k.split("."):
            got, want = got[part], want[part]
        rows.append(_rel(case, k, got, want, tol))
    if case == "openloop_dry":
        g = got_all["violations"]["Ntot"]["pct_time"]
        w = want_all["TN_violation_pct_time"]
        rows.append(Row(case, "Ntot time in violation, %", g, w, "0.5 points", abs(g - w) <= 0.5))
    return rows


def verify(cases: list[str] | None = None, overrides: list[str] | None = None, dry_file: str | None = None) -> list[Row]:
    ref = published()
    dry = dry_file or dry_weather_file()
    out: list[Row] = []
    for case in cases or list(CASES):
        out += run_case(case, overrides or [], dry, ref)
    return out


def format_rows(rows: list[Row]) -> str:
    lines = [f"{'case':15s} {'quantity':28s} {'simulated':>12s} {'published':>12s} {'deviation':>10s} "
             f"{'tolerance':>10s}  result"]
    for r in rows:
        sim = f"{r.simulated:12.5g}" if r.simulated is not None else f"{'—':>12s}"
        dev = f"{100 * r.deviation:9.3f}%" if r.deviation is not None else f"{'—':>10s}"
        res = "PASS" if r.passed else ("not run" if r.passed is None else "FAIL")
        lines.append(f"{r.case:15s} {r.quantity:28s} {sim} {r.published:12.5g} {dev} {r.tolerance:>10s}  {res}")
    n_pass = sum(r.passed is True for r in rows)
    n_fail = sum(r.passed is False for r in rows)
    n_skip = sum(r.passed is None for r in rows)
    lines.append(f"{n_pass} passed, {n_fail} failed, {n_skip} not run"
                 + (" (the dynamic cases need the dry-weather file: pip install bsm2-python, or --dry-file)"
                    if n_skip else ""))
    return "\n".join(lines)
