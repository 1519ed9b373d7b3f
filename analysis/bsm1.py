"""BSM1 performance evaluation (Alex et al. 2008, chapter 6; "updated" indices on BSM2 principles).

Computed from recorded samples over an evaluation window with zero-order hold (each
sample holds until the next, as in the BSM1 evaluation files):

* flow-weighted effluent averages of SNH, SNO, TSS, total COD, BOD5, TKN and total N;
* EQI = 1/(T 1000) int (2 TSS + COD + 30 TKN + 10 SNO + 2 BOD5) Q_e dt   (kg pollution units/d);
* AE = SO_sat/(1.8 1000 T) int sum_i V_i KLa_i dt                       (kWh/d);
* PE = 1/T int sum_k f_k Q_k dt, f = 0.004/0.008/0.05 kWh/m3 for Qa/Qr/Qw (kWh/d);
* ME = 24/T int sum_{i: KLa_i < 20 1/d} 0.005 V_i dt                      (kWh/d);
* SP = (M_TSS(end) - M_TSS(start) + int TSS_w Q_w dt / 1000) / T           (kg SS/d);
* OCI = AE + PE + 5 SP + 3 EC + ME (no external carbon here: EC = 0);
* 95th percentiles of effluent SNH, total N and TSS; time in violation of the effluent
  limits (percentage of the window) and the number of violation occasions.

with TSS = 0.75 (XS + XI + XBH + XBA + XP), COD = SS + SI + XS + XI + XBH + XBA + XP,
BOD5 = 0.25 (SS + XS + (1 - f_P)(XBH + XBA)), TKN = SNH + SND + XND + i_XB (XBH + XBA)
+ i_XP (XP + XI), N_tot = TKN + SNO.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: BSM1 effluent limits, g/m3 (Alex et al. 2008, section 6.1).
LIMITS: dict[str, float] = {"Ntot": 18.0, "CODt": 100.0, "SNH": 4.0, "TSS": 30.0, "BOD5": 10.0}
EQI_WEIGHTS: dict[str, float] = {"TSS": 2.0, "CODt": 1.0, "TKN": 30.0, "SNO": 10.0, "BOD5": 2.0}
MIXING_KW_PER_M3 = 0.005
MIXING_KLA_THRESHOLD_PER_D = 20.0
AE_DIVISOR = 1.8 * 1000.0  # kg O2 per kWh (1.8) and g per kg


def effluent_quantities(col, prefix: str, f_P: float, i_XB: float, i_XP: float) -> dict[str, np.ndarray]:
    """Composite effluent variables from a stream's recorded columns."""
    g = {n: col(f"{prefix}.{n}_g_m3") for n in ("SI", "SS", "XI", "XS", "XBH", "XBA", "XP", "SO", "SNO", "SNH",
                                                 "SND", "XND")}
    tss = 0.75 * (g["XS"] + g["XI"] + g["XBH"] + g["XBA"] + g["XP"])
    cod = g["SS"] + g["SI"] + g["XS"] + g["XI"] + g["XBH"] + g["XBA"] + g["XP"]
    bod5 = 0.25 * (g["SS"] + g["XS"] + (1 - f_P) * (g["XBH"] + g["XBA"]))
    tkn = g["SNH"] + g["SND"] + g["XND"] + i_XB * (g["XBH"] + g["XBA"]) + i_XP * (g["XP"] + g["XI"])
    return {"SNH": g["SNH"], "SNO": g["SNO"], "SO": g["SO"], "TSS": tss, "CODt": cod, "BOD5": bod5,
            "TKN": tkn, "Ntot": tkn + g["SNO"], "Q": col(f"{prefix}.Q_m3_d")}


def violations(values: np.ndarray, limit: float, dt_d: np.ndarray, T_d: float) -> dict[str, float]:
    """Percentage of the window above ``limit`` and the number of separate occasions."""
    over = values > limit
    starts = int(over[0]) + int(np.sum(over[1:] & ~over[:-1])) if over.size else 0
    return {"pct_time": float(100.0 * np.sum(dt_d[over]) / T_d), "occasions": starts,
            "limit": limit}


def evaluate(times_s: np.ndarray, columns: list[str], values: np.ndarray, meta: dict[str, Any],
             start_s: int, end_s: int, sample_s: int) -> dict[str, Any]:
    """BSM1 indices over [start_s, end_s] from samples (times relative to the main period)."""
    index = {c: i for i, c in enumerate(columns)}
    sel = np.nonzero((times_s >= start_s) & (times_s <= end_s))[0]
    if sel.size < 2:
        raise ValueError("the evaluation window holds fewer than two samples")
    t_d = times_s[sel] / 86400.0
    dt = np.diff(t_d)  # zero-order hold: sample k holds over [t_k, t_k+1)
    rows = sel[:-1]
    T = t_d[-1] - t_d[0]

    def col(name: str) -> np.ndarray:
        return values[rows, index[name]]

    eff = effluent_quantities(col, meta["effluent_stream"], meta["f_P"], meta["i_XB"], meta["i_XP"])
    q = eff["Q"]
    qdt = q * dt
    avg = {k: float(np.sum(eff[k] * qdt) / np.sum(qdt)) for k in ("SNH", "SNO", "TSS", "CODt", "BOD5", "Ntot", "TKN", "SO")}
    avg["Q"] = float(np.sum(qdt) / T)
    eqi = sum(w * np.sum(eff[k] * qdt) for k, w in EQI_WEIGHTS.items()) / (T * 1000.0)

    ae = 0.0
    me = 0.0
    for r in meta["reactors"].values():
        kla = col(r["kla_column"])
        ae += r["SO_sat_g_m3"] * r["volume_m3"] * np.sum(kla * dt) / (AE_DIVISOR * T)
        me += 24.0 * MIXING_KW_PER_M3 * r["volume_m3"] * np.sum(dt[kla < MIXING_KLA_THRESHOLD_PER_D]) / T
    pe = sum(f * np.sum(col(f"{s}.Q_m3_d") * dt) for s, f in meta["pumped_flows"].items()) / T

    waste = meta["waste_stream"]
    waste_kg = np.sum(col(f"{waste}.TSS_g_m3") * col(f"{waste}.Q_m3_d") * dt) / 1000.0
    inv = values[sel, index["plant.solids_inventory_kg"]]
    sp = (inv[-1] - inv[0] + waste_kg) / T
    oci = ae + pe + 5.0 * sp + me

    dt_all = dt
    viol = {k: violations(eff[k], lim, dt_all, T) for k, lim in LIMITS.items()}
    return {
        "window_d": [start_s / 86400.0, end_s / 86400.0],
        "EQI": float(eqi), "AE": float(ae), "PE": float(pe), "ME": float(me), "SP": float(sp), "EC": 0.0,
        "OCI": float(oci),
        "effluent_avg": avg,
        "p95": {"SNH": float(np.percentile(eff["SNH"], 95)), "Ntot": float(np.percentile(eff["Ntot"], 95)),
                "TSS": float(np.percentile(eff["TSS"], 95))},
        "violations": viol,
        "units": {"EQI": "kg pollution units/d", "AE": "kWh/d", "PE": "kWh/d", "ME": "kWh/d", "SP": "kg SS/d",
                  "OCI": "-", "EC": "kWh/d", "effluent_avg": "g/m3 (Q: m3/d)", "window_d": "d", "p95": "g/m3",
                  "violations": {"limit": "g/m3", "pct_time": "%", "occasions": "count"}},
    }
