"""Weather at the plant: air temperature, relative humidity and barometric pressure.

A table of hourly (or the scenario's interval) values, from constants, the seeded generator
or a CSV file, replayed as a SimPy process (:func:`twin.processes.environment_process`) into:

* the blowers: inlet temperature and pressure, and the water vapour the air carries
  (:func:`moist_air_power_factor`);
* the oxygen saturation of the aerated reactors (input ``so_sat_pressure_factor``): the
  saturation concentration scales with the partial pressure of dry air,
  C*_s(P) = C*_s(P0) (P - p_v) / (P0 - p_v) with p_v the vapour pressure at the water
  temperature (Metcalf & Eddy 2014, eq. 5-55 without the small oxygen-compressibility term);
* heat losses of heated tanks (their ``ambient_temperature_C`` input).

Saturation vapour pressure over water: the Magnus form with the Alduchov & Eskridge (1996)
coefficients, p_sat = 610.94 exp(17.625 T / (T + 243.04)) Pa (T in degC; within 0.1 % from
-40 to 50 degC).

The synthetic generator is a weather *input*, not a climate model: a seasonal and a diurnal
cosine for the temperature plus day-to-day anomalies (AR(1) with a 3-day memory), pressure
anomalies of synoptic weather systems (AR(1), 3-day memory), and a relative humidity that
falls as the day warms (the dew point stays put while the temperature rises). Its amplitudes
are scenario settings; the defaults describe a temperate inland site.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.errors import ConfigError

P_STD_PA = 101325.0
COLUMNS = ("air_temperature_C", "relative_humidity", "pressure_Pa")


def saturation_vapour_pressure_pa(t_c: float) -> float:
    return 610.94 * math.exp(17.625 * t_c / (t_c + 243.04))


def so_sat_pressure_factor(pressure_pa: float, water_temperature_c: float) -> float:
    """C*_s(P) / C*_s(1 atm) at the water temperature (dry-air partial pressure ratio)."""
    pv = saturation_vapour_pressure_pa(water_temperature_c)
    return (pressure_pa - pv) / (P_STD_PA - pv)


def humidity_ratio(t_c: float, rh: float, pressure_pa: float) -> float:
    """kg water vapour per kg dry air."""
    pv = rh * saturation_vapour_pressure_pa(t_c)
    return 0.62198 * pv / (pressure_pa - pv)


CP_VAPOUR = 1860.0  # J/(kg K), water vapour
CP_DRY_AIR = 1005.0


def moist_air_power_factor(t_c: float, rh: float, pressure_pa: float) -> float:
    """Compression power of moist air per unit of dry air, relative to dry air: the vapour
    is compressed too, (cp_a + x cp_v) / cp_a (the isentropic exponent of the mixture is taken
    as that of air: x < 0.03 changes it by under 1 %)."""
    return 1.0 + humidity_ratio(t_c, rh, pressure_pa) * CP_VAPOUR / CP_DRY_AIR


@dataclass
class WeatherTable:
    times_s: np.ndarray  # from the start of the run
    values: np.ndarray  # (n, 3): COLUMNS
    source: str


def build_weather(spec, duration_s: int, base: Path | None, rng: np.random.Generator) -> WeatherTable:
    if spec.kind == "constant":
        return WeatherTable(np.array([0], dtype=np.int64),
                            np.array([[spec.air_temperature_c, spec.relative_humidity, spec.pressure_pa]]), "constant")
    if spec.kind == "file":
        return _read_file(spec, base)
    dt = spec.sample_interval
    n = duration_s // dt + 2
    t = np.arange(n, dtype=np.int64) * dt
    day = t / 86400.0
    hour = (t % 86400) / 3600.0
    phi = math.exp(-dt / (3 * 86400.0))  # AR(1) with a 3-day memory
    z = rng.standard_normal((n, 2))
    anom = np.zeros((n, 2))
    scale = math.sqrt(1 - phi**2)
    for k in range(1, n):
        anom[k] = phi * anom[k - 1] + scale * z[k]
    diurnal = np.cos(2 * math.pi * (hour - 15.0) / 24.0)  # warmest mid-afternoon
    temp = (spec.air_temperature_c + spec.seasonal_amplitude_c * np.cos(2 * math.pi * (day - 200.0) / 365.0)
            + spec.diurnal_amplitude_c * diurnal + spec.temperature_anomaly_sd_c * anom[:, 0])
    pressure = spec.pressure_pa + spec.pressure_sd_pa * anom[:, 1]
    # humidity: the dew point follows the daily mean temperature, so RH falls as the day warms
    mean_t = temp - spec.diurnal_amplitude_c * diurnal
    dew = np.array([_dew_point(tm, spec.relative_humidity) for tm in mean_t])
    rh = np.clip([saturation_vapour_pressure_pa(d) / saturation_vapour_pressure_pa(tt) for d, tt in zip(dew, temp)],
                 0.05, 1.0)
    return WeatherTable(t, np.column_stack([temp, rh, pressure]), "synthetic")


def _dew_point(t_c: float, rh: float) -> float:
    g = math.log(rh) + 17.625 * t_c / (243.04 + t_c)
    return 243.04 * g / (17.625 - g)


def _read_file(spec, base: Path | None) -> WeatherTable:
    from twin.influent import resolve_path

    try:
        path = resolve_path(spec.file, base)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("influent.file", "environment.file")) from None
    import csv

    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ConfigError(f"environment.file: cannot read {path}: {exc.strerror}") from None
    if not rows:
        raise ConfigError(f"environment.file: {path} has no data rows")
    need = {"time_h": spec.time_column, **{c: spec.columns.get(c, c) for c in COLUMNS}}
    missing = [v for v in need.values() if v not in rows[0]]
    if missing:
        raise ConfigError(f"environment.file: {path} has no column {', '.join(repr(m) for m in missing)} "
                          f"(its columns: {', '.join(rows[0])}; map them with environment.columns)")
    from twin.influent import csv_number

    where = f"environment.file: {path}"
    data = np.array([[csv_number(r, need["time_h"], where, k + 2)]
                     + [csv_number(r, need[c], where, k + 2) for c in COLUMNS] for k, r in enumerate(rows)])
    if np.any(np.diff(data[:, 0]) <= 0):
        raise ConfigError(f"environment.file: {path}: times must increase")
    if np.any((data[:, 2] < 0) | (data[:, 2] > 1)):
        raise ConfigError(f"environment.file: {path}: relative_humidity must be a fraction between 0 and 1")
    if np.any(data[:, 3] < 50000) or np.any(data[:, 3] > 110000):
        raise ConfigError(f"environment.file: {path}: pressure_Pa must be an absolute pressure in Pa "
                          "(50 000 to 110 000)")
    times = np.round((data[:, 0] - data[0, 0]) * 3600).astype(np.int64)
    return WeatherTable(times, data[:, 1:], str(path))
