"""Energy, cost and carbon from recorded power signals.

Power columns (``power.<area>_kW``) are averages over the recording interval that ends at each
row, so summing power x interval gives exactly the energy the equipment drew. A tariff prices each
interval: flat, time-of-use bands (hour-of-day price bands), or a price series from a file
(for example the 2023 day-ahead prices shipped with bsm2-python, 15-minute steps, per MWh).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Tariff:
    kind: str = "flat"  # flat | tou | file
    price_per_kwh: float = 0.0  # flat
    bands: list | None = None  # tou: [{"from_h": 0, "to_h": 7, "price_per_kwh": 0.1}, ...]
    times_d: np.ndarray | None = None  # file: sample times (d), price held until the next
    prices_per_kwh: np.ndarray | None = None

    def price_at(self, t_d: np.ndarray) -> np.ndarray:
        t_d = np.asarray(t_d, dtype=float)
        if self.kind == "flat":
            return np.full(t_d.shape, self.price_per_kwh)
        if self.kind == "tou":
            hour = (t_d % 1.0) * 24.0
            price = np.full(t_d.shape, np.nan)
            for b in self.bands or []:
                lo, hi = b["from_h"], b["to_h"]
                inside = (hour >= lo) & (hour < hi) if lo < hi else (hour >= lo) | (hour < hi)
                price[inside] = b["price_per_kwh"]
            if np.any(np.isnan(price)):
                raise ValueError("the time-of-use bands do not cover every hour of the day")
            return price
        span = self.times_d[-1] + (self.times_d[-1] - self.times_d[-2])
        idx = np.searchsorted(self.times_d, t_d % span, side="right") - 1
        return self.prices_per_kwh[np.clip(idx, 0, self.prices_per_kwh.size - 1)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_price_file(path: Path, per: str = "MWh") -> Tariff:
    """A two-column price series: time (d) and price per MWh (or per kWh with ``per='kWh'``),
    separated by a comma or spaces; blank lines, lines starting with ``#`` and a first line of
    column names are skipped. A
    line that is not two numbers, times that do not increase, or fewer than two rows are a
    ConfigError naming the file and the line."""
    from twin.errors import ConfigError

    where = f"equipment.tariff.file: {path}"
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read: {exc}") from None
    rows: list[tuple[float, float]] = []
    header_allowed = True
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.replace(",", " ").replace(";", " ").split()
        if header_allowed and not any(_is_number(f) for f in fields):
            header_allowed = False  # a header line of column names
            continue
        header_allowed = False
        try:
            t, p = (float(f) for f in fields) if len(fields) == 2 else (None, None)
        except ValueError:
            t = None
        if t is None or not (np.isfinite(t) and np.isfinite(p)):
            raise ConfigError(f"{where}: line {lineno}: expected two numbers, time (d) and price per {per}, "
                              f"got {line[:60]!r}")
        if rows and t <= rows[-1][0]:
            raise ConfigError(f"{where}: line {lineno}: times must increase ({t:g} d after {rows[-1][0]:g} d)")
        rows.append((t, p))
    if len(rows) < 2:
        raise ConfigError(f"{where}: expected at least two rows of time (d) and price per {per}")
    data = np.asarray(rows)
    scale = 1e-3 if per == "MWh" else 1.0
    return Tariff(kind="file", times_d=data[:, 0], prices_per_kwh=data[:, 1] * scale)


def energy_kpis(times_s: np.ndarray, columns: list[str], values: np.ndarray, start_s: int, end_s: int,
                tariff: Tariff, co2_kg_per_kwh: float, treated_m3: float | None, heat: dict | None = None) -> dict:
    """kWh and cost by area and in total, kWh per m3 treated, peak kW (highest hourly mean),
    CO2, and the mean power by hour of day over the window.

    ``heat``: how the heating area is supplied, ``{"source": "electric" | "fuel",
    "price_per_kwh": ..., "co2_kg_per_kwh": ...}`` (default electric). The ``electricity`` block
    holds what is bought at the tariff (kWh, cost, kWh per m3 treated, CO2), the ``heat`` block
    the heater's energy (kWh drawn, cost, CO2); totals add both."""
    index = {c: i for i, c in enumerate(columns)}
    areas = [c for c in columns if c.startswith("power.") and c.endswith("_kW")]
    sel = np.nonzero((times_s >= start_s) & (times_s <= end_s))[0]
    if sel.size < 2:
        raise ValueError("the evaluation window holds fewer than two samples")
    t = times_s[sel]
    dt_h = np.diff(t) / 3600.0
    rows = sel[1:]  # each row's power covers the interval ending at that row
    t_mid_d = 0.5 * (t[:-1] + t[1:]) / 86400.0
    price = tariff.price_at(t_mid_d)
    out: dict = {"by_area": {}, "units": {"energy": "kWh", "power": "kW", "cost": "currency of the tariff",
                                          "co2": "kg"}}
    total_kw = np.zeros(sel.size - 1)
    for c in areas:
        p = values[rows, index[c]]
        kwh = float(np.sum(p * dt_h))
        out["by_area"][c[len("power."):-len("_kW")]] = {"kWh": kwh, "cost": float(np.sum(p * dt_h * price)),
                                                       "mean_kW": kwh / float(np.sum(dt_h))}
        total_kw += p
    heat = heat or {"source": "electric"}
    heat_kw = values[rows, index["power.heating_kW"]] if "power.heating_kW" in index else np.zeros(sel.size - 1)
    fuel = heat.get("source", "electric") == "fuel"
    elec_kw = total_kw - heat_kw if fuel else total_kw
    elec_kwh = float(np.sum(elec_kw * dt_h))
    elec_cost = float(np.sum(elec_kw * dt_h * price))
    heat_kwh = float(np.sum(heat_kw * dt_h))
    if fuel:
        heat_cost = heat_kwh * float(heat.get("price_per_kwh", 0.0))
        heat_co2 = heat_kwh * float(heat.get("co2_kg_per_kwh", 0.0))
    else:
        heat_cost = float(np.sum(heat_kw * dt_h * price))
        heat_co2 = heat_kwh * co2_kg_per_kwh
    out["electricity"] = {"kWh": elec_kwh, "cost": elec_cost, "co2_kg": elec_kwh * co2_kg_per_kwh,
                          "kWh_per_m3": elec_kwh / treated_m3 if treated_m3 else None,
                          "includes_heating": not fuel}
    out["heat"] = {"source": heat.get("source", "electric"), "kWh": heat_kwh, "cost": heat_cost, "co2_kg": heat_co2,
                   "note": "energy drawn by the heater (heat delivered / efficiency)"}
    total_kwh = float(np.sum(total_kw * dt_h))
    out["total_kWh"] = total_kwh
    out["total_cost"] = elec_cost + (heat_cost if fuel else 0.0)
    out["co2_kg"] = out["electricity"]["co2_kg"] + (heat_co2 if fuel else 0.0)
    out["kWh_per_m3"] = total_kwh / treated_m3 if treated_m3 else None
    hour_index = np.floor((t[:-1] - t[0]) / 3600.0).astype(int)
    hourly = np.bincount(hour_index, weights=total_kw * dt_h) / np.maximum(np.bincount(hour_index, weights=dt_h), 1e-12)
    out["peak_kW"] = float(np.max(hourly))
    hod = np.floor((t[:-1] % 86400) / 3600.0).astype(int)
    w = np.bincount(hod, weights=dt_h, minlength=24)
    prof = np.bincount(hod, weights=total_kw * dt_h, minlength=24) / np.maximum(w, 1e-12)
    out["hourly_profile_kW"] = [float(v) for v in prof]
    return out


def cost_change_split(kwh_a: np.ndarray, kwh_b: np.ndarray, price: np.ndarray) -> dict[str, float]:
    """Split the cost change from run A (the baseline) to run B over the same intervals (energies
    per interval ``kwh_a``, ``kwh_b`` at prices ``price``) into volume, the change of energy
    priced at the mean price A paid (sum E_a p / sum E_a), and timing, the rest: B paying a
    lower or higher mean price for its energy than A did. The two parts add up to the change."""
    ea, eb, p = (np.asarray(v, dtype=float) for v in (kwh_a, kwh_b, price))
    ca, cb = float(ea @ p), float(eb @ p)
    mean_a = ca / float(ea.sum())
    volume = (float(eb.sum()) - float(ea.sum())) * mean_a
    return {"change": cb - ca, "volume": volume, "timing": (cb - ca) - volume,
            "mean_price_a": mean_a, "mean_price_b": cb / float(eb.sum())}
