"""``twin demo``: the integrated demonstration on the reference plant, every figure simulated.

1. **The twin and the energy optimiser** (reference plant: eight loops, air header, equipment,
   weather): the plant is built and advanced, forked to try two DO setpoints, then the optimiser
   plans the next hours on forks (NSGA-II, a small population so that it runs in seconds) and
   the plan is applied; the same hours under the default control come from an unchanged fork
   made at the decision time.
2. **Maintenance policies** (the 124-asset reference fleet, fleet only): run-to-failure against
   condition-based maintenance and, in ``--complete``, predictive maintenance with the LSTM
   model shipped with the package, paired on common random numbers (a study).
3. **Economics**: with ``--investment`` and ``--running-cost`` (the plant's own figures: the
   demo has none of its own) NPV, IRR, payback and ROI of the best policy's savings, with
   intervals from the replications; beside them, labelled "claimed", the specification's
   figures from ``analysis/claims.yaml``.

The two agents together: the demonstration's plant carries the 124-asset fleet and its
maintenance agent, so the optimiser's forks hold the machines' state; in ``--complete`` two of
the three aeration blowers fail on a fork at the decision time and the optimiser decides there
and on an unchanged fork with the same smaller search, which shows its plan and predictions for
the machines that are actually running (the outage stays on the fork). What it does not show
yet: planned maintenance placed in cheap, low-load hours (planned work waits for the crews'
shift and the scenario's ``planned_hours``, not for the tariff or the forecast load).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCEN = ROOT / "scenarios"

LEVELS = {
    "quick": {"horizon": "6h", "lookahead": "3h", "block": "3h", "population": 8, "generations": 2, "fleet_days": 730,
              "replications": 2, "predictive": False, "outage": None},
    "complete": {"horizon": "12h", "lookahead": "6h", "block": "4h", "population": 16, "generations": 4, "fleet_days": 548,
                 "replications": 3, "predictive": True,
                 # the blower-outage comparison: two decisions with a smaller search (same blocks)
                 "outage": {"horizon": "8h", "population": 8, "generations": 2}},
}


def _optimiser_part(level: dict, log) -> dict:
    from twin import Twin
    from twin.objectives import WindowMeans

    opt = {"every": "1d", "horizon": level["horizon"], "lookahead": level["lookahead"], "forecast": "perfect",
           "algorithm": "nsga2",
           "population": level["population"], "generations": level["generations"], "elite": 2,
           "variables": [{"target": f"controllers.do_reactor{z}.setpoint", "bounds": [0.5, 3.0],
                          "block": level["block"]} for z in (3, 4, 5)]}
    # the reference plant with its 124-asset fleet and maintenance agent: the optimiser's forks
    # carry the machines' state, so a plan is made for the machines that are actually running
    fleet = yaml.safe_load((SCEN / "reference_10y.yaml").read_text())["fleet"]
    fleet["file"] = str(SCEN / fleet["file"])
    fleet["planned_start"] = "cheapest"  # planned work in the cheapest, lowest-load allowed hours
    tw = Twin.from_scenario(SCEN / "reference_24h.yaml", overrides={"optimiser": opt, "fleet": fleet})
    tw.advance("6h")
    look = WindowMeans(("power.aeration_kW", "effluent.SNH_g_m3"))
    whatif = {}
    for do in (1.5, 2.5):
        f = tw.fork()
        for zone in (3, 4, 5):
            f.set(f"controllers.do_reactor{zone}.setpoint", do, reason="demo: what-if")
        f.advance("2h")
        whatif[do] = look(f, tw.now, f.now)
        log(f"  fork with DO {do} g/m3 for 2 h: aeration {whatif[do]['power.aeration_kW']:.1f} kW, "
            f"effluent NH4-N {whatif[do]['effluent.SNH_g_m3']:.2f} g/m3")
    planned = _planned_part(tw, log)
    default = tw.fork()
    outage = _outage_part(tw, level["outage"], log) if level["outage"] else None
    t0 = time.perf_counter()
    decision = tw.optimiser.decide(tw)
    wall = time.perf_counter() - t0
    obj = tw.optimiser.objective(tw)
    start = tw.now
    from twin.durations import parse_duration

    h = parse_duration(level["horizon"])
    for x in (tw, default):
        x.advance_to(start + h + 1)
    real, base = obj(tw, start, start + h), obj(default, start, start + h)
    log(f"  optimiser plan for {level['horizon']} ({decision['evaluations']} candidates on forks, {wall:.1f} s): "
        f"electricity {real['electricity_kWh']:,.0f} kWh / {real['electricity_cost']:,.1f} against "
        f"{base['electricity_kWh']:,.0f} kWh / {base['electricity_cost']:,.1f} with the default control "
        f"({100 * (real['electricity_cost'] / base['electricity_cost'] - 1):+.1f} %); EQI "
        f"{real['EQI_kg_d']:,.0f} against {base['EQI_kg_d']:,.0f} kg PU/d; hours above limits "
        f"{real['violation_h']:.2f} against {base['violation_h']:.2f}")
    return {"what_if": {str(k): v for k, v in whatif.items()}, "plan": decision["schedule"],
            "optimised": real, "default_control": base, "predicted": decision["predicted"],
            # what the plan was held to: its window and the lookahead after it, against the default control
            "scored": decision.get("scored"), "wall_s": wall,
            "with_blowers_out": outage, "planned_starts": planned}


def _mean_do(schedule: list[dict]) -> float:
    return sum(c["value"] for c in schedule) / len(schedule)


def _planned_part(tw, log) -> list[dict]:
    """Where the maintenance agent would place planned work ordered now (``planned_start:
    cheapest``): for one machine of three types, the first allowed start (the crews' shift and
    the planned hours) against the start of the next 24 h with the least forecast price x
    inflow over the work's hours (the inflow the agent logged a day earlier), read on the twin
    without changing it."""
    agent = tw.agent
    fleet = agent.fleet
    now = tw.now
    out = []
    for type_name in ("centrifugal_pump", "blower", "heat_exchanger"):
        i = next((k for k, a in enumerate(fleet.assets) if a.type == type_name), None)
        if i is None:
            continue
        hours = fleet.types[type_name].replace_h
        starts = agent.allowed_starts(now)
        if not starts:
            continue
        first, best = starts[0], agent.cheapest_start(now, hours)
        w_first, w_best = agent.start_weight(first, hours), agent.start_weight(best, hours)
        row = {"asset": fleet.assets[i].id, "type": type_name, "work_h": hours,
               "first_allowed_h_of_day": (first % 86400) / 3600, "cheapest_h_of_day": (best % 86400) / 3600,
               "weight_first": w_first, "weight_cheapest": w_best}
        out.append(row)
        log(f"  planned work on {row['asset']} ({type_name}, {hours:g} h) ordered at {(now % 86400) / 3600:04.1f} h: "
            f"first allowed start {row['first_allowed_h_of_day']:04.1f} h, cheapest {row['cheapest_h_of_day']:04.1f} h "
            f"(forecast price x inflow {100 * (w_best / w_first - 1):+.1f} %)")
    return out


def _outage_part(tw, search: dict, log) -> dict:
    """The optimiser planning around machines that are out. Two forks of the twin at the decision
    time: on one, two of the three aeration blowers fail (the maintenance agent opens corrective
    work orders and repairs them as crews and parts allow); one minute later (the work orders
    start first) the optimiser decides on each fork with the same, smaller search (``search``)
    and the same random streams, so the two plans differ through the outage alone, and the
    outage never reaches the main twin. With ``forecast: perfect`` the forks also know how long
    the repairs take."""
    out: dict[str, Any] = {}
    for case in ("every_blower_up", "two_blowers_out"):
        f = tw.fork()
        agent, fleet = f.agent, f.agent.fleet
        failed = [a.id for a in fleet.assets if a.type == "blower" and a.function == "blower:aeration"][:2]
        if case == "two_blowers_out":
            for ident in failed:
                agent.fail(int(fleet.rows_of(fleet.index[ident])[0]), forced=True)
            out["failed"] = failed
        f.advance("1min")  # a twin is forked and saved between events, not inside one
        f.optimiser.spec = type(f.optimiser.spec).model_validate({**f.optimiser.spec.model_dump(), **search})
        d = f.optimiser.decide(f)
        out[case] = {"schedule": d["schedule"], "predicted": d["predicted"], "evaluations": d["evaluations"],
                     "blowers_out_of_service": int(f.equipment.blowers_out_of_service)}
    up, down = out["every_blower_up"], out["two_blowers_out"]
    p_up, p_out = up["predicted"], down["predicted"]
    log(f"  with {' and '.join(out['failed'])} out (a fork; the same search on an unchanged fork for comparison, "
        f"{search['horizon']}, {up['evaluations']} and {down['evaluations']} candidates): mean DO plan "
        f"{_mean_do(down['schedule']):.2f} against {_mean_do(up['schedule']):.2f} g/m3; predicted electricity "
        f"{p_out['electricity_kWh']:,.0f} against {p_up['electricity_kWh']:,.0f} kWh, effluent NH4-N "
        f"{p_out['mean_SNH_g_m3']:.2f} against {p_up['mean_SNH_g_m3']:.2f} g/m3, hours above limits "
        f"{p_out['violation_h']:.2f} against {p_up['violation_h']:.2f}")
    return out


def _maintenance_part(level: dict, out: Path, investment: float | None, running: float | None, log) -> dict:
    from twin.study import run_study

    days = level["fleet_days"]
    arms = {"run_to_failure": {"set": {"fleet.policies": {"default": {"kind": "rtf"}}}},
            "condition": {"set": {}}}
    if level["predictive"]:
        arms["predictive"] = {"set": {"fleet.policies": {"default": {"kind": "predictive", "model": "reference",
                                                                     "horizon_h": 336, "inspection_interval": "1d"}}}}
    best = "predictive" if level["predictive"] else "condition"
    spec = {"name": "demo", "scenario": str(SCEN / "reference_10y.yaml"), "fleet_only": True,
            "overrides": {"duration": f"{days}d", "evaluation.end": f"{days}d", "outputs.checkpoint_every": None},
            "baseline": "run_to_failure", "replications": level["replications"], "seed0": 1, "arms": arms}
    if investment is not None and running is not None:
        spec["economics"] = {"arm": best, "investment": investment, "running_cost_per_year": running,
                             "rate": 0.08, "horizon_years": 5}
    out.mkdir(parents=True, exist_ok=True)
    path = out / "demo_study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    s = run_study(path, out / "study")
    for arm, d in s["savings_against_baseline"].items():
        log(f"  {arm} against run-to-failure ({s['replications']} paired replications of {days} days): "
            f"unplanned downtime avoided {d['unplanned_downtime_h_per_year']['mean']:,.0f} h/yr "
            f"[{d['unplanned_downtime_h_per_year']['ci'][0]:,.0f}, {d['unplanned_downtime_h_per_year']['ci'][1]:,.0f}], "
            f"failures avoided {d['failures_per_year']['mean']:.1f}/yr, maintenance cost saved "
            f"{d['maintenance_cost_per_year']['mean']:,.0f}/yr [{d['maintenance_cost_per_year']['ci'][0]:,.0f}, "
            f"{d['maintenance_cost_per_year']['ci'][1]:,.0f}]")
    if "economics" in s:
        e = s["economics"]
        log(f"  economics of {best} (your inputs, 8 %, 5 years): NPV {e['point']['npv']:,.0f} "
            f"[{e['ci']['npv'][0]:,.0f}, {e['ci']['npv'][1]:,.0f}], payback {e['point']['payback_months']:.1f} months, "
            f"ROI {e['point']['roi_pct']:.0f} %")
    else:
        log("  economics: give --investment and --running-cost (the plant's own figures) for NPV, IRR, payback, ROI")
    return s


def run_demo(level_name: str, out: Path, investment: float | None = None, running: float | None = None,
             log=print) -> dict:
    level = LEVELS[level_name]
    w0 = time.perf_counter()
    log(f"plant twin demo ({level_name}); every figure below is simulated")
    log("1. the reference plant, forks and the energy optimiser")
    opt = _optimiser_part(level, log)
    log("2. maintenance policies on the 124-asset reference fleet")
    study = _maintenance_part(level, out, investment, running, log)
    log("3. simulated against the specification's claims (claims from analysis/claims.yaml)")
    for r in study["claims"]:
        log(f"  {r['figure']:38s} claimed {r['claimed']!s:>18s}   simulated {r['simulated']:,.1f}")
    result = {"level": level_name, "optimiser": opt, "study": {k: study[k] for k in ("savings_against_baseline",
                                                                                   "claims")},
              "wall_s": time.perf_counter() - w0}
    (out / "demo.json").write_text(json.dumps(result, indent=1, default=str))
    log(f"written: {out}/demo.json, {out}/study/report.html ({result['wall_s']:.0f} s)")
    return result
