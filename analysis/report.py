"""HTML report of one run, laid out as a plant's daily report: one self-contained file (inline
SVG charts, no script, no network) readable offline in any browser.

Sections, each where the run has the data: headline figures (flow treated, effluent against
the limits, energy and its cost, bypass, failures), influent (flow and load), effluent against
the limits, control loops (with the phase margin and sensitivity peak of their tuning's design
check, or why there is none), aeration (airflow per zone, valve openings, blowers running), wet
well and bypass, sludge (inventory and sludge age), instruments, energy (metered power by area,
mean power by hour, cumulative cost, and the BSM1 energy indices beside the metered energy),
equipment fleet and maintenance, and the run. Time axes are in hours from the start of the main
period (whole days for runs longer than three days). Numbers print in fixed notation with thousands
separators; costs carry the tariff's currency (``equipment.tariff.currency``) when it is set.

The report reads only what a results folder holds (scenario, series, events, KPIs and the plant
metadata), so ``twin report RUN_DIR`` can write it again from a finished run.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from analysis.bsm1 import LIMITS, effluent_quantities
from analysis.svgchart import Chart, Series, bar_chart, hbar_chart, line_chart, timeline_chart

#: runs longer than this draw their time axes in whole days instead of hours
DAYS_AXIS_ABOVE_H = 3 * 24

_EFFLUENT_NAMES = {"SNH": "ammonia (SNH)", "SNO": "nitrate (SNO)", "Ntot": "total N", "TSS": "suspended solids (TSS)",
                   "CODt": "total COD", "BOD5": "BOD5"}


def fmt(v: Any, decimals: int | None = None) -> str:
    """A number for a person: fixed notation with thousands separators and about four significant
    figures (never ``1.384e+04``); other values as text."""
    if isinstance(v, bool) or v is None or not isinstance(v, (int, float, np.integer, np.floating)):
        return "-" if v is None else str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    v = float(v)
    if not math.isfinite(v):
        return "not finite" if math.isnan(v) else ("infinite" if v > 0 else "minus infinite")
    if decimals is None:
        a = abs(v)
        if a == 0 or a < 5e-10:
            return "0"
        if a < 1e15 and v == round(v):
            return f"{v:,.0f}"
        decimals = 0 if a >= 1000 else max(0, 3 - math.floor(math.log10(a)))
        decimals = min(decimals, 10)
    return f"{v:,.{decimals}f}"


def money(v: float | None, currency: str | None) -> str:
    if v is None:
        return "-"
    return f"{fmt(v, 0 if abs(v) >= 100 else 2)} {currency}" if currency else fmt(v, 0 if abs(v) >= 100 else 2)


def _e(s: Any) -> str:
    return html.escape(str(s), quote=False)


def _table(rows: list[tuple[str, str]], head: tuple[str, ...] | None = None) -> str:
    """Rows of already formatted text (escaped here, once)."""
    h = "<tr>" + "".join(f"<th>{_e(c)}</th>" for c in head) + "</tr>" if head else ""
    body = "".join("<tr>" + "".join(f"<{'th' if j == 0 else 'td'}>{_e(c)}</{'th' if j == 0 else 'td'}>"
                                    for j, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>{h}{body}</table>"


def _grid(head: tuple[str, ...], rows: list[list[str | tuple[str, int]]]) -> str:
    """A table with a header row; a cell given as (text, n) spans n columns."""
    def cell(c):
        if isinstance(c, tuple):
            return f"<td colspan='{c[1]}' class='why'>{_e(c[0])}</td>"
        return f"<td>{_e(c)}</td>"
    h = "<tr>" + "".join(f"<th>{_e(c)}</th>" for c in head) + "</tr>"
    body = "".join("<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in rows)
    return f"<table>{h}{body}</table>"


def _ratio_unit(num: str, den: str) -> str:
    """``num/den`` with parentheses only where a unit is itself a product or quotient."""
    def wrap(u):
        return f"({u})" if any(ch in u for ch in "/ ·*") else u
    return f"{wrap(num)}/{wrap(den)}"


def _ordered(d: dict, first: tuple) -> list:
    """Items of ``d``: the keys in ``first`` in that order, then the others sorted (the same order
    whether the KPIs come from the run or from its sorted ``kpis.json``)."""
    return [(k, d[k]) for k in first if k in d] + sorted((k, v) for k, v in d.items() if k not in first)


class _Data:
    """Columns of the run, its time axis (hours or days) and the plant metadata."""

    def __init__(self, result):
        self.r = result
        self.meta = result.metadata
        self.idx = {c: i for i, c in enumerate(result.columns)}
        # a run without series (the fleet alone) spans its scenario's duration
        self.span_h = (float(result.times_s[-1]) - float(result.times_s[0])) / 3600.0 if result.times_s.size \
            else result.scenario.duration_s / 3600.0
        self.days = self.span_h > DAYS_AXIS_ABOVE_H
        self.x = result.times_s / (86400.0 if self.days else 3600.0)
        self.x_label = "time from the start [d]" if self.days else "time from the start [h]"

    def has(self, *names: str) -> bool:
        return all(n in self.idx for n in names)

    def col(self, name: str) -> np.ndarray:
        return self.r.values[:, self.idx[name]]

    def frame(self, title: str, y_label: str, series: list[Series], *args, **kw) -> Chart:
        """A chart over the run's time axis."""
        return Chart(title, y_label, self.x_label, series, *args, x_days=self.days, **kw)

    def chart(self, title: str, y_label: str, series: list[tuple[str, str]], **kw) -> str:
        """A line chart of columns given as (column, legend label)."""
        step = kw.pop("step", False)
        ss = [Series(self.x, self.col(c), label, step=step) for c, label in series if c in self.idx]
        return line_chart(self.frame(title, y_label, ss, **kw))


def write_report(path, result) -> None:
    """Write the report of ``result`` (a :class:`twin.run.RunResult` or a run read back from its
    results folder) to ``path``."""
    path.write_text(render_report(result))


def render_report(result) -> str:
    s = result.scenario
    k = result.kpis
    d = _Data(result)
    currency = None
    if s.equipment is not None and s.equipment.tariff.currency:
        currency = s.equipment.tariff.currency
    parts = [f"<h1>{_e(s.name)}</h1><p>{_e(s.description)}</p>"]
    parts.append(_headline(s, k, d, currency))
    if result.values.shape[0] > 1:
        parts.append(_influent(d))
        parts.append(_effluent(k, d))
    parts.append(_control(k, d, result))
    if result.values.shape[0] > 1:
        parts.append(_aeration(d))
        parts.append(_wet_well(k, d))
        parts.append(_sludge(d))
        parts.append(_instruments(d))
    parts.append(_energy(s, k, d, currency))
    parts.append(_maintenance(k, d, result))
    run = k.get("run", {})
    if run:
        parts.append("<h2>Run</h2>" + _table([(key.replace("_", " "), fmt(v)) for key, v in sorted(run.items())]))
    style = ("body{font-family:sans-serif;max-width:1000px;margin:auto;padding:0 8px;color:#222}"
             "table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}"
             "td{text-align:right}th{background:#f4f4f4}svg.chart{width:100%;height:auto;font-size:11px;display:block;"
             "margin:4px 0 10px}svg .ct{font-weight:bold;font-size:12px}p.note{color:#555;font-size:90%}"
             "td.why{text-align:left;color:#555;font-size:90%}")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(s.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(p for p in parts if p)}</body></html>")


# ------------------------------------------------------------------------------ sections
def _headline(s, k, d: _Data, currency) -> str:
    rows: list[tuple[str, str]] = []
    if d.meta.get("plant"):
        rows.append(("plant", str(d.meta["plant"])))
    rows.append(("seed", str(s.seed)))
    rows.append(("period", f"{fmt(s.duration_s / 3600.0)} h" if s.duration_s <= DAYS_AXIS_ABOVE_H * 3600
                 else f"{fmt(s.duration_s / 86400.0)} d"))
    b = k.get("bsm1")
    if b:
        avg = b["effluent_avg"]
        w0, w1 = b["window_d"]
        rows.append(("evaluation window", f"{fmt(w0 * 24)} h to {fmt(w1 * 24)} h" if w1 <= 2
                     else f"day {fmt(w0)} to day {fmt(w1)}"))
        rows.append(("effluent flow, mean [m3/d]", fmt(avg.get("Q"))))
        if "Q" in avg:
            rows.append(("treated in the window [m3]", fmt(avg["Q"] * (w1 - w0))))
        rows.append(("effluent quality index EQI [kg pollution units/d]", fmt(b["EQI"])))
    en = k.get("energy")
    if en:
        rows.append(("energy drawn by the machines [kWh]", fmt(en["total_kWh"])))
        rows.append(("energy cost", money(en["total_cost"], currency or "(currency of the tariff)")))
        if en.get("kWh_per_m3") is not None:
            rows.append(("energy per m3 treated [kWh/m3]", fmt(en["kWh_per_m3"])))
        rows.append(("peak power (highest hourly mean) [kW]", fmt(en["peak_kW"])))
    hyd = k.get("hydraulics")
    if hyd and d.meta.get("bypass_streams"):
        rows.append(("treatment bypass [m3]", fmt(hyd["bypass_m3"])))
        rows.append(("bypass duration [h]", fmt(hyd["bypass_hours"])))
    mt = (k.get("maintenance") or {}).get("by_type", {}).get("total")
    if mt:
        rows.append(("failures", fmt(mt["failures"])))
        rows.append(("downtime planned / unplanned [h]",
                     f"{fmt(mt['downtime_h']['planned'])} / {fmt(mt['downtime_h']['unplanned'])}"))
    out = "<h2>Summary</h2>" + _table(rows)
    if b:
        head = ("effluent", "limit [g/m3]", "flow-weighted mean [g/m3]", "95th percentile [g/m3]",
                "time above the limit [%]", "occasions")
        lines = []
        for n, v in _ordered(b["violations"], ("SNH", "Ntot", "TSS", "CODt", "BOD5")):
            p95 = b.get("p95", {}).get(n)
            lines.append([_EFFLUENT_NAMES.get(n, n), fmt(v["limit"]), fmt(b["effluent_avg"].get(n)),
                          fmt(p95) if p95 is not None else "not computed", fmt(v["pct_time"], 2), fmt(v["occasions"])])
        if "SNO" in b["effluent_avg"]:
            lines.append([_EFFLUENT_NAMES["SNO"], "no limit", fmt(b["effluent_avg"]["SNO"]), "not computed", "-", "-"])
        out += "<h3>Effluent against the limits (BSM1 limits, evaluation window)</h3>" + _grid(head, lines)
    return out


def _influent(d: _Data) -> str:
    st = d.meta.get("influent_stream")
    if not st or not d.has(f"{st}.Q_m3_d"):
        return ""
    m = d.meta
    inf = effluent_quantities(d.col, st, m["f_P"], m["i_XB"], m["i_XP"])
    q = inf["Q"]
    charts = [d.chart("Influent flow", "flow [m3/d]", [(f"{st}.Q_m3_d", f"influent ({st})")], y_min=0.0)]
    charts.append(line_chart(d.frame("Influent COD load", "load [kg COD/d]",
                                   [Series(d.x, q * inf["CODt"] / 1000.0, "total COD")], height=160, y_min=0.0)))
    charts.append(line_chart(d.frame("Influent nitrogen load", "load [kg N/d]",
                                   [Series(d.x, q * inf["Ntot"] / 1000.0, "total N"),
                                    Series(d.x, q * inf["SNH"] / 1000.0, "ammonia N")], height=160, y_min=0.0)))
    return ("<h2>Influent</h2><p class='note'>Flow and load (flow times concentration) of the influent as it "
            f"arrives ({_e(st)}).</p>" + "".join(charts))


def _effluent(k, d: _Data) -> str:
    m = d.meta
    st = m.get("effluent_stream")
    if not st or not d.has(f"{st}.Q_m3_d"):
        return ""
    eff = effluent_quantities(d.col, st, m["f_P"], m["i_XB"], m["i_XP"])
    charts = []
    for key in ("SNH", "Ntot", "SNO", "TSS", "CODt", "BOD5"):
        lim = [(LIMITS[key], f"limit {fmt(LIMITS[key])} g/m3")] if key in LIMITS else []
        charts.append(line_chart(d.frame(f"Effluent {_EFFLUENT_NAMES[key]}", f"{key} [g/m3]",
                                       [Series(d.x, eff[key], f"effluent {key}")], lim, height=180, y_min=0.0)))
    return ("<h2>Effluent against limits</h2><p class='note'>Modelled effluent concentrations (true values, not "
            "instrument readings); dashed red: the BSM1 effluent limit.</p>" + "".join(charts))


def _margin_reason(name: str, c: dict, result) -> list:
    """PM and Ms of a loop's design check (two cells), or why it has none (one cell over both)."""
    m = c.get("margins")
    if m:
        return [fmt(m.get("phase_margin_deg"), 1), fmt(m.get("Ms"), 2)]
    spec = result.scenario.controllers.get(name)
    last = None
    for e in result.events.records:
        if e.get("source") == name and e["kind"] in ("tuning_refused", "tuning_failed", "tuning_kept"):
            last = e
    if last is not None:
        mm = (last.get("data") or {}).get("margins")
        why = last["message"]
        if mm:
            return [f"{fmt(mm.get('phase_margin_deg'), 1)} (refused design)", f"{fmt(mm.get('Ms'), 2)} (refused design)"]
        return [(why, 2)]
    if spec is not None and not spec.autotune.enabled:
        return [("gains set in the scenario, so no design check (autotune off; 'twin tune' checks them)", 2)]
    if spec is not None and spec.autotune.at != "initial":
        from twin.scenario import text_of

        return [(f"no tuning accepted in the run (autotune at {text_of(spec.autotune.at)})", 2)]
    return [("no design check recorded", 2)]


def _control(k, d: _Data, result) -> str:
    ctl = k.get("control")
    loops = d.meta.get("controllers", {})
    out = ""
    if ctl:
        head = ("loop", "IAE", "ISE", "max |e|", "time saturated [%]", "retunes", "K", "Ti [min]",
                "phase margin [deg]", "Ms (sensitivity peak)")
        rows = []
        for name, c in _ordered(ctl, tuple(result.scenario.controllers)):
            g = c.get("final_gains", {})
            info = loops.get(name, {})
            mu, au = info.get("measurement_unit", ""), info.get("actuator_unit", "")
            ti = g.get("Ti_d")
            rows.append([name, f"{fmt(c.get('IAE'))} {mu}·d", f"{fmt(c.get('ISE'))} ({mu})²·d",
                         f"{fmt(c.get('max_abs_error'))} {mu}", fmt(c.get("pct_time_saturated"), 1), fmt(c.get("retunes")),
                         f"{fmt(g.get('K'))} {_ratio_unit(au, mu)}",
                         fmt(ti * 1440.0) if ti is not None else "no integral action",
                         *_margin_reason(name, c, result)])
        out += ("<h2>Control loops</h2><p class='note'>Errors of the true process value over the evaluation "
                "window. Phase margin and Ms come from the design check (python-control) of the loop's last "
                "accepted tuning.</p>" + _grid(head, rows))
    if loops and d.r.values.shape[0] > 1:
        charts = []
        for name, info in loops.items():
            if not d.has(f"control.{name}.measurement"):
                continue
            charts.append(line_chart(d.frame(
                f"{name}: {info['measurement']}", f"{info['measurement'].rpartition('.')[2]} [{info['measurement_unit']}]",
                [Series(d.x, d.col(f"control.{name}.measurement"), "measurement"),
                 Series(d.x, d.col(f"control.{name}.setpoint"), "setpoint", dashed=True, colour="#d62728")],
                height=170)))
            charts.append(line_chart(d.frame(
                f"{name}: output to {info['actuator']}", f"output [{info['actuator_unit']}]",
                [Series(d.x, d.col(f"control.{name}.output"), "controller output", colour="#555")], height=140)))
        out += ("" if ctl else "<h2>Control loops</h2>") + "".join(charts)
    return out


def _aeration(d: _Data) -> str:
    zones = sorted({c.split(".")[1] for c in d.idx if c.startswith("aeration.") and c.endswith(".airflow_Nm3_d")
                    and c.count(".") == 2})
    if not zones and not d.has("aeration.airflow_Nm3_d"):
        return ""
    charts = [d.chart("Airflow per zone", "airflow [Nm3/d]",
                      [(f"aeration.{z}.airflow_Nm3_d", z) for z in zones] + [("aeration.airflow_Nm3_d", "total")], y_min=0.0)]
    valves = [Series(d.x, 100.0 * d.col(f"aeration.{z}.valve_opening"), z) for z in zones
              if d.has(f"aeration.{z}.valve_opening")]
    if valves:
        charts.append(line_chart(d.frame("Air valve openings", "opening [%]", valves, y_min=0.0)))
    if d.has("aeration.blowers_running"):
        charts.append(d.chart("Blowers running", "blowers [count]", [("aeration.blowers_running", "running")],
                              height=140, y_min=0.0))
    if d.has("aeration.header_pressure_kPa"):
        charts.append(d.chart("Air header pressure", "pressure [kPa]", [("aeration.header_pressure_kPa", "header")],
                              height=140))
    return "<h2>Aeration</h2>" + "".join(charts)


def _wet_well(k, d: _Data) -> str:
    levels = [c for c in d.idx if c.endswith(".level_m")]
    bypass = [b for b in d.meta.get("bypass_streams", []) if d.has(f"{b}.Q_m3_d")]
    if not levels and not bypass:
        return ""
    charts = []
    if levels:
        charts.append(d.chart("Wet well level", "level [m]", [(c, c.split(".")[0]) for c in levels]))
    pumps = [c for c in d.idx if c.startswith("pump.") and c.endswith(".running")]
    if pumps:
        charts.append(d.chart("Pumps running", "pumps [count]", [(c, c.split(".")[1]) for c in pumps], height=150,
                              y_min=0.0))
    if bypass:
        charts.append(d.chart("Treatment bypass (wet-well overflow)", "flow [m3/d]",
                              [(f"{b}.Q_m3_d", b) for b in bypass], height=150, y_min=0.0))
    hyd = k.get("hydraulics") or {}
    note = (f"<p class='note'>Bypass in the evaluation window: {fmt(hyd.get('bypass_m3', 0.0))} m3 over "
            f"{fmt(hyd.get('bypass_hours', 0.0))} h.</p>") if bypass else ""
    return "<h2>Pumping station</h2>" + note + "".join(charts)


def _sludge(d: _Data) -> str:
    m = d.meta
    if not d.has("plant.solids_inventory_kg"):
        return ""
    inv = d.col("plant.solids_inventory_kg")
    charts = [line_chart(d.frame("Sludge inventory (suspended solids in the plant)", "solids [t]",
                               [Series(d.x, inv / 1000.0, "inventory")]))]
    waste, eff = m.get("waste_stream"), m.get("effluent_stream")
    note = ""
    if waste and eff and d.has(f"{waste}.Q_m3_d", f"{eff}.Q_m3_d", f"{waste}.TSS_g_m3", f"{eff}.TSS_g_m3"):
        out_kg_d = (d.col(f"{waste}.Q_m3_d") * d.col(f"{waste}.TSS_g_m3")
                    + d.col(f"{eff}.Q_m3_d") * d.col(f"{eff}.TSS_g_m3")) / 1000.0
        t_d = d.r.times_s / 86400.0
        # solids leaving, averaged over the preceding day (from the start during the first day)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (out_kg_d[1:] + out_kg_d[:-1]) * np.diff(t_d))])
        j = np.searchsorted(t_d, t_d - 1.0, side="left")
        span = t_d - t_d[j]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_out = np.where(span > 0, (cum - cum[j]) / span, out_kg_d)
            age = np.where(mean_out > 0, inv / mean_out, np.nan)
        charts.append(line_chart(d.frame("Sludge age (solids retention time)", "sludge age [d]",
                                       [Series(d.x, age, "inventory / solids leaving (wastage + effluent)")], y_min=0.0)))
        note = ("<p class='note'>Sludge age: the solids in the plant divided by the solids leaving it with the waste "
                "sludge and the effluent, averaged over the preceding 24 h (Metcalf &amp; Eddy's definition of the "
                "solids retention time).</p>")
    return "<h2>Sludge</h2>" + note + "".join(charts)


def _instruments(d: _Data) -> str:
    sensors = d.meta.get("sensors") or {}
    charts = [d.chart(f"{name[len('sensor.'):]}: {info['signal']}", f"[{info['unit']}]", [(name, "reading")], height=150)
              for name, info in sensors.items() if d.has(name)]
    return ("<h2>Instruments</h2><p class='note'>What the operators read: the instruments' readings "
            "(dynamics, noise, sampling) of the signals named.</p>" + "".join(charts)) if charts else ""


def _energy(s, k, d: _Data, currency) -> str:
    en = k.get("energy")
    b = k.get("bsm1")
    power = [c for c in d.idx if c.startswith("power.") and c.endswith("_kW")]
    if not en and not b:
        return ""
    out = ["<h2>Energy</h2>"]
    cur = currency or "currency of the tariff"
    if en:
        areas = _ordered(en["by_area"], ("aeration", "pumping", "mixing", "heating"))
        rows = [[a, fmt(v["kWh"]), fmt(v.get("mean_kW")), money(v.get("cost"), currency)] for a, v in areas]
        rows.append(["total", fmt(en["total_kWh"]), "", money(en["total_cost"], currency)])
        out.append("<h3>Metered energy of the machines</h3>"
                   f"<p class='note'>Blowers, pumps, mixers and heating, from their physics and operating point; "
                   f"cost at the tariff ({_e(cur)}).</p>"
                   + _grid(("area", "energy [kWh]", "mean power [kW]", f"cost [{cur}]"), rows))
        el, heat = en.get("electricity"), en.get("heat")
        extra = [("CO2 [kg]", fmt(en["co2_kg"]))]
        if el:
            extra.append(("electricity bought [kWh]", fmt(el["kWh"])))
        if heat:
            extra.append((f"heat source: {heat['source']} [kWh drawn]", fmt(heat["kWh"])))
        out.append(_table(extra))
    if power and d.r.values.shape[0] > 1:
        out.append(line_chart(d.frame("Power by area (interval means)", "power [kW]",
                                    [Series(d.x, d.col(c), c[len("power."):-len("_kW")], step=True) for c in power],
                                    y_min=0.0)))
        out.append(_hourly_power(d, power))
        cost = _cost_series(s, d, power)
        if cost is not None:
            out.append(line_chart(d.frame(f"Cumulative energy cost [{cur}]", f"cost [{cur}]",
                                        [Series(d.x, cost, "electricity and heat")], y_min=0.0)))
    if b:
        rows = [(f"{n} [{b['units'].get(n, '')}]", fmt(b[n])) for n in ("AE", "PE", "ME", "SP", "OCI")]
        note = ("<h3>BSM1 energy indices (benchmark formulas)</h3><p class='note'>The benchmark's aeration energy "
                "AE is a formula of the oxygen transfer rate (SO,sat V KLa / 1,800 per zone, that is 1.8 kg O2 per "
                "kWh assumed for every plant), its pumping energy PE a fixed kWh per m3 of each recycle. They rank "
                "control strategies on a common basis; they are not meter readings. ")
        if en and "aeration" in en["by_area"] and "window_d" in b:
            days = max(b["window_d"][1] - b["window_d"][0], 1e-12)
            note += (f"Here the metered aeration is {fmt(en['by_area']['aeration']['kWh'] / days)} kWh/d against AE "
                     f"{fmt(b['AE'])} kWh/d: the blowers, diffusers and valves of this plant transfer oxygen at their "
                     "own efficiency (depth, airflow per diffuser, blower efficiency, the weather), not at 1.8 kg "
                     "O2/kWh. ")
        out.append(note + "</p>" + _table(rows))
        if d.r.values.shape[0] > 1 and d.meta.get("reactors"):
            aer = np.zeros_like(d.x)
            for r in d.meta["reactors"].values():
                if d.has(r["kla_column"]):
                    aer = aer + r["SO_sat_g_m3"] * r["volume_m3"] * d.col(r["kla_column"]) / 1800.0 / 24.0
            ss = [Series(d.x, aer, "aeration (BSM1 AE basis)")]
            pump = [f * d.col(f"{sn}.Q_m3_d") for sn, f in d.meta.get("pumped_flows", {}).items() if d.has(f"{sn}.Q_m3_d")]
            if pump:
                ss.append(Series(d.x, sum(pump) / 24.0, "pumping (BSM1 PE basis)"))
            if "power.aeration_kW" in d.idx:
                ss.append(Series(d.x, d.col("power.aeration_kW"), "aeration, metered", step=True))
            out.append(line_chart(d.frame("BSM1 energy indices as power", "power [kW]", ss, y_min=0.0)))
    return "".join(out)


def _hourly_power(d: _Data, power: list[str]) -> str:
    """Mean power of each hour of the run (each hour of the day for runs over two days)."""
    t = d.r.times_s.astype(float)
    total = sum(d.col(c) for c in power)
    dt = np.diff(t)
    p = total[1:]  # each row's power covers the interval ending at that row
    if dt.size == 0:
        return ""
    if t[-1] - t[0] <= 2 * 86400:
        h = np.floor((t[:-1] - t[0]) / 3600.0).astype(int)
        labels = [f"{i}" for i in range(int(h.max()) + 1)]
        title, xl = "Mean power of each hour", "hour from the start"
    else:
        h = np.floor((t[:-1] % 86400) / 3600.0).astype(int)
        labels = [f"{i:02d}" for i in range(24)]
        title, xl = "Mean power by hour of day (whole run)", "hour of day (from midnight of day 0)"
    w = np.bincount(h, weights=dt, minlength=len(labels))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(w > 0, np.bincount(h, weights=p * dt, minlength=len(labels)) / w, np.nan)
    return bar_chart(title, labels, list(mean), "power [kW]", xl)


def _cost_series(s, d: _Data, power: list[str]) -> np.ndarray | None:
    """Cumulative cost over the run, priced as the energy KPIs price it (tariff for electricity,
    the fuel price for a fuel-fired heater)."""
    eq = s.equipment
    if eq is None:
        return None
    from pathlib import Path

    from twin.errors import ConfigError
    from twin.run import build_tariff

    base = d.meta.get("base_dir")
    try:
        tariff = build_tariff(eq.tariff, Path(base) if base else None)
    except (ConfigError, OSError, ValueError):
        return None
    t = d.r.times_s.astype(float)
    dt_h = np.diff(t) / 3600.0
    t_mid_d = 0.5 * (t[:-1] + t[1:]) / 86400.0
    price = tariff.price_at(t_mid_d)
    rows = slice(1, None)
    total = sum(d.col(c)[rows] for c in power)
    heat = d.col("power.heating_kW")[rows] if "power.heating_kW" in d.idx else np.zeros(dt_h.size)
    if eq.heating.source == "fuel":
        rate = (total - heat) * price + heat * eq.heating.fuel_price_per_kwh
    else:
        rate = total * price
    return np.concatenate([[0.0], np.cumsum(rate * dt_h)])


def _maintenance(k, d: _Data, result) -> str:
    mt = k.get("maintenance")
    if not mt:
        return ""
    cur = (mt.get("units") or {}).get("cost") or "currency of the cost data"
    out = ["<h2>Equipment fleet and maintenance</h2>"]
    head = ("type", "assets", "failures", "MTBF [h]", "MTTR [h]", "availability [%]", "downtime planned / unplanned [h]",
            "work orders prev. / corr.", f"cost labour / parts / downtime [{cur}]")
    rows = []
    for t, v in _ordered(mt["by_type"], tuple(t for t in sorted(mt["by_type"]) if t != "total") + ("total",)):
        c = v["cost"]
        av = v.get("availability")
        rows.append([t, fmt(v["assets"]), fmt(v["failures"]), fmt(v["MTBF_h"]) if v["MTBF_h"] is not None else "no failure",
                     fmt(v["MTTR_h"]) if v["MTTR_h"] is not None else "no repair",
                     fmt(100.0 * av, 2) if av is not None else "-",
                     f"{fmt(v['downtime_h']['planned'], 0)} / {fmt(v['downtime_h']['unplanned'], 0)}",
                     f"{fmt(v['work_orders']['preventive'])} / {fmt(v['work_orders']['corrective'])}",
                     f"{fmt(c['labour'], 0)} / {fmt(c['parts'], 0)} / {fmt(c['downtime'], 0)}"])
    out.append(_grid(head, rows))
    if mt.get("alarms"):
        out.append(_table([(f"alarms: {n}", fmt(v)) for n, v in sorted(mt["alarms"].items())]))
    pc = mt.get("process_consequences")
    if pc:
        out.append("<h3>Process consequences of outages</h3><p class='note'>Coincidence of effluent violations and "
                   "bypass with outages of process-coupled machines; compare with a baseline run for causation.</p>")
        out.append(_table([(key.replace("_", " "), fmt(v)) for key, v in sorted(pc.items()) if isinstance(v, (int, float))]))
    types_ = sorted(t for t in mt["by_type"] if t != "total")
    if types_:
        stacks = {part: [mt["by_type"][t]["cost"][part] for t in types_] for part in ("labour", "parts", "downtime")}
        out.append(hbar_chart(f"Maintenance cost by asset type [{cur}]", types_, stacks, f"cost [{cur}]"))
    fails = [e for e in result.events.records if e["kind"] == "failure"]
    if fails:
        types = sorted({e["data"]["type"] for e in fails})
        scale = 1.0 if d.days else 24.0
        t0_d = d.meta.get("main_start_s", 0) / 86400.0  # events count from the start of the warm-up
        rows_t = {t: [(e["time_d"] - t0_d) * scale for e in fails if e["data"]["type"] == t] for t in types}
        span = d.span_h / (24.0 if d.days else 1.0)
        out.append(timeline_chart("Failures", rows_t, d.x_label, (0.0, max(span, 1e-9)), d.days))
    return "".join(out)
