"""The study report: one self-contained HTML file (charts embedded as PNG) from a study's summary.

Reads only ``study.json``'s content (``twin.study.summarise`` and ``sensitivity``): savings with
their intervals and the replications behind them, how the interval narrows as replications are
added, the cash flows with the payback, the sensitivity charts (tornado, Morris, Sobol), and the
specification's claims beside the simulated figures, labelled "claimed".
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

# figures shown in the savings chart, in this order, when the study has them
CHART_METRICS = ("total_cost_per_year", "maintenance_cost_per_year", "electricity_cost_per_year",
                 "unplanned_downtime_h_per_year", "downtime_h_per_year", "failures_per_year",
                 "hours_above_limits_per_year", "electricity_kWh_per_year")

CSS = ("body{font-family:sans-serif;max-width:1100px;margin:1em auto;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}"
       "th{background:#eee}td:first-child{text-align:left}.claimed{color:#a0522d;font-style:italic}"
       "img{max-width:100%}.note{color:#555;font-size:90%}")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return f"<img alt='chart' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _fmt(x: Any) -> str:
    if isinstance(x, (list, tuple)):
        return " – ".join(_fmt(v) for v in x)
    if x is None:
        return "—"
    if isinstance(x, float) and not math.isfinite(x):
        return "n/a"
    if isinstance(x, (int, float)):
        return f"{x:,.3g}" if abs(x) < 10 else f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.1f}"
    return html.escape(str(x))


def _label(metric: str) -> str:
    return metric.replace("_per_year", " / year").replace("_h", " [h]").replace("_kWh", " [kWh]").replace("_", " ")


def _savings_chart(summary: dict, plt) -> str:
    diffs = summary["savings_against_baseline"]
    arms = list(diffs)
    metrics = [m for m in CHART_METRICS if all(m in diffs[a] for a in arms)]
    if not metrics:
        return ""
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 0.55 * len(arms) * rows + 1.6 * rows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        for i, arm in enumerate(arms):
            d = diffs[arm][m]
            lo, hi = d["ci"]
            ax.errorbar([d["mean"]], [i], xerr=[[d["mean"] - lo], [hi - d["mean"]]], fmt="o", color="C0", capsize=4)
            per = np.asarray(d["per_replication"])
            jitter = (np.arange(per.size) % 5 - 2) * 0.06
            ax.plot(per, i + 0.25 + jitter, ".", color="0.6", ms=3)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_yticks(range(len(arms)), arms)
        ax.set_ylim(-0.6, len(arms) - 0.1)
        ax.set_title(_label(m), fontsize=9)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(f"saving against {summary['baseline']}: mean and {100 * summary['confidence']:g} % interval "
                 "(dot and bar), one grey point per replication", fontsize=9)
    fig.tight_layout()
    out = _png(fig)
    plt.close(fig)
    return out


def _width_chart(summary: dict, plt) -> str:
    diffs = summary["savings_against_baseline"]
    series = [(arm, m, w) for arm, d in diffs.items() for m, w in d.get("_interval_width_by_replications", {}).items()
              if len(w) >= 2]
    if not series:
        return ""
    metrics = sorted({m for _, m, _ in series})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        for arm, mm, w in series:
            if mm == m:
                n = [int(k) for k in w]
                ax.plot(n, list(w.values()), "o-", label=arm)
        ax.set_xlabel("replications")
        ax.set_ylabel("interval width")
        ax.set_title(_label(m), fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = _png(fig)
    plt.close(fig)
    return out


def _cash_flow_chart(summary: dict, plt) -> str:
    from analysis.economics import Investment, cash_flows

    e = summary["economics"]
    i = e["inputs"]
    inv = Investment(i["investment"], i["running_cost_per_year"], i["rate"], i["horizon_years"])
    years = np.arange(inv.horizon_years + 1)
    disc = (1 + inv.rate) ** -years
    lo, hi = summary["savings_against_baseline"][i["arm"]]["total_cost_per_year"]["ci"]
    flows = cash_flows(inv, e["savings_per_year"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(years, flows, color=["C3" if f < 0 else "C2" for f in flows], alpha=0.5, label="cash flow of the year")
    ax.plot(years, np.cumsum(flows), "k-o", ms=3, label="cumulative")
    ax.plot(years, np.cumsum(flows * disc), "C0--", label=f"cumulative, discounted at {100 * inv.rate:g} % (NPV)")
    ax.fill_between(years, np.cumsum(cash_flows(inv, lo) * disc), np.cumsum(cash_flows(inv, hi) * disc), color="C0",
                    alpha=0.15, label="discounted, saving at its interval's ends")
    pb = e["point"]["payback_years"]
    if math.isfinite(pb):
        ax.axvline(pb, color="C1", lw=1)
        ax.annotate(f"payback {12 * pb:.1f} months", (pb, 0), xytext=(4, 6), textcoords="offset points", fontsize=8)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("year")
    ax.set_ylabel(i.get("currency", ""))
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = _png(fig)
    plt.close(fig)
    return out


def _tornado_chart(rows: list[dict], base: float, title: str, plt) -> str:
    rows = rows[::-1]  # largest swing on top
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    for k, r in enumerate(rows):
        lo, hi = r["output_at_low"] - base, r["output_at_high"] - base
        ax.barh(k, lo, left=base, color="C0", label="input at low" if k == 0 else None)
        ax.barh(k, hi, left=base, color="C3", alpha=0.7, label="input at high" if k == 0 else None)
    ax.set_yticks(range(len(rows)), [f"{r['input']} [{_fmt(r['low'])}, {_fmt(r['high'])}]" for r in rows], fontsize=8)
    ax.axvline(base, color="k", lw=0.8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = _png(fig)
    plt.close(fig)
    return out


def _indices_chart(s: dict, plt) -> str:
    names = list(s["sobol"]["indices"])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 0.4 * len(names) + 1.6))
    y = np.arange(len(names))
    sob = s["sobol"]["indices"]
    a1.barh(y - 0.2, [sob[n]["S1"] for n in names], 0.4, xerr=[sob[n]["S1_conf"] for n in names], label="first order S1")
    a1.barh(y + 0.2, [sob[n]["ST"] for n in names], 0.4, xerr=[sob[n]["ST_conf"] for n in names], label="total ST")
    a1.set_yticks(y, names, fontsize=8)
    a1.set_xlabel("Sobol index (share of the output's variance)")
    a1.legend(fontsize=7)
    mo = s["morris"]["indices"]
    a2.scatter([mo[n]["mu_star"] for n in names], [mo[n]["sigma"] for n in names])
    for n in names:
        a2.annotate(n, (mo[n]["mu_star"], mo[n]["sigma"]), fontsize=7)
    a2.set_xlabel("Morris mu* (mean |effect| over the range)")
    a2.set_ylabel("Morris sigma")
    fig.tight_layout()
    out = _png(fig)
    plt.close(fig)
    return out


def _sensitivity_part(s: dict, plt) -> list[str]:
    esc_ = html.escape
    out = [f"<h2>Sensitivity of {html.escape(s['output'])} (arm {html.escape(s['arm'])})</h2>",
           f"<p class=note>{html.escape(s['note'])}.</p>"]
    if "error" in s:
        out.append(f"<p>Not analysed: {html.escape(s['error'])}</p>")
    if "tornado" in s:
        t = s["tornado"]
        out.append("<h3>Tornado (one at a time)</h3>")
        out.append(_tornado_chart(t["rows"], t["base"], f"{s['output']}: base {_fmt(t['base'])}", plt))
    for method, why in s.get("errors", {}).items():
        out.append(f"<p>{esc_(method)} not computed: {esc_(why)}</p>")
    if "sobol" in s and "morris" in s:
        so, mo = s["sobol"], s["morris"]
        out.append(f"<h3>Sobol indices and Morris screening</h3><p class=note>{html.escape(so['method'])}, "
                   f"{so['evaluations']} evaluations; {html.escape(mo['method'])}, {mo['evaluations']} evaluations; "
                   "inputs uniform over their ranges; bars: bootstrap half-widths.</p>")
        out.append(_indices_chart(s, plt))
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{_fmt(v['S1'])} ± {_fmt(v['S1_conf'])}</td>"
                       f"<td>{_fmt(v['ST'])} ± {_fmt(v['ST_conf'])}</td><td>{_fmt(mo['indices'][n]['mu_star'])}</td>"
                       f"<td>{_fmt(mo['indices'][n]['sigma'])}</td></tr>" for n, v in so["indices"].items())
        out.append("<table><tr><th>input</th><th>Sobol S1</th><th>Sobol ST</th><th>Morris mu*</th>"
                   f"<th>Morris sigma</th></tr>{rows}</table>")
    sim = s.get("simulated")
    if sim:
        out.append(f"<h3>Simulated inputs (new runs)</h3><p class=note>{html.escape(sim['note'])}; seeds "
                   f"{', '.join(map(str, sim['seeds']))}; {sim['runs']} runs.</p>")
        out.append(_tornado_chart(sim["rows"], sim["base"], f"{s['output']}: base {_fmt(sim['base'])}", plt))
    return out


def render_study_report(summary: dict) -> str:
    """The study's report: one HTML document, no external resources."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = summary["baseline"]
    esc = html.escape
    parts = [f"<h1>Study {esc(summary['name'])}</h1>",
             f"<p>{summary['replications']} replications per arm (seeds {summary['seeds'][0]}–{summary['seeds'][-1]}, "
             f"common random numbers); intervals: {100 * summary['confidence']:g} % percentile bootstrap of the mean. "
             f"Savings are the baseline (<b>{esc(base)}</b>) minus the arm: positive is a saving. Every figure is "
             "simulated except those labelled <span class=claimed>claimed</span>.</p>",
             "<h2>Savings with their intervals</h2>", _savings_chart(summary, plt),
             "<h2>Interval width against the number of replications</h2>", _width_chart(summary, plt)]
    for arm, d in summary["savings_against_baseline"].items():
        parts.append(f"<h3>{esc(arm)} against {esc(base)}</h3><table>"
                     "<tr><th>figure</th><th>baseline</th><th>arm</th><th>saving (mean)</th><th>interval</th></tr>")
        for m, v in d.items():
            if not m.startswith("_"):
                parts.append(f"<tr><td>{esc(m)}</td><td>{_fmt(summary['arms'][base][m]['mean'])}</td>"
                             f"<td>{_fmt(summary['arms'][arm][m]['mean'])}</td><td>{_fmt(v['mean'])}</td>"
                             f"<td>{_fmt(v['ci'])}</td></tr>")
        parts.append("</table>")
    e = summary.get("economics")
    if e:
        i = e["inputs"]
        parts.append(f"<h2>Economics of {esc(i['arm'])}</h2><p class=note>{esc(e['note'])}. Inputs from the study "
                     f"file: investment {_fmt(i['investment'])}, running cost {_fmt(i['running_cost_per_year'])} per "
                     f"year, rate {100 * i['rate']:g} %, {i['horizon_years']} years ({esc(i['currency'])}).</p>")
        parts.append(_cash_flow_chart(summary, plt))
        rows = "".join(f"<tr><td>{esc(k)}</td><td>{_fmt(v)}</td><td>{_fmt(e['ci'][k])}</td></tr>"
                       for k, v in e["point"].items())
        parts.append(f"<table><tr><th>figure</th><th>simulated</th><th>interval</th></tr>{rows}</table>")
    if summary.get("sensitivity"):
        parts += _sensitivity_part(summary["sensitivity"], plt)
    parts.append("<h2>Specification claims against simulated figures</h2><table><tr><th>figure</th>"
                 "<th class=claimed>claimed</th><th>simulated</th><th>interval</th></tr>")
    for r in summary.get("claims", []):
        claimed = "—" if r["claimed"] is None else f"{_fmt(r['claimed'])} (claimed)"
        parts.append(f"<tr><td>{esc(r['figure'])}</td><td class=claimed>{claimed}</td>"
                     f"<td>{_fmt(r['simulated'])}</td><td>{_fmt(r['interval'])}</td></tr>")
    parts.append("</table>")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>study {esc(summary['name'])}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")


def write_study_report(summary: dict, path: str | Path) -> None:
    """Write the report next to ``path`` and rename it into place (never half-written)."""
    import os

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_study_report(summary))
    os.replace(tmp, path)
