"""Changes to a running twin as data: one-off events and repeating schedules.

A target is a loop setting, ``controllers.NAME.ATTR`` with ATTR one of ``setpoint``, ``K``,
``Ti_d``, ``Td_d``, a plant input (``reactor3.kla_per_d``), or a machine setting of the
equipment layer (``equipment.mixers.ZONE.speed_rpm``). Every applied change is an event in the
log with the old and new values and its reason. Targets are checked when the twin is built,
before anything runs.
"""

from __future__ import annotations

import math
from typing import Any

from twin.errors import ConfigError

LOOP_SETTINGS = ("setpoint", "K", "Ti_d", "Td_d")
LOOP_READINGS = ("output", "measurement")


def parse_loop_target(loop_names, target: str, field: str | None = None,
                      readable: bool = True) -> tuple[str, str]:
    """(loop name, attribute) of a ``controllers.NAME.ATTR`` target among ``loop_names``;
    ConfigError naming ``field``. ``readable``: also the read-only ``output``/``measurement``."""
    from twin.units.base import did_you_mean

    where = field or target
    parts = target.split(".")
    if len(parts) != 3 or parts[0] != "controllers":
        raise ConfigError(f"{where}: expected controllers.NAME.ATTR, got '{target}'")
    _, name, attr = parts
    if name not in loop_names:
        raise ConfigError(f"{where}: no enabled loop '{name}'{did_you_mean(name, loop_names)}")
    allowed = LOOP_SETTINGS + (LOOP_READINGS if readable else ())
    if attr not in allowed:
        raise ConfigError(f"{where}: a loop has no setting '{attr}'{did_you_mean(attr, allowed)} "
                          f"(settings: {', '.join(allowed)})")
    return name, attr


def loop_attribute(tw, target: str, field: str | None = None, readable: bool = True):
    """(loop, attribute) of a ``controllers.NAME.ATTR`` target of a built twin."""
    loops = {lp.name: lp for lp in tw.loops}
    name, attr = parse_loop_target(list(loops), target, field, readable)
    return loops[name], attr


EQUIPMENT_SETTINGS = {"mixers": ("speed_rpm",)}


def parse_equipment_target(mixers, target: str, field: str | None = None) -> tuple[str, str, str]:
    """(group, zone, setting) of an ``equipment.mixers.ZONE.speed_rpm`` target among the
    zones with mixers; ConfigError naming ``field``."""
    from twin.units.base import did_you_mean

    where = field or target
    parts = target.split(".")
    if len(parts) != 4 or parts[1] not in EQUIPMENT_SETTINGS:
        raise ConfigError(f"{where}: expected equipment.mixers.ZONE.speed_rpm, got '{target}'")
    _, group, zone, attr = parts
    if zone not in mixers:
        raise ConfigError(f"{where}: no mixers entry for '{zone}' in equipment.mixers{did_you_mean(zone, list(mixers))}")
    if attr not in EQUIPMENT_SETTINGS[group]:
        raise ConfigError(f"{where}: mixers have no setting '{attr}' (settings: {', '.join(EQUIPMENT_SETTINGS[group])})")
    return group, zone, attr


def _check(loop_names, cp, target: str, field: str, mixers=()) -> None:
    from twin.run import input_slot

    if target.startswith("controllers."):
        parse_loop_target(loop_names, target, field, readable=False)
    elif target.startswith("equipment."):
        parse_equipment_target(mixers, target, field)
    else:
        input_slot(cp, target, field)


def _mixers(tw) -> dict:
    return tw.equipment.spec.mixers if tw.equipment is not None else {}


def check_target(tw, target: str, field: str) -> None:
    """Refuse a target the twin cannot change (ConfigError naming ``field``)."""
    _check([lp.name for lp in tw.loops], tw.cp, target, field, _mixers(tw))


def _targets(scenario) -> list[tuple[str, str]]:
    out = [(name, f"events[{i}].set.{name}") for i, ev in enumerate(scenario.events) for name in ev.set]
    out += [(sc.target, f"schedules.{n}.target") for n, sc in scenario.schedules.items()]
    if scenario.optimiser is not None:
        out += [(v.target, f"optimiser.variables[{k}].target") for k, v in enumerate(scenario.optimiser.variables)]
    return out


def check_scenario_targets(scenario, cp) -> None:
    """Every event, schedule and optimiser target of a scenario, checked against the compiled
    plant and the scenario's loops without building a twin (``twin validate``)."""
    loops = [n for n, c in scenario.controllers.items() if c.enabled]
    eq = scenario.equipment
    mixers = eq.mixers if eq is not None and eq.enabled else {}
    for target, field in _targets(scenario):
        _check(loops, cp, target, field, mixers)


def validate_targets(tw) -> None:
    for target, field in _targets(tw.scenario):
        check_target(tw, target, field)


def apply(tw, target: str, value: Any, reason: str, source: str) -> None:
    """Apply one change now and log it."""
    from twin.run import input_slot

    value = float(value)
    if target.startswith("controllers."):
        lp, attr = loop_attribute(tw, target, readable=False)
        pid = lp.ctrl
        s = pid.settings
        if attr == "setpoint":
            old = pid.setpoint
            pid.setpoint = value
        else:
            if attr == "Ti_d" and not value > 0:
                raise ConfigError(f"{target}: the integral time must be positive, got {value}")
            old = getattr(s, attr)
            gains = {"K": s.K, "Ti_d": s.Ti_d, "Td_d": s.Td_d}
            gains[attr] = value
            pid.retune(gains["K"], gains["Ti_d"], gains["Td_d"], s.Tt_d)
    elif target.startswith("equipment."):
        _, zone, _ = parse_equipment_target(_mixers(tw), target)
        if value < 0:
            raise ConfigError(f"{target}: a speed cannot be negative, got {value}")
        old = tw.equipment.mixer_speed_rpm[zone]
        tw.equipment.mixer_speed_rpm[zone] = value
    else:
        i = input_slot(tw.cp, target, target)
        old = float(tw.plant.u[i])
        tw.plant.set_input(i, value)
    tw.env.log("set", source, reason, target=target, old=float(old) if math.isfinite(old) else None, new=value)


def event_process(tw, at: int, ev, wake_at: int | None = None):
    env = tw.env
    if wake_at is not None or at > env.now:
        yield env.timeout(at - env.now)
    for name, value in ev.set.items():
        apply(tw, name, value, ev.note or "scenario event", source="scenario")


def schedule_process(tw, name: str, sc, wake_at: int | None = None):
    """Every block boundary from the schedule's start to its end: set the block's value. Its
    position is derived from the clock, so a restarted process needs no saved state."""
    env = tw.env
    block = sc.block
    start = tw.main_start_s + sc.start
    end = tw.main_start_s + (sc.end if sc.end is not None else tw.scenario.duration_s)
    n = len(sc.values)
    if wake_at is not None:
        yield env.timeout(wake_at - env.now)
    elif start > env.now:
        yield env.timeout(start - env.now)
    else:  # joined late: wait for the next boundary
        k = -(-(env.now - start) // block)
        nxt = start + k * block
        if nxt > env.now:
            yield env.timeout(nxt - env.now)
    while env.now < end:
        k = ((env.now - start) // block) % n
        apply(tw, sc.target, sc.values[k], sc.note or f"schedule {name}, block {k}", source=f"schedule.{name}")
        yield env.timeout(block)
