"""Equipment assembly: the equipment layer wired to the plant, its tariff, and the run's energy
figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twin.controls import input_slot
from twin.errors import ConfigError
from twin.flowsheet import CompiledPlant
from twin.plant import Plant
from twin.scenario import Scenario


def build_equipment(env, plant: Plant, cp: CompiledPlant, spec, base_dir: Path | None = None):
    """The equipment layer, with its references to the plant and its tariff (a price file) checked
    (ConfigError otherwise), before anything runs."""
    from twin.equipment.layer import Equipment

    build_tariff(spec.tariff, base_dir)

    for name in spec.zones:
        if name not in cp.units or cp.units[name].type_name != "asm1_reactor":
            from twin.units.base import did_you_mean
            raise ConfigError(f"equipment.zones.{name}: not an aerated tank of the plant"
                              f"{did_you_mean(name, cp.units)}")
    for name, p in spec.pumps.items():
        input_slot(cp, p.input, f"equipment.pumps.{name}.input")
    for k, name in enumerate(spec.heating.tanks):
        input_slot(cp, f"{name}.heat_W", f"equipment.heating.tanks[{k}]")
    for name in spec.mixers:
        if name not in cp.units or cp.units[name].type_name != "asm1_reactor":
            from twin.units.base import did_you_mean
            raise ConfigError(f"equipment.mixers.{name}: not a tank of the plant{did_you_mean(name, cp.units)}")
    if spec.air_header is not None:
        u = spec.air_header.unit
        if u not in cp.units or cp.units[u].type_name != "air_header":
            from twin.units.base import did_you_mean
            raise ConfigError(f"equipment.air_header.unit: the plant has no unit '{u}' of type air_header"
                              f"{did_you_mean(u, cp.units)}")
    return Equipment(env, plant, spec)


def build_tariff(spec, base_dir: Path | None):
    """The scenario's electricity tariff (``equipment.tariff``) as an :class:`analysis.energy.Tariff`."""
    from analysis.energy import Tariff, load_price_file
    from twin.influent import resolve_path

    if spec.kind == "file":
        if not spec.file:
            raise ConfigError("equipment.tariff.file: a price file is needed for kind 'file'")
        try:
            path = resolve_path(spec.file, base_dir)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("influent.file", "equipment.tariff.file")) from None
        return load_price_file(path, spec.per)
    return Tariff(kind=spec.kind, price_per_kwh=spec.price_per_kwh, bands=[b.model_dump() for b in spec.bands])


def energy_block(scenario: Scenario, times, columns, values, metadata, base_dir) -> dict:
    from analysis.energy import energy_kpis

    spec = scenario.equipment
    t = spec.tariff
    tariff = build_tariff(t, base_dir)
    start, end = scenario.evaluation_window_s()
    eff = metadata.get("effluent_stream")
    treated = None
    if eff:
        i = columns.index(f"{eff}.Q_m3_d")
        sel = np.nonzero((times >= start) & (times <= end))[0]
        treated = float(np.sum(values[sel[:-1], i] * np.diff(times[sel]) / 86400.0))
    h = spec.heating
    heat = {"source": h.source, "price_per_kwh": h.fuel_price_per_kwh, "co2_kg_per_kwh": h.fuel_co2_kg_per_kwh}
    out = energy_kpis(times, columns, values, start, end, tariff, spec.co2_kg_per_kwh, treated, heat)
    if t.currency:
        out["units"]["cost"] = t.currency
    return out
