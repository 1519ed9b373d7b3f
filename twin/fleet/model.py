"""The equipment fleet: assets that age under load and fail, simulated in vectorised form.

Failure model (one row per asset and failure mode):

* **Initiation.** Each mode accumulates an effective age, da/dt = L^p (L: the asset's load
  relative to its rating, p: the mode's load exponent; a standing asset does not age). A defect
  initiates when the cumulative hazard (a / eta)^beta reaches a threshold E drawn from Exp(1)
  at each renewal: at constant load the initiation times are exactly Weibull(beta, eta / L^p)
  (Nelson 1990, *Accelerated Testing*, ch. 2: the cumulative-exposure model).
* **Damage growth over the P-F interval** (modes with ``pf_interval_h`` > 0). From initiation
  the defect's size, as a fraction d of the size at which the mode fails, grows as
  dd/da = r d (the same load-weighted age a): the Paris-Erdogan law da/dN = C (dK)^m with
  dK proportional to sqrt(size) and m = 2 (Paris and Erdogan 1963, *J. Basic Eng.* 85:528)
  gives this exponential growth, and it is the exponential degradation path of Gebraeel et al.
  (2005, *IIE Trans.* 37:543) used for bearing vibration. d starts at ``initial_damage`` (the
  smallest defect a sensor can show: point P of the P-F curve, Moubray 1997, *Reliability-centred
  Maintenance*, ch. 7) and the mode fails when d reaches 1 (point F). The rate r is drawn at
  each renewal so that the P-F interval at load 1, ln(1/d0)/r, is lognormal with median
  ``pf_interval_h`` and log-sd ``pf_sigma``.
* **No warning.** Modes without a P-F interval (the default, and always the random modes:
  electrical faults, beta = 1) fail at initiation: the sensors show nothing beforehand.

After a repair the mode is renewed ("as good as new"); a preventive replacement renews every
mode of the asset.

Sensor channels respond to the damage d of the modes they list, and to the operating point
and the weather: reading = base + gain sum(d) + load_coeff (L - 1) + ambient_coeff (T_air - 15
degC) + drift + noise (Gaussian noise, a slow random-walk drift, random dropouts as NaN). The
confounders are why a fixed threshold raises false alarms on hot afternoons and at high duty.
The air temperature is the fleet's own seeded weather, with the form and default amplitudes of
the scenario's synthetic weather (:mod:`twin.environment`).

Hidden state (effective age, thresholds, damage, growth rates) is for the simulation, labels
and evaluation only; maintenance policies and predictors see :class:`twin.fleet.observe.Observation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numba import njit
from numba.typed import List as TypedList

from twin.errors import ConfigError
from twin.units.base import did_you_mean

MODE_KINDS = ("wearout", "random", "fouling", "leak", "electrical")
NO_WARNING_KINDS = ("random", "electrical")


@dataclass(frozen=True)
class FleetDefaults:
    """Defaults of the optional keys of a fleet file, listed once.

    ``pf_interval_h`` 0: no P-F phase, the mode fails at initiation (the fleet files written
    before precursors were modelled keep their failure times); ``initial_damage`` 0.05: a
    defect becomes visible at 5 % of its failure size (point P; with exponential growth the
    reading stays near its base for the first ~40 % of the P-F interval, as on the P-F curves
    of Moubray 1997, fig. 7.3); confounders 0: a channel that does not say otherwise ignores the
    load and the weather. Ambient temperature: the defaults of the scenario's synthetic weather
    (:class:`twin.scenario.EnvironmentSpec`)."""

    pf_interval_h: float = 0.0
    pf_sigma: float = 0.0
    initial_damage: float = 0.05
    load_coeff: float = 0.0
    ambient_coeff: float = 0.0
    ambient_reference_c: float = 15.0
    ambient_mean_c: float = 15.0
    ambient_seasonal_amplitude_c: float = 8.0
    ambient_diurnal_amplitude_c: float = 4.0
    ambient_anomaly_sd_c: float = 2.0
    ambient_memory_h: float = 72.0
    #: costs (inputs of the fleet file's ``costs:``): ``secondary_damage`` is the parts cost a
    #: functional failure adds to its repair (a seized bearing scores the shaft, a leaking seal
    #: floods the bearing); ``failure_consequence`` the process consequence the planner assigns
    #: to a functional failure (a decision input only: the twin measures the process itself);
    #: ``planned_repair`` (parts of a planned intervention; default: the ``replacement`` cost,
    #: as before these keys existed). Zero by default, so older fleet files keep their costs.
    secondary_damage_cost: float = 0.0
    failure_consequence_cost: float = 0.0


DEFAULTS = FleetDefaults()


@dataclass(frozen=True)
class ModeSpec:
    name: str
    kind: str
    weibull_shape: float
    weibull_scale_h: float
    load_exponent: float = 1.0
    pf_interval_h: float = DEFAULTS.pf_interval_h  # median P-F interval at load 1 (0: no warning)
    pf_sigma: float = DEFAULTS.pf_sigma  # log-sd of the P-F interval
    initial_damage: float = DEFAULTS.initial_damage  # damage fraction at initiation (point P)


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    unit: str
    base: float
    gain: float  # change of the reading per unit of damage (0 at initiation .. 1 at failure) of its modes
    modes: tuple[str, ...]
    noise_sd: float = 0.0
    drift_sd_per_h: float = 0.0
    dropout_prob: float = 0.0
    load_coeff: float = DEFAULTS.load_coeff  # change of the reading per unit of relative load above 1
    ambient_coeff: float = DEFAULTS.ambient_coeff  # change per K of air temperature above 15 degC


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
    secondary_damage_cost: float = DEFAULTS.secondary_damage_cost
    failure_consequence_cost: float = DEFAULTS.failure_consequence_cost
    planned_repair_cost: float | None = None  # None: the replacement cost

    @property
    def planned_parts_cost(self) -> float:
        """Parts of a planned intervention (inside the P-F interval: the defect is found before
        it does further damage)."""
        return self.replacement_cost if self.planned_repair_cost is None else self.planned_repair_cost

    def expected_costs(self, crew_size: int) -> tuple[float, float]:
        """(cost of a functional failure, cost of planned work now), from the fleet file's inputs:
        a failure costs its repair parts, the secondary damage, the labour of the (median) repair,
        the downtime over it and the process consequence; planned work its parts and the labour of
        the planned intervention (planned downtime is not charged, as in the work-order costs)."""
        failure = (self.repair_parts_cost + self.secondary_damage_cost + self.failure_consequence_cost
                   + self.repair_h_median * (self.labour_rate_per_h * crew_size + self.downtime_cost_per_h))
        planned = self.planned_parts_cost + self.replace_h * self.labour_rate_per_h * crew_size
        return failure, planned


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


def _number(d: dict, key: str, default: float, where: str) -> float:
    try:
        return float(d.get(key, default))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.{key}: expected a number, got {d.get(key)!r}") from None


def _known(d, keys: tuple[str, ...], where: str) -> dict:
    """``d`` itself; a ConfigError naming the first key not in ``keys`` (with a suggestion)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {d!r}")
    for k in d:
        if k not in keys:
            raise ConfigError(f"{where}.{k}: unknown key{did_you_mean(str(k), keys)} (known: {', '.join(keys)})")
    return d


_TYPE_KEYS = ("description", "modes", "channels", "repair", "costs")
_MODE_KEYS = ("kind", "weibull_shape", "weibull_scale_h", "load_exponent", "pf_interval_h", "pf_sigma", "initial_damage")
_CHANNEL_KEYS = ("unit", "base", "gain", "modes", "noise_sd", "drift_sd_per_h", "dropout_prob", "load_coeff",
                 "ambient_coeff")
_REPAIR_KEYS = ("median_h", "sigma", "replace_h")
_COST_KEYS = ("labour_per_h", "repair_parts", "replacement", "downtime_per_h", "planned_repair", "secondary_damage",
              "failure_consequence")
_ASSET_KEYS = ("type", "id", "count", "prefix", "unit", "function", "description")


def load_fleet(path: Path) -> tuple[dict[str, AssetType], list[Asset]]:
    """Read a fleet file: asset types (modes, sensor channels, repair and cost data) and assets
    (individually or as numbered groups)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read fleet file: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or "types" not in data or "assets" not in data:
        raise ConfigError(f"{path}: a fleet file needs 'types' and 'assets'")
    _known(data, ("description", "types", "assets"), f"{path}: fleet file")
    types: dict[str, AssetType] = {}
    for tname, t in _known(data["types"], tuple(data["types"]), f"{path}: types").items():
        where = f"{path}: types.{tname}"
        _known(t, _TYPE_KEYS, where)
        modes = []
        for mname, m in (_need(t, "modes", where) or {}).items():
            _known(m, _MODE_KEYS, f"{where}.modes.{mname}")
            kind = m.get("kind", "wearout")
            if kind not in MODE_KINDS:
                raise ConfigError(f"{where}.modes.{mname}.kind: '{kind}' is not one of {', '.join(MODE_KINDS)}"
                                  f"{did_you_mean(kind, MODE_KINDS)}")
            shape = float(m.get("weibull_shape", 1.0 if kind in ("random", "electrical") else 2.0))
            scale = float(_need(m, "weibull_scale_h", f"{where}.modes.{mname}"))
            if shape <= 0 or scale <= 0:
                raise ConfigError(f"{where}.modes.{mname}: Weibull shape and scale must be positive")
            pf = _number(m, "pf_interval_h", DEFAULTS.pf_interval_h, f"{where}.modes.{mname}")
            if kind in NO_WARNING_KINDS and pf > 0:
                raise ConfigError(f"{where}.modes.{mname}.pf_interval_h: a {kind} mode gives no warning "
                                  "(leave pf_interval_h out)")
            sigma = _number(m, "pf_sigma", DEFAULTS.pf_sigma, f"{where}.modes.{mname}")
            d0 = _number(m, "initial_damage", DEFAULTS.initial_damage, f"{where}.modes.{mname}")
            if pf < 0 or sigma < 0 or not 0 < d0 < 1:
                raise ConfigError(f"{where}.modes.{mname}: pf_interval_h and pf_sigma must be >= 0 and "
                                  "initial_damage between 0 and 1")
            modes.append(ModeSpec(mname, kind, shape, scale, float(m.get("load_exponent", 1.0)), pf, sigma, d0))
        chans = []
        for cname, c in (t.get("channels") or {}).items():
            _known(c, _CHANNEL_KEYS, f"{where}.channels.{cname}")
            resp = tuple(c.get("modes", []))
            for r in resp:
                if r not in {m.name for m in modes}:
                    raise ConfigError(f"{where}.channels.{cname}.modes: unknown mode '{r}'")
            cw = f"{where}.channels.{cname}"
            chans.append(ChannelSpec(cname, str(c.get("unit", "")), _number(c, "base", 0.0, cw), _number(c, "gain", 0.0, cw),
                                     resp, _number(c, "noise_sd", 0.0, cw), _number(c, "drift_sd_per_h", 0.0, cw),
                                     _number(c, "dropout_prob", 0.0, cw), _number(c, "load_coeff", DEFAULTS.load_coeff, cw),
                                     _number(c, "ambient_coeff", DEFAULTS.ambient_coeff, cw)))
        if len(chans) > 24:
            raise ConfigError(f"{where}.channels: at most 24 sensor channels per asset type")
        r = _known(t.get("repair") or {}, _REPAIR_KEYS, f"{where}.repair")
        c = _known(t.get("costs") or {}, _COST_KEYS, f"{where}.costs")
        types[tname] = AssetType(tname, tuple(modes), tuple(chans), float(r.get("median_h", 8.0)),
                                 float(r.get("sigma", 0.5)), float(r.get("replace_h", 8.0)),
                                 float(c.get("labour_per_h", 0.0)), float(c.get("repair_parts", 0.0)),
                                 float(c.get("replacement", 0.0)), float(c.get("downtime_per_h", 0.0)),
                                 _number(c, "secondary_damage", DEFAULTS.secondary_damage_cost, f"{where}.costs"),
                                 _number(c, "failure_consequence", DEFAULTS.failure_consequence_cost, f"{where}.costs"),
                                 None if c.get("planned_repair") is None
                                 else _number(c, "planned_repair", 0.0, f"{where}.costs"))
    assets: list[Asset] = []
    for i, a in enumerate(data["assets"]):
        where = f"{path}: assets[{i}]"
        _known(a, _ASSET_KEYS, where)
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


@njit(cache=True)
def _read_kernel(gens, idx, pos, drift, drift_step, damage, rows, n_modes, asset_load, base, gain, load_coeff,
                 ambient_coeff, amb_dev, noise_sd, dropout, out):  # pragma: no cover (compiled)
    """Readings ``out`` (assets, channels) of the assets ``idx`` (fleet indices; ``pos`` their
    positions among their type's, the rows of ``drift``, updated in place): per asset, its
    stream's 2 x channels normals (drift, noise, interleaved per channel) then a uniform per
    channel (dropout); reading = base + gain sum(damage of the channel's modes, left to right) +
    load_coeff (L - 1) + ambient_coeff (T_air - T_ref) + drift + noise_sd z, added in that order,
    NaN where the uniform falls below the dropout probability."""
    nc = base.shape[0]
    z = np.empty(2 * nc)
    u = np.empty(nc)
    for k in range(idx.shape[0]):
        i = idx[k]
        g = gens[i]
        for j in range(2 * nc):
            z[j] = g.standard_normal()
        for j in range(nc):
            u[j] = g.random()
        p = pos[k]
        load_dev = asset_load[i] - 1.0
        for c in range(nc):
            d = drift[p, c] + drift_step[c] * z[2 * c]
            drift[p, c] = d
            acc = 0.0
            if n_modes[c] > 0:
                acc = damage[rows[c, p, 0]]
                for j in range(1, n_modes[c]):
                    acc = acc + damage[rows[c, p, j]]
            v = base[c] + gain[c] * acc
            v = v + load_coeff[c] * load_dev
            v = v + ambient_coeff[c] * amb_dev
            v = v + d
            v = v + noise_sd[c] * z[2 * c + 1]
            if u[c] < dropout[c]:
                v = np.nan
            out[k, c] = v


@dataclass
class FleetState:
    """Arrays over (asset, mode) rows, and over assets."""

    row_asset: np.ndarray  # int: asset of each row
    row_mode: list[tuple[str, str]]  # (type, mode) of each row
    shape: np.ndarray
    scale_h: np.ndarray
    load_exp: np.ndarray
    age_h: np.ndarray  # effective age of each mode (hidden)
    threshold: np.ndarray  # Exp(1) draw of each mode's initiation threshold (hidden)
    failed_row: np.ndarray  # bool
    asset_up: np.ndarray  # bool per asset: running (not failed, not under maintenance)
    asset_load: np.ndarray  # relative load per asset
    hours_in_service: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)
    pf_h: np.ndarray | None = None  # median P-F interval at load 1 (0: no warning)
    pf_sigma: np.ndarray | None = None
    damage0: np.ndarray | None = None  # damage at initiation
    growth_per_h: np.ndarray | None = None  # damage growth rate r of the current defect (hidden)
    initiated: np.ndarray | None = None  # bool: a defect has initiated (hidden)
    damage: np.ndarray | None = None  # damage fraction d of the defect, 1 at failure (hidden)
    init_age_h: np.ndarray | None = None  # effective age at which the current defect initiates (hidden)
    rate_now: np.ndarray | None = None  # growth rate of an initiated defect, else 0 (hidden)
    run_h: np.ndarray | None = None  # operating hours since the mode's last renewal (observable: hour meter + records)
    ambient_c: float = DEFAULTS.ambient_mean_c  # air temperature now (observable)
    ambient_anomaly_c: float = 0.0


class Fleet:
    """All assets of a plant, stepped together.

    Random numbers come from one stream per asset for its failure thresholds and one for its
    sensors, both derived from the seed and the asset's identity (common random numbers): a
    policy that changes what happens to one asset leaves every other asset's history unchanged,
    so a scenario and its baseline differ only through what the policy did.
    """

    def __init__(self, types: dict[str, AssetType], assets: list[Asset], seed: int, fresh: bool = True):
        """``fresh=False``: the fleet is about to be restored from a snapshot (a fork, a resumed
        run): its random streams and first lives come from there, so none is drawn here (the
        streams are most of a fork's cost otherwise: three per asset)."""
        self.types = types
        self.assets = assets
        from twin.clock import child_rng

        if fresh:
            self.life_rng = [child_rng(seed, f"fleet.life.{a.id}") for a in assets]
            self.sensor_rng = [child_rng(seed, f"fleet.sensor.{a.id}") for a in assets]
            self.weather_rng = child_rng(seed, "fleet.weather")
        else:
            self.life_rng = self.sensor_rng = self.weather_rng = None
        rows_a, rows_m, specs = [], [], []
        for i, a in enumerate(assets):
            for m in types[a.type].modes:
                rows_a.append(i)
                rows_m.append((a.type, m.name))
                specs.append(m)
        n_rows = len(rows_a)
        col = lambda f: np.array([getattr(m, f) for m in specs], dtype=float)  # noqa: E731
        self.s = FleetState(np.array(rows_a, dtype=np.int64), rows_m, col("weibull_shape"), col("weibull_scale_h"),
                            col("load_exponent"), np.zeros(n_rows), np.zeros(n_rows), np.zeros(n_rows, dtype=bool),
                            np.ones(len(assets), dtype=bool), np.ones(len(assets)), np.zeros(len(assets)),
                            pf_h=col("pf_interval_h"), pf_sigma=col("pf_sigma"), damage0=col("initial_damage"),
                            growth_per_h=np.full(n_rows, np.inf), initiated=np.zeros(n_rows, dtype=bool),
                            damage=np.zeros(n_rows), init_age_h=np.zeros(n_rows), rate_now=np.zeros(n_rows),
                            run_h=np.zeros(n_rows))
        if fresh:
            for r in range(n_rows):
                self._draw_life(r)
        self.index = {a.id: i for i, a in enumerate(assets)}
        self._layouts: dict[str, dict] = {}
        self._position: dict[int, int] = {}
        #: sensor drift per asset type: (assets of the type, channels)
        self._drift = {t: np.zeros((sum(a.type == t for a in assets), len(types[t].channels))) for t in types}

    def _draw_life(self, r: int) -> None:
        """New initiation threshold and (for a mode with a P-F interval) damage growth rate of row
        ``r``, from its asset's life stream (a mode without P-F interval draws only the threshold,
        as before precursors were modelled)."""
        s = self.s
        rng = self.life_rng[s.row_asset[r]]
        s.threshold[r] = rng.exponential(1.0)
        s.init_age_h[r] = s.scale_h[r] * s.threshold[r] ** (1.0 / s.shape[r])
        if s.pf_h[r] > 0:
            pf = s.pf_h[r] * (math.exp(s.pf_sigma[r] * rng.standard_normal()) if s.pf_sigma[r] > 0 else 1.0)
            s.growth_per_h[r] = math.log(1.0 / s.damage0[r]) / pf
        else:
            s.growth_per_h[r] = np.inf

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return {"s": self.s, "life_rng": self.life_rng, "sensor_rng": self.sensor_rng, "_drift": self._drift,
                "weather_rng": self.weather_rng}

    def restore_state(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    # -- dynamics ------------------------------------------------------------------------
    def step(self, dt_h: float) -> np.ndarray:
        """Age the running assets by ``dt_h`` hours at their loads; return the rows that fail now."""
        s = self.s
        running = s.asset_up[s.row_asset]
        running &= ~s.failed_row
        load = s.asset_load[s.row_asset]
        da = np.power(np.maximum(load, 0.0), s.load_exp)
        da *= dt_h
        da *= running
        s.age_h += da
        s.hours_in_service += dt_h * s.asset_up
        s.run_h += dt_h * (running & (load > 0))
        s.damage *= np.exp(s.rate_now * da)
        start = s.age_h >= s.init_age_h
        start &= running
        start &= ~s.initiated
        if start.any():
            s.initiated |= start
            finite = np.isfinite(s.growth_per_h)
            s.damage[start] = np.where(finite[start], s.damage0[start], 1.0)
            s.rate_now[start] = np.where(finite[start], s.growth_per_h[start], 0.0)
        new = s.damage >= 1.0
        new &= running
        s.failed_row |= new
        return np.nonzero(new)[0]

    def advance_weather(self, t_h: float, dt_h: float) -> float:
        """Air temperature at time ``t_h`` (hours from the start): seasonal and diurnal cosines
        plus an AR(1) anomaly, as the scenario's synthetic weather (twin.environment)."""
        s = self.s
        d = DEFAULTS
        phi = math.exp(-dt_h / d.ambient_memory_h)
        s.ambient_anomaly_c = phi * s.ambient_anomaly_c + math.sqrt(1 - phi**2) * float(self.weather_rng.standard_normal())
        day, hour = t_h / 24.0, t_h % 24.0
        s.ambient_c = (d.ambient_mean_c + d.ambient_seasonal_amplitude_c * math.cos(2 * math.pi * (day - 200.0) / 365.0)
                       + d.ambient_diurnal_amplitude_c * math.cos(2 * math.pi * (hour - 15.0) / 24.0)
                       + d.ambient_anomaly_sd_c * s.ambient_anomaly_c)
        return s.ambient_c

    def remaining_life_h(self, i: int) -> float:
        """Hours until asset ``i``'s first mode would fail at its current load, whatever its state
        (the life a preventive replacement gives up): the rest of the initiation time plus the
        P-F interval, or the rest of the damage growth."""
        s = self.s
        rows = self.rows_of(i)
        load = max(float(s.asset_load[i]), 0.0) ** s.load_exp[rows]
        age_init = s.init_age_h[rows]
        r = s.growth_per_h[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            to_init = np.where(s.initiated[rows], 0.0, np.maximum(age_init - s.age_h[rows], 0.0))
            d_now = np.where(s.initiated[rows], s.damage[rows], s.damage0[rows])
            growth = np.where(np.isinf(r), 0.0, np.log(1.0 / np.minimum(d_now, 1.0)) / r)
            t = np.where(load > 0, (to_init + growth) / load, np.inf)
        return float(np.min(np.maximum(t, 0.0)))

    def renew_rows(self, rows: np.ndarray) -> None:
        s = self.s
        s.age_h[rows] = 0.0
        s.initiated[rows] = False
        s.damage[rows] = 0.0
        s.rate_now[rows] = 0.0
        s.run_h[rows] = 0.0
        for r in rows:
            self._draw_life(int(r))
        s.failed_row[rows] = False

    def renew_asset(self, i: int) -> None:
        self.renew_rows(np.nonzero(self.s.row_asset == i)[0])

    def rows_of(self, i: int) -> np.ndarray:
        return np.nonzero(self.s.row_asset == i)[0]

    # -- sensors ----------------------------------------------------------------------------
    def _layout(self, type_name: str) -> dict:
        """Per asset type, built once from the fleet file (not state): the type's assets, each
        asset's position among them, the channels' coefficients as arrays and the (asset, mode)
        rows of the modes each channel responds to: ``rows`` (channels, assets of the type, most
        modes of a channel), the first ``n_modes[c]`` of channel c's used (the compiled reader's
        layout)."""
        got = self._layouts.get(type_name)
        if got is None:
            t = self.types[type_name]
            idx = np.array([i for i, a in enumerate(self.assets) if a.type == type_name], dtype=np.int64)
            row_of = {(int(self.s.row_asset[r]), self.s.row_mode[r][1]): r for r in range(len(self.s.row_asset))}
            n_modes = np.array([len(c.modes) for c in t.channels], dtype=np.int64)
            rows = np.zeros((len(t.channels), len(idx), max(1, int(n_modes.max(initial=0)))), dtype=np.int64)
            for c, ch in enumerate(t.channels):
                for k, i in enumerate(idx.tolist()):
                    rows[c, k, :len(ch.modes)] = [row_of[(i, m)] for m in ch.modes]
            coef = lambda f: np.array([getattr(c, f) for c in t.channels], dtype=float)  # noqa: E731
            got = {"idx": idx, "rows": rows, "n_modes": n_modes, "base": coef("base"), "gain": coef("gain"),
                   "noise_sd": coef("noise_sd"), "drift_sd": coef("drift_sd_per_h"), "dropout": coef("dropout_prob"),
                   "load_coeff": coef("load_coeff"), "ambient_coeff": coef("ambient_coeff"),
                   "names": tuple(c.name for c in t.channels)}
            for k, i in enumerate(idx.tolist()):
                self._position[i] = k
            self._layouts[type_name] = got
        return got

    def _read(self, type_name: str, pos: np.ndarray, dt_h: float) -> np.ndarray:
        """Hourly readings (assets, channels) of the assets at positions ``pos`` among their type's
        (see the module notes). Each asset draws its noise from its own stream, 2 x channels
        normals (drift, noise, interleaved per channel) then a uniform per channel (dropout), so
        reading a whole type at once and reading one asset give the same values. One compiled
        call (:func:`_read_kernel`): the readings are those of the formula evaluated term by term
        in its order, the numbers of numpy's own generators (the hourly sensor record of a
        predictive policy and of ``twin fleet-data`` spent most of its time in 250 generator
        calls an hour otherwise)."""
        lay = self._layout(type_name)
        s = self.s
        idx = lay["idx"][pos]
        out = np.empty((len(idx), len(lay["names"])))
        _read_kernel(self._generators(), idx, np.asarray(pos, dtype=np.int64), self._drift[type_name],
                     lay["drift_sd"] * math.sqrt(dt_h), s.damage, lay["rows"], lay["n_modes"], s.asset_load,
                     lay["base"], lay["gain"], lay["load_coeff"], lay["ambient_coeff"],
                     s.ambient_c - DEFAULTS.ambient_reference_c, lay["noise_sd"], lay["dropout"], out)
        return out

    def _generators(self):
        """The sensor streams as a list the compiled reader takes (the same generator objects, so
        their state is the fleet's); rebuilt when the streams are replaced (a restored snapshot)."""
        got = self.__dict__.get("_gen_cache")
        if got is None or got[0] is not self.sensor_rng:
            got = (self.sensor_rng, TypedList(self.sensor_rng))
            self._gen_cache = got
        return got[1]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_gen_cache", None)  # a compiled-code list: rebuilt on use
        return state

    def read_type(self, type_name: str, dt_h: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """One hourly reading of every asset of ``type_name``: (asset indices, readings (assets,
        channels in the fleet file's order))."""
        lay = self._layout(type_name)
        return lay["idx"], self._read(type_name, np.arange(len(lay["idx"])), dt_h)

    def read_assets(self, type_name: str, assets: list[int], dt_h: float = 1.0) -> tuple[tuple[str, ...], np.ndarray]:
        """One hourly reading of the given assets of ``type_name`` in one call: (channel names,
        readings (assets in the order given, channels)). Each asset draws from its own stream, so
        this equals reading them one at a time (``read_channels``) in any order."""
        lay = self._layout(type_name)
        pos = np.array([self._position[i] for i in assets], dtype=np.int64)
        return lay["names"], self._read(type_name, pos, dt_h)

    def read_channels(self, i: int, dt_h: float = 1.0) -> dict[str, float]:
        """One hourly reading of asset ``i``'s sensor channels (see the module notes)."""
        t = self.assets[i].type
        lay = self._layout(t)
        v = self._read(t, np.array([self._position[i]]), dt_h)[0]
        return {c: float(x) for c, x in zip(lay["names"], v)}
