"""Differences between a run and its baseline, from their kpis.json files."""

from __future__ import annotations

import json
from pathlib import Path

from twin.errors import ConfigError


def _load(folder: Path) -> dict:
    p = folder / "kpis.json"
    if not p.exists():
        raise ConfigError(f"{folder}: not a results folder (no kpis.json)")
    try:
        kpis = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: unreadable: {exc}") from None
    p95 = (kpis.get("bsm1") or {}).get("p95") or {}
    if "TN" in p95:  # results written before the total nitrogen was called Ntot everywhere
        p95.setdefault("Ntot", p95.pop("TN"))
    return kpis


def _identity(folder: Path) -> dict | None:
    """The plant and evaluation window (simulated days) of a results folder, from its resolved scenario."""
    p = folder / "scenario.resolved.yaml"
    if not p.exists():
        return None
    import yaml

    from twin.durations import parse_duration

    try:
        s = yaml.safe_load(p.read_text()) or {}
        ev = s.get("evaluation") or {}
        start = parse_duration(ev.get("start") or "0d")
        end = parse_duration(ev.get("end") or s["duration"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: unreadable: {exc}") from None
    return {"plant": s.get("plant", "bsm1"), "window_d": [start / 86400, end / 86400]}


def check_comparable(run_a: Path, run_b: Path) -> None:
    """Refuse to compare runs of different plants or different evaluation windows."""
    ia, ib = _identity(run_a), _identity(run_b)
    if ia is None or ib is None:
        return
    if ia["plant"] != ib["plant"]:
        raise ConfigError(f"{run_a} is a run of plant '{ia['plant']}' and {run_b} of plant '{ib['plant']}': "
                          "not comparable (--force to compare anyway)")
    if ia["window_d"] != ib["window_d"]:
        wa, wb = ("days {:g}-{:g}".format(*i["window_d"]) for i in (ia, ib))
        raise ConfigError(f"{run_a} is evaluated over {wa} and {run_b} over {wb}: not comparable "
                          "(--force to compare anyway)")


def _n(v: float, digits: int = 0) -> str:
    return f"{v:,.{digits}f}"


EFFLUENT = ("SNH", "Ntot", "TSS", "CODt")


def compare_runs(run_a: Path, run_b: Path, force: bool = False) -> dict:
    """What run A avoids or saves against baseline B (positive = better in A). Runs of different
    plants or evaluation windows are refused unless ``force``."""
    a, b = _load(run_a), _load(run_b)
    if not force:
        check_comparable(run_a, run_b)
    out: dict = {"run": str(run_a), "baseline": str(run_b), "summary": []}
    ma, mb = a.get("maintenance", {}).get("by_type", {}).get("total"), b.get("maintenance", {}).get("by_type", {}).get("total")
    if ma and mb:
        down = lambda m: m["downtime_h"]["planned"] + m["downtime_h"]["unplanned"]  # noqa: E731
        out["maintenance"] = {
            "downtime_avoided_h": down(mb) - down(ma),
            "unplanned_downtime_avoided_h": mb["downtime_h"]["unplanned"] - ma["downtime_h"]["unplanned"],
            "failures_avoided": mb["failures"] - ma["failures"],
            "maintenance_cost_saved": mb["cost"]["total"] - ma["cost"]["total"],
            "availability_gain": ma["availability"] - mb["availability"],
        }
        m = out["maintenance"]
        cur = a["maintenance"].get("units", {}).get("cost") or "currency of the cost data"
        out["maintenance"]["cost_unit"] = cur
        out["summary"] += [f"downtime avoided: {_n(m['downtime_avoided_h'], 1)} h "
                           f"(unplanned {_n(m['unplanned_downtime_avoided_h'], 1)} h)",
                           f"failures avoided: {_n(m['failures_avoided'])}",
                           f"maintenance cost saved: {_n(m['maintenance_cost_saved'])} {cur}",
                           f"availability gain: {100 * m['availability_gain']:.3f} percentage points"]
    pa = a.get("maintenance", {}).get("process_consequences")
    pb = b.get("maintenance", {}).get("process_consequences")
    if pa and pb:
        out["process_consequences"] = {
            "outage_hours_avoided": pb["outage_hours"] - pa["outage_hours"],
            "violation_hours_during_outages_avoided": pb["violation_hours_during_outages"]
            - pa["violation_hours_during_outages"]}
        out["summary"].append("hours in violation during process-equipment outages avoided: "
                              f"{out['process_consequences']['violation_hours_during_outages_avoided']:.1f}")
    ea, eb = a.get("energy"), b.get("energy")
    if ea and eb:
        cur = ea.get("units", {}).get("cost") or "currency of the tariff"
        cur_b = eb.get("units", {}).get("cost") or "currency of the tariff"
        if cur != cur_b:
            cur = f"{cur} against {cur_b}"
        out["energy"] = {"kWh_saved": eb["total_kWh"] - ea["total_kWh"], "cost_saved": eb["total_cost"] - ea["total_cost"],
                         "kWh": {"run": ea["total_kWh"], "baseline": eb["total_kWh"]},
                         "cost": {"run": ea["total_cost"], "baseline": eb["total_cost"]}, "cost_unit": cur}
        out["summary"].append(f"energy: {_n(ea['total_kWh'])} kWh against {_n(eb['total_kWh'])} kWh, saved "
                              f"{_n(out['energy']['kWh_saved'])} kWh; cost saved {_n(out['energy']['cost_saved'])} {cur}")
        la, lb = ea.get("electricity"), eb.get("electricity")
        if la and lb and la["kWh"] > 0 and lb["kWh"] > 0:
            # the electricity cost saving split into using less and paying a lower mean price for
            # what is used (shifting to cheaper hours): see analysis.energy.cost_change_split
            saved = lb["cost"] - la["cost"]
            volume = (lb["kWh"] - la["kWh"]) * lb["cost"] / lb["kWh"]
            out["energy"]["electricity"] = {"kWh_saved": lb["kWh"] - la["kWh"], "cost_saved": saved,
                                            "from_using_less": volume, "from_timing": saved - volume,
                                            "mean_price": {"run": la["cost"] / la["kWh"], "baseline": lb["cost"] / lb["kWh"]}}
            out["summary"].append(f"electricity: cost saved {_n(saved, 1)} {cur}, of which {_n(volume, 1)} from using "
                                  f"{_n(lb['kWh'] - la['kWh'])} kWh less and {_n(saved - volume, 1)} from the hours it "
                                  "was used in")
    ba, bb = a.get("bsm1"), b.get("bsm1")
    if ba and bb:
        win = ba["window_d"][1] - ba["window_d"][0]
        hours = lambda k: {n: v["pct_time"] / 100 * win * 24 for n, v in k["violations"].items()}  # noqa: E731
        ha, hb = hours(ba), hours(bb)
        fa, fb = ba["effluent_avg"], bb["effluent_avg"]
        out["effluent"] = {"violation_hours_avoided": {n: hb[n] - ha[n] for n in ha if n in hb},
                           "EQI_reduction": bb["EQI"] - ba["EQI"],
                           "EQI": {"run": ba["EQI"], "baseline": bb["EQI"]},
                           "avg_g_m3": {n: {"run": fa[n], "baseline": fb[n], "difference": fa[n] - fb[n]}
                                        for n in EFFLUENT if n in fa and n in fb}}
        out["summary"].append(f"EQI: {_n(ba['EQI'], 1)} against {_n(bb['EQI'], 1)} kg PU/d "
                              f"(reduction {_n(out['effluent']['EQI_reduction'], 1)})")
        out["summary"].append("effluent averages, run minus baseline (g/m3): " +
                              ", ".join(f"{n} {v['difference']:+,.3f}" for n, v in out["effluent"]["avg_g_m3"].items()))
        out["summary"].append("effluent violation hours avoided: " +
                              ", ".join(f"{n} {v:.1f}" for n, v in out["effluent"]["violation_hours_avoided"].items()))
    ha, hb = a.get("hydraulics"), b.get("hydraulics")
    if ha and hb:
        out["bypass_avoided_m3"] = hb["bypass_m3"] - ha["bypass_m3"]
        out["summary"].append(f"bypass avoided: {out['bypass_avoided_m3']:.0f} m3")
    if not out["summary"]:
        out["summary"].append("nothing comparable in the two kpis.json files")
    return out
