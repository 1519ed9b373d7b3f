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
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{p}: unreadable: {exc}") from None


def compare_runs(run_a: Path, run_b: Path) -> dict:
    """What run A avoids or saves against baseline B (positive = better in A)."""
    a, b = _load(run_a), _load(run_b)
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
        out["summary"] += [f"downtime avoided: {m['downtime_avoided_h']:.1f} h "
                           f"(unplanned {m['unplanned_downtime_avoided_h']:.1f} h)",
                           f"failures avoided: {m['failures_avoided']}",
                           f"maintenance cost saved: {m['maintenance_cost_saved']:.0f}"]
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
        out["energy"] = {"kWh_saved": eb["total_kWh"] - ea["total_kWh"], "cost_saved": eb["total_cost"] - ea["total_cost"]}
        out["summary"].append(f"energy saved: {out['energy']['kWh_saved']:.0f} kWh "
                              f"({out['energy']['cost_saved']:.0f} in cost)")
    ba, bb = a.get("bsm1"), b.get("bsm1")
    if ba and bb:
        win = ba["window_d"][1] - ba["window_d"][0]
        hours = lambda k: {n: v["pct_time"] / 100 * win * 24 for n, v in k["violations"].items()}  # noqa: E731
        ha, hb = hours(ba), hours(bb)
        out["effluent"] = {"violation_hours_avoided": {n: hb[n] - ha[n] for n in ha},
                           "EQI_reduction": bb["EQI"] - ba["EQI"]}
        out["summary"].append("effluent violation hours avoided: " +
                              ", ".join(f"{n} {v:.1f}" for n, v in out["effluent"]["violation_hours_avoided"].items()))
    ha, hb = a.get("hydraulics"), b.get("hydraulics")
    if ha and hb:
        out["bypass_avoided_m3"] = hb["bypass_m3"] - ha["bypass_m3"]
        out["summary"].append(f"bypass avoided: {out['bypass_avoided_m3']:.0f} m3")
    if not out["summary"]:
        out["summary"].append("nothing comparable in the two kpis.json files")
    return out
