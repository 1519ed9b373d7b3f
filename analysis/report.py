"""HTML report of one run: KPI tables and plots (embedded PNG), readable offline in any browser."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from analysis.bsm1 import LIMITS, effluent_quantities


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def write_report(path, result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = result.metadata
    idx = {c: i for i, c in enumerate(result.columns)}
    t_d = result.times_s / 86400.0
    s = result.scenario
    parts = [f"<h1>{html.escape(s.name)}</h1><p>{html.escape(s.description)}</p>"]
    k = result.kpis
    b = k.get("bsm1")
    if b:
        parts.append(f"<h2>BSM1 evaluation, days {b['window_d'][0]:g}&ndash;{b['window_d'][1]:g}</h2>")
        parts.append(_table([(f"{n} [{b['units'].get(n, '')}]", b[n]) for n in ("EQI", "AE", "PE", "ME", "SP", "OCI")]))
        parts.append("<h3>Flow-weighted effluent averages (g/m3)</h3>")
        parts.append(_table(list(b["effluent_avg"].items())))
        parts.append("<h3>Effluent limits</h3>")
        parts.append(_table([(f"{n} > {v['limit']:g} g/m3", f"{v['pct_time']:.2f} % of time, {v['occasions']} occasions")
                             for n, v in b["violations"].items()]))
    ctl = k.get("control")
    if ctl:
        parts.append("<h3>Control loops (true process value; evaluation window)</h3>")
        head = "<tr><th>loop</th><th>IAE</th><th>ISE</th><th>max |e|</th><th>% saturated</th><th>retunes</th>" \
               "<th>K</th><th>Ti [d]</th><th>PM [deg]</th><th>Ms</th></tr>"
        rows = []
        for name, c in ctl.items():
            g = c.get("final_gains", {})
            m = c.get("margins") or {}
            cells = [name, c.get("IAE"), c.get("ISE"), c.get("max_abs_error"), c.get("pct_time_saturated"),
                     c.get("retunes"), g.get("K"), g.get("Ti_d"), m.get("phase_margin_deg"), m.get("Ms")]
            rows.append("<tr>" + "".join(f"<td>{html.escape(_fmt(v)) if v is not None else '-'}</td>" for v in cells)
                        + "</tr>")
        parts.append(f"<table>{head}{''.join(rows)}</table>")
    en = k.get("energy")
    if en:
        parts.append("<h3>Energy (equipment)</h3>")
        rows = [(f"{a} [kWh]", v["kWh"]) for a, v in en["by_area"].items()]
        rows += [("total [kWh]", en["total_kWh"]), ("cost", en["total_cost"]), ("kWh per m3 treated", en["kWh_per_m3"]),
                 ("peak (hourly mean) [kW]", en["peak_kW"]), ("CO2 [kg]", en["co2_kg"])]
        parts.append(_table(rows))
        parts.append("<h3>Mean power by hour of day [kW]</h3>")
        parts.append(_table([(f"{h:02d}:00", v) for h, v in enumerate(en["hourly_profile_kW"])]))
    mt = k.get("maintenance")
    if mt:
        parts.append("<h2>Equipment fleet and maintenance</h2>")
        head = ("<tr><th>type</th><th>assets</th><th>failures</th><th>MTBF [h]</th><th>MTTR [h]</th>"
                "<th>availability</th><th>downtime planned / unplanned [h]</th><th>work orders prev. / corr.</th>"
                "<th>cost labour / parts / downtime</th></tr>")
        rows = []
        for t, v in mt["by_type"].items():
            c = v["cost"]
            cells = [t, v["assets"], v["failures"], v["MTBF_h"], v["MTTR_h"], v["availability"],
                     f"{v['downtime_h']['planned']:.0f} / {v['downtime_h']['unplanned']:.0f}",
                     f"{v['work_orders']['preventive']} / {v['work_orders']['corrective']}",
                     f"{c['labour']:.0f} / {c['parts']:.0f} / {c['downtime']:.0f}"]
            rows.append("<tr>" + "".join(f"<td>{html.escape(_fmt(x)) if x is not None else '-'}</td>" for x in cells)
                        + "</tr>")
        parts.append(f"<table>{head}{''.join(rows)}</table>")
        if mt.get("alarms"):
            parts.append(_table([(f"alarms: {n}", v) for n, v in mt["alarms"].items()]))
        pc = mt.get("process_consequences")
        if pc:
            parts.append("<h3>Process consequences of outages</h3><p>Coincidence of effluent violations and "
                         "bypass with outages of process-coupled machines; compare with a baseline run for "
                         "causation.</p>")
            parts.append(_table([(k.replace("_", " "), v) for k, v in pc.items() if isinstance(v, (int, float))]))
        types_ = [t for t in mt["by_type"] if t != "total"]
        if types_:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 0.35 * len(types_) + 1.5))
            av = [mt["by_type"][t]["availability"] or 0.0 for t in types_]
            ax1.barh(types_, [100 * a for a in av])
            ax1.set_xlim(min(100 * min(av) - 1, 99), 100)
            ax1.set_xlabel("availability [%]")
            left = np.zeros(len(types_))
            for part in ("labour", "parts", "downtime"):
                vals = np.array([mt["by_type"][t]["cost"][part] for t in types_])
                ax2.barh(types_, vals, left=left, label=part)
                left += vals
            ax2.set_xlabel("maintenance cost")
            ax2.set_yticks([])
            ax2.legend(fontsize=8)
            parts.append(f"<img src='data:image/png;base64,{_png(fig)}'>")
            plt.close(fig)
        fails = [e for e in result.events.records if e["kind"] == "failure"]
        if fails:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            types = sorted({e["data"]["type"] for e in fails})
            fig, ax = plt.subplots(figsize=(9, 0.4 * len(types) + 1.2))
            for j, t in enumerate(types):
                xs = [e["time_d"] for e in fails if e["data"]["type"] == t]
                ax.plot(xs, [j] * len(xs), "|", ms=12)
            ax.set_yticks(range(len(types)), types, fontsize=8)
            ax.set_xlabel("time [d]")
            ax.set_title("failure timeline", fontsize=9)
            parts.append(f"<img src='data:image/png;base64,{_png(fig)}'>")
            plt.close(fig)
    hyd = k.get("hydraulics")
    if hyd and hyd.get("bypass_m3"):
        parts.append(_table([("treatment bypass [m3]", hyd["bypass_m3"]), ("bypass duration [h]", hyd["bypass_hours"])]))
    run = k.get("run", {})
    parts.append("<h3>Run</h3>" + _table(list(run.items())))

    if result.values.shape[0] > 1 and meta.get("effluent_stream"):
        def col(name):
            return result.values[:, idx[name]]
        eff = effluent_quantities(col, meta["effluent_stream"], meta["f_P"], meta["i_XB"], meta["i_XP"])
        fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
        for ax, key, label in zip(axes, ("SNH", "Ntot", "TSS"), ("SNH", "total N", "TSS")):
            ax.plot(t_d, eff[key], lw=1, label=f"effluent {label}")
            ax.axhline(LIMITS[key], color="r", ls="--", lw=1, label=f"limit {LIMITS[key]:g} g/m3")
            ax.set_ylabel(f"{label} [g/m3]")
            ax.legend(loc="upper right", fontsize=8)
        axes[-1].set_xlabel("time [d]")
        parts.append(f"<h2>Effluent against limits</h2><img src='data:image/png;base64,{_png(fig)}'>")
        plt.close(fig)

        loops = meta.get("controllers", {})
        if loops:
            fig, axes = plt.subplots(len(loops), 1, figsize=(9, 2.8 * len(loops)), sharex=True, squeeze=False)
            for ax, (name, info) in zip(axes[:, 0], loops.items()):
                ax.plot(t_d, col(f"control.{name}.measurement"), lw=0.8, label="measurement")
                ax.plot(t_d, col(f"control.{name}.setpoint"), "r--", lw=1, label="setpoint")
                ax.set_ylabel(f"{info['measurement']} [{info['measurement_unit']}]", fontsize=8)
                ax2 = ax.twinx()
                ax2.plot(t_d, col(f"control.{name}.output"), color="0.6", lw=0.7, label="actuator")
                ax2.set_ylabel(f"{info['actuator']} [{info['actuator_unit']}]", fontsize=8)
                ax.set_title(name, fontsize=9)
                ax.legend(loc="upper left", fontsize=8)
                ax2.legend(loc="upper right", fontsize=8)
            axes[-1, 0].set_xlabel("time [d]")
            parts.append(f"<h2>Control loops</h2><img src='data:image/png;base64,{_png(fig)}'>")
            plt.close(fig)

        sensors = meta.get("sensors") or {}
        if sensors:
            fig, axes = plt.subplots(len(sensors), 1, figsize=(9, 2.2 * len(sensors)), sharex=True, squeeze=False)
            for ax, (name, info) in zip(axes[:, 0], sensors.items()):
                ax.plot(t_d, col(name), lw=0.8, label=f"{name} ({info['signal']})")
                ax.set_ylabel(info["unit"], fontsize=8)
                ax.legend(loc="upper right", fontsize=8)
            axes[-1, 0].set_xlabel("time [d]")
            parts.append(f"<h2>Instruments</h2><img src='data:image/png;base64,{_png(fig)}'>")
            plt.close(fig)

        fig, ax = plt.subplots(figsize=(9, 3))
        power_cols = [c for c in result.columns if c.startswith("power.")]
        if power_cols:
            for c in power_cols:
                ax.step(t_d, col(c), where="pre", lw=1, label=c[len("power."):].replace("_kW", ""))
            ax.set_ylabel("power [kW] (interval mean)")
            ax.set_xlabel("time [d]")
            ax.legend(fontsize=8)
            parts.append(f"<h2>Energy</h2><p>Metered power of the machines (blowers, pumps, mixers, "
                         f"heating).</p><img src='data:image/png;base64,{_png(fig)}'>")
            plt.close(fig)
            fig, ax = plt.subplots(figsize=(9, 3))
        aer = np.zeros_like(t_d)
        for r in meta["reactors"].values():
            aer += r["SO_sat_g_m3"] * r["volume_m3"] * col(r["kla_column"]) / 1800.0 / 24.0
        pump = sum(f * col(f"{sname}.Q_m3_d") for sname, f in meta["pumped_flows"].items()) / 24.0
        ax.plot(t_d, aer, lw=1, label="aeration (BSM1 AE basis)")
        ax.plot(t_d, pump, lw=1, label="pumping (BSM1 PE basis)")
        ax.set_ylabel("power [kW]")
        ax.set_xlabel("time [d]")
        ax.legend(fontsize=8)
        heading = "<h3>BSM1 energy indices</h3>" if power_cols else "<h2>Energy</h2>"
        parts.append(f"{heading}<p>BSM1's aeration and pumping energy indices (AE, PE): the benchmark's "
                     "formulas from KLa and pumped flows, for comparison between control strategies; the "
                     "metered energy above is what the machines use.</p>"
                     f"<img src='data:image/png;base64,{_png(fig)}'>")
        plt.close(fig)

    style = ("body{font-family:sans-serif;max-width:960px;margin:auto}table{border-collapse:collapse}"
             "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(s.name)}</title>"
                    f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
