"""Economics of an investment from simulated savings: cash flows, NPV, IRR, payback, ROI.

The financial maths is numpy-financial's (``npv``, ``irr``); the cash flows are built here:
year 0 the investment (negative), years 1..N the yearly savings minus the yearly running
costs. Every input (investment, running costs, rate, horizon) comes from the study file; the
savings come from simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy_financial as nf


@dataclass(frozen=True)
class Investment:
    investment: float  # paid at year 0 (currency)
    running_cost_per_year: float  # AI services, sensors, licences (currency per year)
    rate: float  # discount rate per year (0.08 = 8 %)
    horizon_years: int


def cash_flows(inv: Investment, savings_per_year: float) -> np.ndarray:
    flows = np.full(inv.horizon_years + 1, savings_per_year - inv.running_cost_per_year, dtype=float)
    flows[0] = -inv.investment
    return flows


def payback_years(flows: np.ndarray) -> float:
    """Undiscounted payback: when the cumulative cash flow turns non-negative, savings spread
    evenly over each year (linear within the year); inf when it never does."""
    cum = np.cumsum(flows)
    if cum[0] >= 0:
        return 0.0
    for k in range(1, cum.size):
        if cum[k] >= 0:
            return (k - 1) + (-cum[k - 1]) / flows[k]
    return math.inf


def economics(inv: Investment, savings_per_year: float) -> dict[str, float]:
    """NPV (at the rate over the horizon), IRR, payback (years and months) and ROI (net gain over
    the horizon per unit invested, undiscounted) of one savings figure."""
    flows = cash_flows(inv, savings_per_year)
    irr = float(nf.irr(flows)) if inv.investment > 0 else math.nan
    pb = payback_years(flows)
    gain = float(np.sum(flows[1:]))
    return {"npv": float(nf.npv(inv.rate, flows)), "irr": irr if math.isfinite(irr) else math.nan,
            "payback_years": pb, "payback_months": 12 * pb,
            "roi_pct": 100.0 * (gain - inv.investment) / inv.investment if inv.investment > 0 else math.nan,
            "net_savings_per_year": savings_per_year - inv.running_cost_per_year}
