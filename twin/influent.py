"""Influent data: constant, BSM1 test files, a user's CSV, and a seeded synthetic generator.

Every source becomes an :class:`InfluentTable`: sample times (s, from the start of its
phase) and a matrix of the influent unit's inputs (flow in m3/d and the 13 ASM1
concentrations in g/m3). The table is replayed by a SimPy process that sets the inputs
at each sample, holding them (``hold``) or ramping linearly to the next sample
(``linear``); the integrator sees the ramp exactly, so no step crosses a change.

BSM1 files (Alex et al. 2008, section 3; Copp 2002): 15-minute samples over 14 days.
Components absent from the files are constant: SO = SNO = XBA = XP = 0, SALK = 7 mol/m3.
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.errors import ConfigError
from twin.units.asm1 import NAMES
from twin.units.junctions import BSM1_CONSTANT_INFLUENT

#: Column order of the influent input block: flow then the ASM1 components.
COLUMNS: tuple[str, ...] = ("Q",) + NAMES
_BSM1_COLS = ("t", "SS", "XBH", "XS", "XI", "SNH", "SI", "SND", "XND", "Q")
_BSM2PY_COLS = ("t", "SI", "SS", "XI", "XS", "XBH", "XBA", "XP", "SO", "SNO", "SNH", "SND", "XND",
                "SALK", "TSS", "Q", "T")


@dataclass
class InfluentTable:
    times_s: np.ndarray  # int64, strictly increasing, first 0
    values: np.ndarray  # (n, 14): Q m3/d and the 13 ASM1 concentrations g/m3
    interpolation: str  # "linear" or "hold"
    source: str
    temperature_degC: np.ndarray | None = None

    @property
    def span_s(self) -> int:
        """Time covered: the last sample plus one sample interval (the last value holds)."""
        if self.times_s.size < 2:
            return 0
        return int(self.times_s[-1] + (self.times_s[-1] - self.times_s[-2]))


def resolve_path(name: str, base: Path | None) -> Path:
    """A path relative to the scenario file, or ``package:PKG/rel/path`` inside an installed package.

    The package is located without importing it (importing a large package just to
    find a data file costs seconds).
    """
    if name.startswith("package:"):
        rel = name[len("package:"):]
        pkg, _, sub = rel.partition("/")
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"influent.file: {name}: Python package '{pkg}' is not installed "
                              f"(for the BSM1 dry-weather file: pip install bsm2-python)")
        path = Path(list(spec.submodule_search_locations)[0]) / sub
    else:
        path = Path(name).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
    if not path.exists():
        raise ConfigError(f"influent.file: {path}: file not found")
    return path


def _read_numeric(path: Path) -> np.ndarray:
    rows = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"influent.file: {path}: cannot read: {exc}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "%")):
            continue
        parts = line.replace(",", " ").split()
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise ConfigError(f"influent.file: {path}: line {lineno} is not numeric: {line[:60]!r}") from None
    if not rows:
        raise ConfigError(f"influent.file: {path}: no data rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ConfigError(f"influent.file: {path}: rows have different numbers of columns {sorted(widths)}")
    return np.array(rows)


def load_bsm1_file(path: Path, layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read a BSM1 influent file; returns (times in days, values (n, 14), temperature or None)."""
    data = _read_numeric(path)
    ncol = data.shape[1]
    if layout == "auto":
        layout = "bsm1" if ncol == 10 else "bsm2_python" if ncol >= 17 else "?"
    if layout == "?" or (layout == "bsm1" and ncol != 10) or (layout == "bsm2_python" and ncol < 17):
        raise ConfigError(f"influent.file: {path}: {ncol} columns; expected 10 (BSM1 layout: "
                          f"{' '.join(_BSM1_COLS)}) or 22 (bsm2-python layout)")
    cols = _BSM1_COLS if layout == "bsm1" else _BSM2PY_COLS
    values = np.empty((data.shape[0], len(COLUMNS)))
    for j, name in enumerate(COLUMNS):
        values[:, j] = data[:, cols.index(name)] if name in cols else BSM1_CONSTANT_INFLUENT[name]
    if layout == "bsm1":
        for name, v in (("SO", 0.0), ("SNO", 0.0), ("XBA", 0.0), ("XP", 0.0), ("SALK", 7.0)):
            values[:, COLUMNS.index(name)] = v
    temp = data[:, cols.index("T")] if "T" in cols else None
    return data[:, 0], values, temp


def _check_table(t_d: np.ndarray, values: np.ndarray, where: str) -> None:
    if np.any(np.diff(t_d) <= 0):
        raise ConfigError(f"{where}: time column must increase strictly")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"{where}: contains non-finite values")
    if np.any(values < 0):
        row, col = np.argwhere(values < 0)[0]
        raise ConfigError(f"{where}: negative {COLUMNS[col]} ({values[row, col]}) at row {row + 1}")


def csv_number(row: dict, column: str, where: str, line: int) -> float:
    """The number in ``column`` of a CSV row (file line ``line``); a ConfigError naming the
    column, the line and the text otherwise."""
    text = row.get(column)
    try:
        return float(text)
    except (TypeError, ValueError):
        shown = "nothing" if text in (None, "") else repr(text)
        raise ConfigError(f"{where}: column '{column}', line {line}: expected a number, got {shown}") from None


def load_csv(spec, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A user's plant data: header row, ``time_column`` in ``time_unit``, ``columns`` maps
    influent names (Q, SNH, ...) to header names; unmapped components take ``values`` or the
    BSM1 constant influent."""
    where = f"influent.file: {path}"
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{where}: cannot read CSV: {exc}") from None
    tcol = spec.time_column or (header[0] if header else None)
    if tcol not in header:
        raise ConfigError(f"{where}: time column '{tcol}' not in header {header}")
    for key, col in spec.columns.items():
        if key not in COLUMNS:
            raise ConfigError(f"influent.columns.{key}: not an influent quantity; expected one of {', '.join(COLUMNS)}")
        if col not in header:
            raise ConfigError(f"influent.columns.{key}: column '{col}' not in the header of {path}")
    if "Q" not in spec.columns:
        raise ConfigError("influent.columns: must map Q (flow, m3/d) to a column")
    unit = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0}[spec.time_unit]
    t = np.empty(len(rows))
    values = np.empty((len(rows), len(COLUMNS)))
    defaults = {**BSM1_CONSTANT_INFLUENT, **spec.values}
    for i, row in enumerate(rows):
        t[i] = csv_number(row, tcol, where, i + 2) * unit
        for j, name in enumerate(COLUMNS):
            values[i, j] = csv_number(row, spec.columns[name], where, i + 2) if name in spec.columns else defaults[name]
    if len(rows) < 2:
        raise ConfigError(f"{where}: needs at least two rows")
    return t - t[0], values


def synthetic(spec, duration_s: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded synthetic influent for long horizons (months to years).

    Loads are the BSM1 constant influent modulated by a diurnal cycle (two harmonics,
    peak in the late morning), a weekly cycle (lower loads at the weekend; both cycles
    average 1, so the long-run dry-weather flow is the design flow), random rain
    events (Poisson arrivals, exponential durations) that add dilute storm water, and a
    seasonal sinusoid of wastewater temperature. The pattern parameters below are inputs a
    user sets from their plant's records; their defaults only shape a plausible
    municipal pattern and carry no result.
    """
    p = {"diurnal_amplitude": 0.25, "weekend_factor": 0.9, "rain_events_per_year": 30.0,
         "rain_mean_duration_h": 12.0, "rain_flow_factor": 1.0, "rain_dilution": 0.3,
         "temperature_mean_degC": 15.0, "temperature_amplitude_degC": 5.0, "noise_sd": 0.03}
    for k, v in spec.synthetic.items():
        if k not in p:
            from twin.units.base import did_you_mean
            raise ConfigError(f"influent.synthetic.{k}: unknown setting{did_you_mean(k, p)}")
        p[k] = float(v)
    step = spec.sample_interval
    n = duration_s // step + 1
    t_d = np.arange(n) * step / 86400.0
    phase = 2 * np.pi * t_d
    diurnal = 1 + p["diurnal_amplitude"] * (np.sin(phase - 2.2) + 0.3 * np.sin(2 * phase - 1.0))
    dow = np.floor(t_d) % 7
    # normalised so that a week averages 1: the long-run dry-weather flow is the design flow
    weekly = np.where(dow >= 5, p["weekend_factor"], 1.0) / ((5 + 2 * p["weekend_factor"]) / 7)
    noise = 1 + p["noise_sd"] * rng.standard_normal(n)
    load = diurnal * weekly * noise
    rain = np.zeros(n)
    years = duration_s / (365 * 86400)
    n_events = rng.poisson(p["rain_events_per_year"] * years)
    starts = rng.uniform(0, t_d[-1], n_events)
    lengths = rng.exponential(p["rain_mean_duration_h"] / 24.0, n_events)
    sizes = rng.uniform(0.5, 1.5, n_events) * p["rain_flow_factor"]
    for s, L, a in zip(starts, lengths, sizes):
        inside = (t_d >= s) & (t_d < s + L)
        rain[inside] = np.maximum(rain[inside], a)
    base = BSM1_CONSTANT_INFLUENT
    values = np.empty((n, len(COLUMNS)))
    q_dry = base["Q"] * load
    q_rain = base["Q"] * rain
    q = q_dry + q_rain
    values[:, 0] = q
    for j, name in enumerate(COLUMNS[1:], start=1):
        c = base[name]
        if name in ("SO", "SNO", "XBA", "XP", "SALK", "SI"):
            values[:, j] = c
        else:
            # dry-weather loads follow the load pattern at constant flow-weighted
            # concentration; storm water carries a fraction of the dry concentration
            values[:, j] = c * (q_dry + p["rain_dilution"] * q_rain) / q
    temp = p["temperature_mean_degC"] + p["temperature_amplitude_degC"] * np.sin(2 * np.pi * (t_d - 100) / 365)
    return t_d, values, temp


def build_table(spec, duration_s: int, base: Path | None, rng: np.random.Generator) -> InfluentTable:
    """Turn an influent spec into a table covering ``duration_s``."""
    temp = None
    if spec.kind == "constant":
        row = [{**BSM1_CONSTANT_INFLUENT, **spec.values}[c] for c in COLUMNS]
        for k in spec.values:
            if k not in COLUMNS:
                raise ConfigError(f"influent.values.{k}: not an influent quantity; expected one of {', '.join(COLUMNS)}")
        return InfluentTable(np.array([0], dtype=np.int64), np.array([row], dtype=float), "hold", "constant")
    if spec.kind == "file":
        path = resolve_path(spec.file, base)
        t_d, values, temp = load_bsm1_file(path, spec.layout)
        source = str(path)
    elif spec.kind == "csv":
        path = resolve_path(spec.file, base)
        t_d, values = load_csv(spec, path)
        source = str(path)
    else:
        t_d, values, temp = synthetic(spec, duration_s, rng)
        source = "synthetic"
    t_d = t_d - t_d[0]
    _check_table(t_d, values, f"influent ({source})")
    times = np.round(t_d * 86400).astype(np.int64)
    table = InfluentTable(times, values, spec.interpolation, source, temp)
    if table.span_s < duration_s:
        if not spec.repeat:
            raise ConfigError(f"influent.file: {source} covers {table.span_s / 86400:g} d but the phase lasts "
                              f"{duration_s / 86400:g} d (set influent.repeat: true to cycle it)")
        reps = -(-duration_s // table.span_s)
        table = InfluentTable(
            np.concatenate([times + k * table.span_s for k in range(reps)]),
            np.tile(values, (reps, 1)), spec.interpolation, source,
            None if temp is None else np.tile(temp, reps))
    return table
