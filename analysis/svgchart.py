"""Small inline SVG charts for the HTML report: line, step and bar charts with axes, ticks,
limit lines and a legend, written as text.

Why not matplotlib: the report of every run drew three matplotlib figures, which cost about
2 s per run (import, layout, PNG encoding). These charts are strings built from numpy arrays
(a few milliseconds each), embed in the HTML as they are (one self-contained file, no
script, no network), scale with the page and print sharply. Long series are reduced to the
minimum and maximum of each of at most ``MAX_POINTS / 2`` buckets, so peaks stay visible and a
ten-year run draws as fast as a day.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np

MAX_POINTS = 1600
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
LIMIT_COLOUR = "#d62728"
W, H = 900, 220  # view box
ML, MR, MT, MB = 70, 20, 24, 38  # margins: left (y labels), right, top (title), bottom (x labels)


@dataclass
class Series:
    x: np.ndarray  # time in the chart's x unit
    y: np.ndarray
    label: str
    step: bool = False  # each value holds over the interval ending at its sample (interval means)
    dashed: bool = False
    colour: str | None = None


@dataclass
class Chart:
    title: str
    y_label: str
    x_label: str
    series: list[Series] = field(default_factory=list)
    limits: list[tuple[float, str]] = field(default_factory=list)  # horizontal lines: (value, label)
    height: int = H
    y_min: float | None = None  # e.g. 0 for flows and power
    x_days: bool = False  # the x axis counts days (ticks at whole days, weeks, months), else hours


def reduce(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: the minimum and the maximum of each bucket of consecutive
    samples, in time order (a bucket of missing values is left out)."""
    n = x.size
    if n <= max_points:
        return x, y
    m = -(-n // (max_points // 2))  # samples per bucket
    b = -(-n // m)
    pad = b * m - n
    lo = np.concatenate([np.where(np.isnan(y), np.inf, y), np.full(pad, np.inf)]).reshape(b, m)
    hi = np.concatenate([np.where(np.isnan(y), -np.inf, y), np.full(pad, -np.inf)]).reshape(b, m)
    base = np.arange(b) * m
    i = base + np.argmin(lo, axis=1)
    j = base + np.argmax(hi, axis=1)
    keep = np.unique(np.concatenate([i, j]))
    keep = keep[(keep < n) & np.isfinite(y[np.minimum(keep, n - 1)])]
    return x[keep], y[keep]


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) if lo else 1.0)
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + 1e-9 * step:
        ticks.append(0.0 if abs(v) < 1e-12 * step else v)
        v += step
    return ticks


def time_ticks(lo: float, hi: float, days: bool = False) -> list[float]:
    """Ticks for a time axis: in hours, whole hours at 1, 2, 3, 6, 12 h or whole days; in days,
    whole days, weeks, months (30 d), quarters or years."""
    span = hi - lo
    steps = (1, 2, 7, 14, 30, 60, 90, 180, 365, 730, 1825, 3650) if days else \
        (1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720, 1440, 2160, 4380, 8760, 17520, 43800)
    for step in steps:
        if span / step <= 9:
            break
    first = math.ceil(lo / step) * step
    return [float(v) for v in np.arange(first, hi + 1e-9, step)]


def tick_label(v: float, step: float) -> str:
    """A tick value in fixed notation with the decimals its step needs, thousands separated."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    if step > 0 and abs(step * 10 ** decimals - round(step * 10 ** decimals)) > 1e-6:
        decimals += 1
    return f"{v:,.{decimals}f}"


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def _legend(title: str, entries: list[tuple[str, str, bool]]) -> tuple[list[str], int]:
    """The title and the legend entries after it, wrapped into rows above the plot; returns the
    elements and the top margin they need."""
    out = [f"<text x='{ML}' y='15' class='ct'>{_esc(title)}</text>"]
    x, y = ML + 7.2 * len(title) + 24, 15
    for label, colour, dashed in entries:
        width = 30 + 6.2 * len(label)
        if x + width > W - MR:
            x, y = ML, y + 15
        dash = " stroke-dasharray='5 3'" if dashed else ""
        out.append(f"<line x1='{x:.0f}' x2='{x + 18:.0f}' y1='{y - 4}' y2='{y - 4}' stroke='{colour}' "
                   f"stroke-width='2'{dash}/><text x='{x + 22:.0f}' y='{y}'>{_esc(label)}</text>")
        x += width
    return out, y + 9


def line_chart(chart: Chart) -> str:
    """The chart as an ``<svg>`` element (width follows the page)."""
    h = chart.height
    drawn = [(s, *reduce(np.asarray(s.x, float), np.asarray(s.y, float))) for s in chart.series if np.asarray(s.x).size]
    finite = [y[np.isfinite(y)] for _, _, y in drawn]
    ys = np.concatenate(finite) if finite else np.zeros(0)
    if ys.size == 0:
        return f"<p class='note'>{_esc(chart.title)}: no data recorded.</p>"
    entries = [(label, LIMIT_COLOUR, True) for _, label in chart.limits]
    entries += [(s.label, s.colour or COLOURS[k % len(COLOURS)], s.dashed) for k, (s, _, _) in enumerate(drawn)]
    head, mt = _legend(chart.title, entries)
    pw, ph = W - ML - MR, h - mt - MB
    lim_vals = [v for v, _ in chart.limits]
    y_lo = float(min(ys.min(), *lim_vals)) if lim_vals else float(ys.min())
    y_hi = float(max(ys.max(), *lim_vals)) if lim_vals else float(ys.max())
    if chart.y_min is not None:
        y_lo = min(chart.y_min, y_lo)
    if y_hi - y_lo < 1e-12 * max(abs(y_hi), 1.0):  # a constant: an axis around it (from y_min when given)
        pad = max(abs(y_hi) * 0.05, 1.0 if chart.y_min is not None else 1e-3)
        y_lo, y_hi = (y_lo, y_hi + pad) if chart.y_min is not None else (y_lo - pad, y_hi + pad)
    else:
        y_hi += 0.04 * (y_hi - y_lo)  # headroom: the highest value does not run along the frame
    yt = nice_ticks(y_lo, y_hi)
    step = yt[1] - yt[0] if len(yt) > 1 else 1.0
    if yt:
        y_lo, y_hi = min(y_lo, yt[0]), max(y_hi, yt[-1])
    x_lo = float(min(float(np.min(x)) for _, x, _ in drawn))
    x_hi = float(max(float(np.max(x)) for _, x, _ in drawn))
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    xt = time_ticks(x_lo, x_hi, chart.x_days)

    def sx(v):
        return ML + (v - x_lo) / (x_hi - x_lo) * pw

    def sy(v):
        return mt + (y_hi - v) / (y_hi - y_lo) * ph

    out = [f"<svg class='chart' viewBox='0 0 {W} {h}' role='img' aria-label='{_esc(chart.title)}' "
           f"xmlns='http://www.w3.org/2000/svg'>", f"<title>{_esc(chart.title)}</title>", *head,
           f"<rect x='{ML}' y='{mt}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>"]
    for v in yt:
        y = sy(v)
        out.append(f"<line x1='{ML}' x2='{ML + pw}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>"
                   f"<text x='{ML - 4}' y='{y + 4:.1f}' text-anchor='end'>{tick_label(v, step)}</text>")
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
    for v in xt:
        x = sx(v)
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{mt}' y2='{mt + ph}' stroke='#eee'/>"
                   f"<text x='{x:.1f}' y='{mt + ph + 14}' text-anchor='middle'>{tick_label(v, xstep)}</text>")
    out.append(f"<text x='{ML + pw / 2:.0f}' y='{h - 6}' text-anchor='middle'>{_esc(chart.x_label)}</text>")
    out.append(f"<text transform='translate(14 {mt + ph / 2:.0f}) rotate(-90)' text-anchor='middle'>"
               f"{_esc(chart.y_label)}</text>")
    for v, _ in chart.limits:
        y = sy(v)
        out.append(f"<line x1='{ML}' x2='{ML + pw}' y1='{y:.1f}' y2='{y:.1f}' stroke='{LIMIT_COLOUR}' "
                   "stroke-dasharray='6 4'/>")
    for k, (s, x, y) in enumerate(drawn):
        colour = s.colour or COLOURS[k % len(COLOURS)]
        ok = np.isfinite(y)
        starts = ok & ~np.concatenate([[False], ok[:-1]])  # first point after a gap: move, do not draw
        pxs = ML + (x - x_lo) / (x_hi - x_lo) * pw
        pys = mt + (y_hi - y) / (y_hi - y_lo) * ph
        draw = "V{1:.1f}H{0:.1f}" if s.step else "L{0:.1f},{1:.1f}"
        pts = [("M{0:.1f},{1:.1f}" if st else draw).format(px, py)
               for px, py, st in zip(pxs[ok].tolist(), pys[ok].tolist(), starts[ok].tolist())]
        dash = " stroke-dasharray='5 3'" if s.dashed else ""
        out.append(f"<path d='{''.join(pts)}' fill='none' stroke='{colour}' stroke-width='1.3'{dash}/>")
    out.append("</svg>")
    return "".join(out)


def bar_chart(title: str, labels: list[str], values: list[float], y_label: str, x_label: str,
              colour: str = COLOURS[0], height: int = H) -> str:
    """Vertical bars (e.g. the mean power of each hour), labels under the bars."""
    pw, ph = W - ML - MR, height - MT - MB
    vals = np.asarray(values, float)
    if vals.size == 0 or not np.isfinite(vals).any():
        return f"<p class='note'>{_esc(title)}: no data recorded.</p>"
    hi = float(np.nanmax(vals))
    yt = nice_ticks(0.0, hi if hi > 0 else 1.0)
    y_hi = max(yt[-1], hi) if yt else max(hi, 1.0)
    step = yt[1] - yt[0] if len(yt) > 1 else 1.0
    bw = pw / vals.size
    out = [f"<svg class='chart' viewBox='0 0 {W} {height}' role='img' aria-label='{_esc(title)}' "
           f"xmlns='http://www.w3.org/2000/svg'><title>{_esc(title)}</title>",
           f"<text x='{ML}' y='15' class='ct'>{_esc(title)}</text>",
           f"<rect x='{ML}' y='{MT}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>"]
    for v in yt:
        y = MT + (y_hi - v) / y_hi * ph
        out.append(f"<line x1='{ML}' x2='{ML + pw}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>"
                   f"<text x='{ML - 4}' y='{y + 4:.1f}' text-anchor='end'>{tick_label(v, step)}</text>")
    every = max(1, math.ceil(vals.size / 24))
    for i, (lab, v) in enumerate(zip(labels, vals)):
        x = ML + i * bw
        if math.isfinite(v):
            y = MT + (y_hi - v) / y_hi * ph
            out.append(f"<rect x='{x + 0.1 * bw:.1f}' y='{y:.1f}' width='{0.8 * bw:.1f}' height='{MT + ph - y:.1f}' "
                       f"fill='{colour}'><title>{_esc(lab)}: {v:,.1f}</title></rect>")
        if i % every == 0:
            out.append(f"<text x='{x + bw / 2:.1f}' y='{MT + ph + 14}' text-anchor='middle'>{_esc(lab)}</text>")
    out.append(f"<text x='{ML + pw / 2:.0f}' y='{height - 6}' text-anchor='middle'>{_esc(x_label)}</text>")
    out.append(f"<text transform='translate(14 {MT + ph / 2:.0f}) rotate(-90)' text-anchor='middle'>"
               f"{_esc(y_label)}</text></svg>")
    return "".join(out)


def hbar_chart(title: str, labels: list[str], stacks: dict[str, list[float]], x_label: str) -> str:
    """Horizontal stacked bars, one row per label (e.g. maintenance cost by asset type)."""
    n = len(labels)
    left_m = 150
    height = MT + MB + 18 * n + 10
    pw, ph = W - left_m - MR, 18 * n + 10
    totals = np.sum([np.asarray(v, float) for v in stacks.values()], axis=0) if stacks else np.zeros(n)
    hi = float(np.max(totals)) if n else 0.0
    xt = nice_ticks(0.0, hi if hi > 0 else 1.0)
    x_hi = max(xt[-1], hi) if xt else max(hi, 1.0)
    step = xt[1] - xt[0] if len(xt) > 1 else 1.0
    out = [f"<svg class='chart' viewBox='0 0 {W} {height}' role='img' aria-label='{_esc(title)}' "
           f"xmlns='http://www.w3.org/2000/svg'><title>{_esc(title)}</title>",
           f"<text x='{left_m}' y='15' class='ct'>{_esc(title)}</text>",
           f"<rect x='{left_m}' y='{MT}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>"]
    for v in xt:
        x = left_m + v / x_hi * pw
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{MT}' y2='{MT + ph}' stroke='#eee'/>"
                   f"<text x='{x:.1f}' y='{MT + ph + 14}' text-anchor='middle'>{tick_label(v, step)}</text>")
    left = np.zeros(n)
    for k, (name, vals) in enumerate(stacks.items()):
        colour = COLOURS[k % len(COLOURS)]
        for i, v in enumerate(vals):
            if v > 0:
                out.append(f"<rect x='{left_m + left[i] / x_hi * pw:.1f}' y='{MT + 5 + 18 * i}' "
                           f"width='{v / x_hi * pw:.1f}' height='14' fill='{colour}'>"
                           f"<title>{_esc(labels[i])} {_esc(name)}: {v:,.0f}</title></rect>")
        left += np.asarray(vals, float)
        out.append(f"<rect x='{left_m + 8 + 110 * k}' y='{height - 16}' width='10' height='10' fill='{colour}'/>"
                   f"<text x='{left_m + 22 + 110 * k}' y='{height - 7}'>{_esc(name)}</text>")
    for i, lab in enumerate(labels):
        out.append(f"<text x='{left_m - 4}' y='{MT + 16 + 18 * i}' text-anchor='end'>{_esc(lab)}</text>")
    out.append(f"<text x='{left_m + pw:.0f}' y='{height - 7}' text-anchor='end'>{_esc(x_label)}</text></svg>")
    return "".join(out)


def timeline_chart(title: str, rows: dict[str, list[float]], x_label: str, x_range: tuple[float, float],
                   x_days: bool = False) -> str:
    """One row of tick marks per label (e.g. failures by asset type over time)."""
    labels = list(rows)
    left_m = 150
    height = MT + MB + 18 * len(labels) + 10
    pw, ph = W - left_m - MR, 18 * len(labels) + 10
    x_lo, x_hi = x_range
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    xt = time_ticks(x_lo, x_hi, x_days)
    step = xt[1] - xt[0] if len(xt) > 1 else 1.0
    out = [f"<svg class='chart' viewBox='0 0 {W} {height}' role='img' aria-label='{_esc(title)}' "
           f"xmlns='http://www.w3.org/2000/svg'><title>{_esc(title)}</title>",
           f"<text x='{left_m}' y='15' class='ct'>{_esc(title)}</text>",
           f"<rect x='{left_m}' y='{MT}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>"]
    for v in xt:
        x = left_m + (v - x_lo) / (x_hi - x_lo) * pw
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{MT}' y2='{MT + ph}' stroke='#eee'/>"
                   f"<text x='{x:.1f}' y='{MT + ph + 14}' text-anchor='middle'>{tick_label(v, step)}</text>")
    for i, lab in enumerate(labels):
        y = MT + 5 + 18 * i
        out.append(f"<text x='{left_m - 4}' y='{y + 11}' text-anchor='end'>{_esc(lab)}</text>")
        for t in rows[lab]:
            x = left_m + (t - x_lo) / (x_hi - x_lo) * pw
            out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{y}' y2='{y + 14}' stroke='{COLOURS[i % len(COLOURS)]}' "
                       "stroke-width='2'/>")
    out.append(f"<text x='{left_m + pw / 2:.0f}' y='{height - 6}' text-anchor='middle'>{_esc(x_label)}</text></svg>")
    return "".join(out)
