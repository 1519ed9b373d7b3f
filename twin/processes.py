"""The run's replay and recording processes: influent, weather, the recorder and progress.

Each is a SimPy process body that derives its position from the clock (``wake_at`` resumes a
saved run), so none carries state of its own into a snapshot or checkpoint.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from twin.durations import TICKS_PER_DAY
from twin.flowsheet import CompiledPlant
from twin.influent import InfluentTable
from twin.plant import Plant


class Progress:
    """Progress on a terminal (stderr): simulated days, percent, speed. Silent otherwise."""

    def __init__(self, total_s: int, enabled: bool):
        self.total_s = max(total_s, 1)
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.start_s = 0

    def start(self, now: int) -> None:
        """Count the speed from ``now`` (a resumed run)."""
        self.start_s = now
        self.t0 = time.perf_counter()

    def process(self, env):
        step = max(self.total_s // 100, 3600)
        while True:
            yield env.timeout(step)
            self.show(env.now)

    def show(self, now: int, final: bool = False) -> None:
        if not self.enabled:
            return
        wall = time.perf_counter() - self.t0
        rate = (now - self.start_s) / TICKS_PER_DAY / wall if wall > 0 else 0.0
        pct = 100.0 * now / self.total_s
        eta = (self.total_s - now) / TICKS_PER_DAY / rate if rate > 0 else 0.0
        sys.stderr.write(f"\r  {now / TICKS_PER_DAY:9.2f} / {self.total_s / TICKS_PER_DAY:g} d  {pct:5.1f} %  "
                         f"{rate:8.1f} simulated d/s  ETA {eta:6.0f} s ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()



def influent_process(env, plant: Plant, index: np.ndarray, table: InfluentTable, start_s: int, end_s: int,
                     temperature_index: np.ndarray | None = None, wake_at: int | None = None):
    """Replay an influent table from ``start_s``; when the table carries a wastewater temperature,
    it is also the temperature input of the reactors in ``temperature_index`` (held).
    ``wake_at``: resume a saved run at the sample due then."""
    times = table.times_s
    vals = table.values
    n = times.size

    def apply(k: int) -> None:
        slope = None
        if table.interpolation == "linear" and k + 1 < n:
            slope = (vals[k + 1] - vals[k]) / ((times[k + 1] - times[k]) / TICKS_PER_DAY)
        plant.set_inputs(index, vals[k], slope)
        if temperature_index is not None and table.temperature_degC is not None and temperature_index.size:
            plant.set_inputs(temperature_index, np.full(temperature_index.size, table.temperature_degC[k]))
    yield from replay(env, start_s + times, apply, wake_at, end_s)


def replay(env, times_s: np.ndarray, apply, wake_at: int | None = None, end_s: int | None = None):
    """SimPy process body: ``apply(k)`` at each time ``times_s[k]`` (ticks, ascending) that has
    not passed, until ``end_s``; ``wake_at`` resumes a saved run at the sample due then."""
    k0 = 0
    if wake_at is not None:
        k0 = int(np.searchsorted(times_s, wake_at))
        yield env.timeout(wake_at - env.now)
    for k in range(k0, times_s.size):
        t_k = int(times_s[k])
        if end_s is not None and t_k >= end_s:
            break
        if t_k > env.now:
            yield env.timeout(t_k - env.now)
        apply(k)


def environment_process(env, plant: Plant, cp: CompiledPlant, table, equipment, water_temperature_c: float | None,
                        wake_at: int | None = None):
    """Replay the weather (held between samples): blower inlet air, the reactors' oxygen
    saturation at the barometric pressure, heated tanks' ambient temperature."""
    from twin.environment import so_sat_pressure_factor

    reactors = [(cp.input_index[f"{n}.so_sat_pressure_factor"], cp.input_index[f"{n}.temperature_C"])
                for n, u in cp.units.items() if u.type_name == "asm1_reactor"]
    tanks = [cp.input_index[f"{n}.ambient_temperature_C"] for n, u in cp.units.items() if u.type_name == "heated_tank"]

    def apply(k: int) -> None:
        t_air, rh, p = (float(v) for v in table.values[k])
        if equipment is not None:
            equipment.ambient.update(air_temperature_c=t_air, relative_humidity=rh, pressure_pa=p)
        for i_f, i_t in reactors:
            tw = water_temperature_c if water_temperature_c is not None else float(plant.u[i_t])
            plant.set_input(i_f, so_sat_pressure_factor(p, tw))
        for i in tanks:
            plant.set_input(i, t_air)
    yield from replay(env, table.times_s, apply, wake_at)



def recorder_process(env, rec, main_start: int, total: int, interval: int, wake_at: int | None = None):
    """Sample the recorder every ``interval`` from the start of the main period to ``total``
    (the last sample at ``total`` itself)."""
    if wake_at is not None:
        yield env.timeout(wake_at - env.now)
    elif main_start > env.now:
        yield env.timeout(main_start - env.now)
    while True:
        rec.sample(env.now)
        if env.now >= total:
            return
        yield env.timeout(min(interval, total - env.now))
