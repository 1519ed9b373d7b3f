"""Loops and instruments assembly: plant input slots, PID loops and their cascades, the
operators' instruments, and loop tuning (in the initial state or at a time of the run).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from twin.clock import TwinEnvironment
from twin.durations import TICKS_PER_DAY
from twin.errors import ConfigError
from twin.flowsheet import CompiledPlant
from twin.plant import Plant
from twin.scenario import Scenario, text_of


def input_slot(cp: CompiledPlant, name: str, field: str) -> int:
    """Index of plant input ``name``; a ConfigError naming the scenario ``field`` if there is none."""
    if name not in cp.input_index:
        from twin.units.base import did_you_mean
        raise ConfigError(f"{field}: the plant has no input '{name}'{did_you_mean(name, cp.input_index)}")
    return cp.input_index[name]


def cascade_targets(name: str, spec, loop_names: list[str]) -> list[str]:
    """The loops whose setpoints loop ``name`` drives (its actuator ``controllers.NAME.setpoint``
    and ``also_drives``); empty for a loop on a plant input. ConfigError naming the field."""
    cascade = spec.actuator.startswith("controllers.")
    if spec.also_drives and not cascade:
        raise ConfigError(f"controllers.{name}.also_drives: only a cascade (actuator: controllers.NAME.setpoint) "
                          "drives more loops")
    out = []
    for k, target in enumerate(([spec.actuator] if cascade else []) + list(spec.also_drives)):
        field = f"controllers.{name}.actuator" if (cascade and k == 0) else f"controllers.{name}.also_drives"
        parts = target.split(".")
        if len(parts) != 3 or parts[0] != "controllers" or parts[2] != "setpoint":
            raise ConfigError(f"{field}: a cascade drives another loop's setpoint (controllers.NAME.setpoint), "
                              f"got '{target}'")
        if parts[1] not in loop_names or parts[1] == name:
            from twin.units.base import did_you_mean
            raise ConfigError(f"{field}: no other enabled loop '{parts[1]}'{did_you_mean(parts[1], loop_names)}")
        out.append(parts[1])
    return out


def make_loops(env, plant: Plant, cp: CompiledPlant, scenario: Scenario) -> list:
    """The scenario's control loops wired to ``plant`` (wiring errors are ConfigErrors)."""
    from controllers.autotune import LoopStats
    from controllers.loop import Loop
    from controllers.pid import PID, PIDSettings
    from controllers.sensors import Sensor

    loops = []
    for name, spec in scenario.controllers.items():
        if not spec.enabled:
            continue
        try:
            read = plant.signal_reader(spec.measurement)
        except ConfigError as exc:
            raise ConfigError(f"controllers.{name}.measurement: {exc}") from None
        act = -1 if spec.actuator.startswith("controllers.") else input_slot(cp, spec.actuator,
                                                                              f"controllers.{name}.actuator")
        ts_d = spec.sample_time / TICKS_PER_DAY
        ctrl = PID(PIDSettings(K=spec.K, Ti_d=spec.Ti_d, Td_d=spec.Td_d, N=spec.N, b=spec.b, c=spec.c,
                               Tt_d=spec.Tt_d, offset=spec.offset, u_min=spec.limits[0], u_max=spec.limits[1],
                               rate_max_per_d=spec.rate_max_per_d or float("inf"), anti_windup=spec.anti_windup,
                               form=spec.form), spec.setpoint, ts_d)
        sensor = None
        s = spec.sensor
        if s.noise_sd > 0 or s.T90_min > 0 or s.range is not None:
            sensor = Sensor(s.T90_min / 1440.0, s.order, s.noise_sd, s.range, env.child_rng(f"sensor.{name}"), ts_d)
        actuator = None
        if spec.actuator_dynamics.T90_min > 0:
            a = spec.actuator_dynamics
            actuator = Sensor(a.T90_min / 1440.0, a.order, 0.0, None, None, ts_d)
        loops.append(Loop(name, spec, ctrl, read, act, sensor, actuator,
                          stats=LoopStats(ts_d, keep_recent=spec.adaptive.enabled)))
    by_name = {lp.name: lp for lp in loops}
    for lp in loops:  # cascades: the output is other loops' setpoints
        lp.targets = [by_name[n] for n in cascade_targets(lp.name, lp.spec, list(by_name))]
    return loops


def make_instruments(env, plant: Plant, scenario: Scenario) -> list:
    """The scenario's instruments (``sensors``), wired to the plant's signals."""
    from controllers.sensors import Instrument, Sensor

    out = []
    for name, spec in scenario.sensors.items():
        try:
            read = plant.signal_reader(spec.signal)
        except ConfigError as exc:
            raise ConfigError(f"sensors.{name}.signal: {exc}") from None
        period = spec.sample_time
        dead = spec.dead_time
        if dead % period:
            raise ConfigError(f"sensors.{name}.dead_time: {text_of(spec.dead_time)} is not a whole number of "
                              f"samples of {text_of(spec.sample_time)}")
        sensor = None
        if spec.noise_sd > 0 or spec.T90_min > 0 or spec.range is not None:
            sensor = Sensor(spec.T90_min / 1440.0, spec.order, spec.noise_sd, spec.range,
                            env.child_rng(f"instrument.{name}"), period / TICKS_PER_DAY)
        out.append(Instrument(name, read, sensor, period, dead // period, signal=spec.signal))
    return out


def tune_in_initial_state(scenario: Scenario, cp: CompiledPlant, x: np.ndarray, u: np.ndarray,
                          names: list[str]) -> tuple[dict, Any]:
    """Identify and tune ``names`` on a copy of the plant held at state (x, u) with its inputs
    (influent included) constant, the other loops running: a commissioning test in a quiet
    period. Returns ({loop name: TuneOutcome}, the side run's event log)."""
    from controllers.autotune import identify_and_tune
    from controllers.loop import loop_process

    env = TwinEnvironment(scenario, seed=scenario.seed)
    plant = Plant(env, cp, scenario.solver)
    plant.x[:] = x
    plant.u[:] = u
    loops = make_loops(env, plant, cp, scenario)
    for lp in loops:
        lp.ctrl.initialise(lp.output(plant), lp.read())
        env.process(loop_process(env, plant, lp))
    outcomes = {}
    for lp in loops:
        if lp.name in names and not math.isfinite(lp.read()):
            raise ConfigError(f"controllers.{lp.name}: its measurement '{lp.spec.measurement}' comes from the "
                              "equipment layer, which the initial-state test does not run; tune it in the "
                              "scenario (autotune.at: a time) or by hand")

    def sequence():
        for lp in loops:
            if lp.name in names:
                lp.busy = True
                outcomes[lp.name] = yield env.process(identify_and_tune(env, lp, plant, lp.spec.autotune,
                                                                        "tuning in the initial (steady) state",
                                                                        live=False))
                lp.busy = False
                yield env.timeout(3600)  # let the loop settle before the next test

    done = env.process(sequence())
    env.run(until=done)
    return outcomes, env.events


def _autotune_at(env, loop, plant, at: int, identify_and_tune, wake_at: int | None = None):
    if wake_at is not None or at > env.now:
        yield env.timeout(at - env.now)
    loop.busy = True
    yield env.process(identify_and_tune(env, loop, plant, loop.spec.autotune, "scheduled auto-tuning"))
    loop.busy = False
