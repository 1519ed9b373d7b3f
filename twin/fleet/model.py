"""The equipment fleet: assets that age under load and fail, simulated in vectorised form.

Failure model (one row per asset and failure mode):

* **Wear-out and degradation modes** (mechanical wear, hydraulic leak, fouling/clogging,
  insulation ageing) follow an accelerated-life Weibull model. Each mode accumulates an
  effective age, da/dt = L^p (L: the asset's load relative to its rating, p: the mode's load
  exponent; a standing asset does not age), and its degradation is the cumulative hazard
  D = (a / eta)^beta. The mode fails when D reaches a threshold E drawn from Exp(1) at each
  renewal: P(fail by age a) = 1 - exp(-(a/eta)^beta), so at constant load the times to failure
  are exactly Weibull(beta, eta / L^p) (Nelson 1990, *Accelerated Testing*, ch. 2; the
  cumulative-exposure model). D is the hidden degradation state the sensors see.
* **Random modes** (electrical faults) are the same with beta = 1: Poisson failures with no
  precursor in the sensors.

After a repair the mode is renewed (a = 0, new threshold): "as good as new". A preventive
replacement renews every mode of the asset.

Sensor channels are functions of the degradation of the modes they respond to, with Gaussian
noise, a slow random-walk drift and random dropouts (NaN), sampled hourly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from twin.errors import ConfigError
from twin.units.base import did_you_mean

MODE_KINDS = ("wearout", "random", "fouling", "leak", "electrical")


@dataclass(frozen=True)
class ModeSpec:
    name: str
    kind: str
    weibull_shape: float
    weibull_scale_h: float
    load_exponent: float = 1.0


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    unit: str
    base: float
    gain: float  # change of the reading per unit of degradation of the responding modes
    modes: tuple[str, ...]
    noise_sd: float = 0.0
    drift_sd_per_h: float = 0.0
    dropout_prob: float = 0.0


@dataclass(frozen=True)
class AssetType:
    name: str
    modes: tuple[ModeSpec, ...]
    channels: tuple[ChannelSpec, ...]
    repair_h_median: float
    repair_h_sigma: float
    replace_h: float
    labour_rate_per_h: float
    repair_parts_cost: float
    replacement_cost: float
    downtime_cost_per_h: float


@dataclass
class Asset:
    id: str
    type: str
    unit: str
    function: str


def _need(d: dict, key: str, where: str):
    if key not in d:
        raise ConfigError(f"{where}: missing '{key}'")
    return d[key]


def load_fleet(path: Path) -> tuple[dict[str, AssetType], list[Asset]]:
    """Read a fleet file: asset types (modes, sensor channels, repair and cost data) and assets
    (individually or as numbered groups)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read fleet file: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or "types" not in data or "assets" not in data:
        raise ConfigError(f"{path}: a fleet file needs 'types' and 'assets'")
    types: dict[str, AssetType] = {}
    for tname, t in data["types"].items():
        where = f"{path}: types.{tname}"
        modes = []
        for mname, m in (_need(t, "modes", where) or {}).items():
            kind = m.get("kind", "wearout")
            if kind not in MODE_KINDS:
                raise ConfigError(f"{where}.modes.{mname}.kind: '{kind}' is not one of {', '.join(MODE_KINDS)}"
                                  f"{did_you_mean(kind, MODE_KINDS)}")
            shape = float(m.get("weibull_shape", 1.0 if kind in ("random", "electrical") else 2.0))
            scale = float(_need(m, "weibull_scale_h", f"{where}.modes.{mname}"))
            if shape <= 0 or scale <= 0:
                raise ConfigError(f"{where}.modes.{mname}: Weibull shape and scale must be positive")
            modes.append(ModeSpec(mname, kind, shape, scale, float(m.get("load_exponent", 1.0))))
        chans = []
        for cname, c in (t.get("channels") or {}).items():
            resp = tuple(c.get("modes", []))
            for r in resp:
                if r not in {m.name for m in modes}:
                    raise ConfigError(f"{where}.channels.{cname}.modes: unknown mode '{r}'")
            chans.append(ChannelSpec(cname, str(c.get("unit", "")), float(c.get("base", 0.0)), float(c.get("gain", 0.0)),
                                     resp, float(c.get("noise_sd", 0.0)), float(c.get("drift_sd_per_h", 0.0)),
                                     float(c.get("dropout_prob", 0.0))))
        if len(chans) > 24:
            raise ConfigError(f"{where}.channels: at most 24 sensor channels per asset type")
        r = t.get("repair", {})
        c = t.get("costs", {})
        types[tname] = AssetType(tname, tuple(modes), tuple(chans), float(r.get("median_h", 8.0)),
                                 float(r.get("sigma", 0.5)), float(r.get("replace_h", 8.0)),
                                 float(c.get("labour_per_h", 0.0)), float(c.get("repair_parts", 0.0)),
                                 float(c.get("replacement", 0.0)), float(c.get("downtime_per_h", 0.0)))
    assets: list[Asset] = []
    for i, a in enumerate(data["assets"]):
        where = f"{path}: assets[{i}]"
        tname = _need(a, "type", where)
        if tname not in types:
            raise ConfigError(f"{where}.type: unknown asset type '{tname}'{did_you_mean(tname, types)}")
        count = int(a.get("count", 1))
        for k in range(count):
            ident = a["id"] if count == 1 and "id" in a else f"{a.get('prefix', tname)}-{k + 1:02d}"
            assets.append(Asset(ident, tname, str(a.get("unit", "")), str(a.get("function", ""))))
    ids = [a.id for a in assets]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: asset identities must be unique")
    return types, assets


@dataclass
class FleetState:
    """Arrays over (asset, mode) rows, and over assets."""

    row_asset: np.ndarray  # int: asset of each row
    row_mode: list[tuple[str, str]]  # (type, mode) of each row
    shape: np.ndarray
    scale_h: np.ndarray
    load_exp: np.ndarray
    age_h: np.ndarray  # effective age of each mode
    threshold: np.ndarray  # Exp(1) draw of each mode's failure threshold
    failed_row: np.ndarray  # bool
    asset_up: np.ndarray  # bool per asset: running (not failed, not under maintenance)
    asset_load: np.ndarray  # relative load per asset
    hours_in_service: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


class Fleet:
    """All assets of a plant, stepped together.

    Random numbers come from one stream per asset for its failure thresholds and one for its
    sensors, both derived from the seed and the asset's identity (common random numbers): a
    policy that changes what happens to one asset leaves every other asset's history unchanged,
    so a scenario and its baseline differ only through what the policy did.
    """

    def __init__(self, types: dict[str, AssetType], assets: list[Asset], seed: int):
        self.types = types
        self.assets = assets
        from twin.clock import child_rng

        self.life_rng = [child_rng(seed, f"fleet.life.{a.id}") for a in assets]
        self.sensor_rng = [child_rng(seed, f"fleet.sensor.{a.id}") for a in assets]
        rows_a, rows_m, shp, scl, lex = [], [], [], [], []
        for i, a in enumerate(assets):
            for m in types[a.type].modes:
                rows_a.append(i)
                rows_m.append((a.type, m.name))
                shp.append(m.weibull_shape)
                scl.append(m.weibull_scale_h)
                lex.append(m.load_exponent)
        n_rows = len(rows_a)
        thresholds = np.array([self.life_rng[i].exponential(1.0) for i in rows_a])
        self.s = FleetState(np.array(rows_a, dtype=np.int64), rows_m, np.array(shp), np.array(scl), np.array(lex),
                            np.zeros(n_rows), thresholds, np.zeros(n_rows, dtype=bool),
                            np.ones(len(assets), dtype=bool), np.ones(len(assets)), np.zeros(len(assets)))
        self.index = {a.id: i for i, a in enumerate(assets)}
        self._drift: dict[str, np.ndarray] = {}

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return {"s": self.s, "life_rng": self.life_rng, "sensor_rng": self.sensor_rng, "_drift": self._drift}

    def restore_state(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    # -- dynamics ------------------------------------------------------------------------
    def degradation(self) -> np.ndarray:
        """Cumulative hazard D = (age / eta)^beta of every (asset, mode) row."""
        s = self.s
        return (s.age_h / s.scale_h) ** s.shape

    def step(self, dt_h: float) -> np.ndarray:
        """Age the running assets by ``dt_h`` hours at their loads; return the rows that fail now."""
        s = self.s
        running = s.asset_up[s.row_asset] & ~s.failed_row
        load = s.asset_load[s.row_asset]
        s.age_h += np.where(running, dt_h * np.power(np.maximum(load, 0.0), s.load_exp), 0.0)
        s.hours_in_service += np.where(s.asset_up, dt_h, 0.0)
        new = running & (self.degradation() >= s.threshold)
        s.failed_row |= new
        return np.nonzero(new)[0]

    def remaining_life_h(self, i: int) -> float:
        """Hours until asset ``i``'s first mode would fail at its current load, whatever its state
        (the life a preventive replacement gives up)."""
        s = self.s
        rows = self.rows_of(i)
        load = max(float(s.asset_load[i]), 0.0) ** s.load_exp[rows]
        age_fail = s.scale_h[rows] * s.threshold[rows] ** (1.0 / s.shape[rows])
        with np.errstate(divide="ignore"):
            t = np.where(load > 0, (age_fail - s.age_h[rows]) / load, np.inf)
        return float(np.min(np.maximum(t, 0.0)))

    def renew_rows(self, rows: np.ndarray) -> None:
        s = self.s
        s.age_h[rows] = 0.0
        for r in rows:
            s.threshold[r] = self.life_rng[s.row_asset[r]].exponential(1.0)
        s.failed_row[rows] = False

    def renew_asset(self, i: int) -> None:
        self.renew_rows(np.nonzero(self.s.row_asset == i)[0])

    def rows_of(self, i: int) -> np.ndarray:
        return np.nonzero(self.s.row_asset == i)[0]

    # -- sensors ----------------------------------------------------------------------------
    def read_channels(self, i: int, dt_h: float = 1.0) -> dict[str, float]:
        """One hourly reading of asset ``i``'s sensor channels."""
        a = self.assets[i]
        t = self.types[a.type]
        rows = self.rows_of(i)
        d = dict(zip([self.s.row_mode[r][1] for r in rows], self.degradation()[rows]))
        out = {}
        drift = self._drift.setdefault(a.id, np.zeros(len(t.channels)))
        rng = self.sensor_rng[i]
        for k, c in enumerate(t.channels):
            drift[k] += c.drift_sd_per_h * math.sqrt(dt_h) * rng.standard_normal()
            v = c.base + c.gain * sum(min(d.get(m, 0.0), 5.0) for m in c.modes) + drift[k]
            v += c.noise_sd * rng.standard_normal()
            if c.dropout_prob > 0 and rng.random() < c.dropout_prob:
                v = math.nan
            out[c.name] = v
        return out
