"""Process consequences of equipment outages, from a run's time series and outage intervals.

What is measured is *coincidence*: effluent limit violations and treatment bypass while at
least one process-coupled asset (lift pump, blower, air valve, aeration grid, process pump)
was out of service. Whether an outage *caused* them is answered by comparing the run with a
baseline of the same seed (``twin compare``), where the only differences are what the
maintenance policy did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.bsm1 import LIMITS, effluent_quantities


def outage_consequences(times_s: np.ndarray, columns: list[str], values: np.ndarray, meta: dict[str, Any],
                        start_s: int, end_s: int, outages: list[tuple[int, int]],
                        bypass_streams: list[str]) -> dict[str, Any]:
    """Hours in violation of any effluent limit and bypass volume, in total and during outages,
    over the window [start_s, end_s] (samples held over their interval)."""
    sel = np.nonzero((times_s >= start_s) & (times_s <= end_s))[0]
    out: dict[str, Any] = {"outage_hours": 0.0, "violation_hours": 0.0, "violation_hours_during_outages": 0.0,
                           "bypass_m3": 0.0, "bypass_m3_during_outages": 0.0,
                           "units": {"hours": "h", "bypass": "m3"},
                           "note": "coincidence with outages of process-coupled assets; compare with a baseline run "
                                   "for causation"}
    if sel.size < 2 or not meta.get("effluent_stream"):
        return out
    t = times_s[sel]
    dt_h = np.diff(t) / 3600.0
    t0 = t[:-1]
    down = np.zeros(t0.size, dtype=bool)
    for a, b in outages:
        down |= (t0 >= a) & (t0 < b)
    idx = {c: k for k, c in enumerate(columns)}

    def col(name: str) -> np.ndarray:
        return values[sel[:-1], idx[name]]
    eff = effluent_quantities(col, meta["effluent_stream"], meta["f_P"], meta["i_XB"], meta["i_XP"])
    viol = np.zeros(t0.size, dtype=bool)
    for k, lim in LIMITS.items():
        viol |= eff[k] > lim
    bypass = np.zeros(t0.size)
    for s in bypass_streams:
        bypass += col(f"{s}.Q_m3_d")
    out.update(outage_hours=float(np.sum(dt_h[down])), violation_hours=float(np.sum(dt_h[viol])),
               violation_hours_during_outages=float(np.sum(dt_h[viol & down])),
               bypass_m3=float(np.sum(bypass * dt_h / 24.0)),
               bypass_m3_during_outages=float(np.sum((bypass * dt_h / 24.0)[down])))
    return out
