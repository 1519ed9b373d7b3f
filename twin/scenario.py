"""Scenario files: schema, loading, dotted overrides and clear errors.

A scenario says *what happens when*: which plant, which influent, how long, which
controllers, how to evaluate and what to write. It is validated completely before
anything is built; every problem is reported as ``file: field: what was expected``.
The resolved scenario (defaults filled in, overrides applied) is written beside the
results so a run can be repeated exactly.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from twin.durations import format_duration, parse_duration
from twin.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Seconds(int):
    """A scenario duration, parsed once into whole seconds, that remembers how it was written.

    Everything that runs uses it as the int it is; the text ("24h") is what the resolved scenario
    (``metadata.json``, checkpoint keys, study overrides) writes back, so those read as the file
    did and validate again to the same value."""

    text: str

    def __new__(cls, seconds: int, text: str | None = None) -> Seconds:
        obj = super().__new__(cls, seconds)
        obj.text = format_duration(int(seconds)) if text is None else text
        return obj

    def __reduce__(self):
        return (Seconds, (int(self), self.text))


def seconds(text: str) -> Seconds:
    """A duration default written as in a scenario file."""
    return Seconds(parse_duration(text), text)


def _to_seconds(v: Any) -> Seconds:
    # a bare number is refused: seconds, hours or days would all be plausible readings of it
    if isinstance(v, Seconds):
        return v
    if not isinstance(v, str):
        raise ValueError(f"expected a duration string such as '15min', '24h', '14d' or '10y', got {v!r}")
    return Seconds(parse_duration(v), v)


def _as_text(v: Any) -> Any:
    return v.text if isinstance(v, Seconds) else format_duration(v) if isinstance(v, int) else v


def _initial_or_seconds(v: Any) -> Seconds | str:
    return v if v == "initial" else _to_seconds(v)


def text_of(v: Any) -> str:
    """How a duration field reads in a message: as the scenario wrote it."""
    return str(_as_text(v))


#: a duration field: written "15min", "24h", "14d", "10y"; held as whole seconds (:class:`Seconds`)
Duration = Annotated[int, PlainValidator(_to_seconds), PlainSerializer(_as_text)]
#: a duration, or "initial" (before the run)
InitialOrDuration = Annotated[int | Literal["initial"], PlainValidator(_initial_or_seconds),
                              PlainSerializer(_as_text)]


class InfluentSpec(_Strict):
    """Where the influent comes from.

    ``constant``: the BSM1 steady-state influent (``values`` overrides components).
    ``file``: a BSM1-format test file (dry, rain, storm) in either common layout
    (10 columns ``t SS XBH XS XI SNH SI SND XND Q``, or the 22-column bsm2-python CSV);
    ``package:NAME/path`` locates a file inside an installed Python package.
    ``csv``: a user's own data with a header row and declared columns.
    ``synthetic``: a seeded generator for long horizons.
    """

    kind: Literal["constant", "file", "csv", "synthetic"] = "constant"
    file: str | None = None
    layout: Literal["auto", "bsm1", "bsm2_python"] = "auto"
    interpolation: Literal["linear", "hold"] = "linear"
    repeat: bool = False
    values: dict[str, float] = Field(default_factory=dict)
    time_column: str | None = None
    time_unit: Literal["s", "min", "h", "d"] = "d"
    columns: dict[str, str] = Field(default_factory=dict)
    sample_interval: Duration = seconds("15min")
    synthetic: dict[str, float] = Field(default_factory=dict)


    @model_validator(mode="after")
    def _needs_file(self):
        if self.kind in ("file", "csv") and not self.file:
            raise ValueError(f"influent kind '{self.kind}' needs 'file' (a path)")
        return self


class Phase(_Strict):
    influent: InfluentSpec
    duration: Duration



class SensorSpec(_Strict):
    """Measurement model of a controller's sensor (all optional: ideal by default)."""

    noise_sd: float = Field(0.0, ge=0)
    T90_min: float = Field(0.0, ge=0)
    order: int = Field(1, ge=1, le=12)
    range: tuple[float, float] | None = None


class InstrumentSpec(SensorSpec):
    """A measuring instrument the operators read, recorded as ``sensor.<name>``: a plant signal
    (a state, an input, a stream value such as ``effluent.TSS`` or ``effluent.turbidity_NTU``)
    through the sensor model (lag cascade with T90, range, noise), sampled every
    ``sample_time`` and reported ``dead_time`` later (sample transport, analyser cycle)."""

    signal: str
    sample_time: Duration = seconds("1min")
    dead_time: Duration = seconds("0s")



class ActuatorSpec(_Strict):
    """Actuator dynamics: a cascade of ``order`` equal first-order lags with the given T90."""

    T90_min: float = Field(0.0, ge=0)
    order: int = Field(1, ge=1, le=12)


class AutotuneSpec(_Strict):
    """Identification and tuning of a loop on the live plant (see controllers.autotune)."""

    enabled: bool = False
    at: InitialOrDuration = "initial"  # "initial": on the plant in its initial steady state before the run;
    # or a duration counted from the start of the run (warm-up phases included)
    method: Literal["step", "relay"] = "step"
    # step test input: one step; +du / -du / back (doublet); +du / back (pulse)
    pattern: Literal["step", "doublet", "pulse"] = "step"
    direction: Literal["auto", "up", "down"] = "auto"  # step or pulse: auto goes where the sensor has room
    repeats: int = Field(1, ge=1, le=20)  # doublet or pulse: repetitions averaged in one record
    max_repeats: int | None = Field(None, ge=1, le=20)  # then more, up to this, until the model is determined
    # the model is used only when its 95 % intervals are this narrow (relative): gain, and the
    # dominant time constant; otherwise the gains are kept and the event log says why
    max_gain_ci: float = Field(0.25, gt=0)
    max_lag_ci: float = Field(0.5, gt=0)
    rule: Literal["simc", "amigo", "imc", "pidtune", "zn_step", "zn_ultimate", "tyreus_luyben"] = "pidtune"
    step_size: float | None = None  # actuator units; default 10 % of the actuator range
    relay_amplitude: float | None = None  # actuator units; default 10 % of the range
    hysteresis: float = Field(0.0, ge=0)  # measurement units
    relay_periods: int = Field(6, ge=3)
    duration: Duration = seconds("1h")  # step-test length, or the longest relay test
    allow_sopdt: bool = True
    drift: bool = True  # fit a linear output drift (load change) during a step test
    controller: Literal["PI", "PID"] = "PI"  # PI is the safe choice with noisy sensors
    # largest actuator noise the design may cause, as a fraction of the actuator range:
    # |K| <= noise_fraction x range / sd(measurement noise), the noise estimated from the test
    # ("current": no larger than the loop's gain before the test, i.e. no noisier actuator than now)
    noise_fraction: float | Literal["current"] = 0.05
    pm_target_deg: float = Field(60.0, gt=0, lt=90)  # the pidtune-like rule's phase margin
    gm_min: float = Field(2.0, gt=1)
    pm_min_deg: float = Field(45.0, gt=0, lt=90)
    ms_max: float = Field(2.0, gt=1)




class AdaptiveSpec(_Strict):
    """Retune when the loop's IAE over ``window`` exceeds ``iae_ratio`` x the IAE after its last tuning."""

    enabled: bool = False
    window: Duration = seconds("6h")
    check_every: Duration = seconds("1h")
    iae_ratio: float = Field(1.5, gt=1)
    min_interval: Duration = seconds("12h")
    saturation_fraction: float = Field(0.5, gt=0, le=1)
    # "reidentify": repeat the autotune test and rule; "relay_rescale": a short relay test
    # rescales the gain by the change of the ultimate gain since a reference relay test;
    # "model_gain": re-estimate the process gain of a transfer-limited loop from routine data,
    # K ~ (saturation_value - y) / u (see controllers.autotune.model_gain_monitor), and retune
    # the identified model's gain with the loop's rule
    method: Literal["reidentify", "relay_rescale", "model_gain"] = "reidentify"
    saturation_value: float | None = None  # model_gain: y at which the transfer stops (DO saturation)
    gain_window: Duration = seconds("2h")  # model_gain: averaging window of the gain estimate
    reference_at: Duration = seconds("1h")  # when the reference relay test runs (relay_rescale)
    relay_amplitude: float | None = None  # actuator units; default 5 % of the range
    hysteresis: float = Field(0.0, ge=0)
    relay_periods: int = Field(4, ge=3)
    relay_duration: Duration = seconds("2h")
    min_change: float = Field(0.2, ge=0)  # relay_rescale: ignore ultimate-gain changes below this fraction
    max_change: float = Field(2.0, gt=1)  # relay_rescale: largest gain factor applied at once


    @model_validator(mode="after")
    def _model_gain(self):
        if self.enabled and self.method == "model_gain" and self.saturation_value is None:
            raise ValueError("adaptive.saturation_value: needed by method 'model_gain' (for DO: the oxygen "
                             "saturation concentration, 8 g/m3 in BSM1)")
        return self


class ControllerSpec(_Strict):
    """A discrete PID loop (see controllers.pid). With the defaults (Td = 0, b = 1, back-calculation)
    it is the BSM1 PI: u = offset + K (e + 1/Ti integral e) with tracking time Tt."""

    type: Literal["pi", "pid"] = "pi"
    measurement: str
    # a plant input, or another loop's setpoint (``controllers.NAME.setpoint``: a cascade, e.g.
    # ammonia setting the DO setpoints); ``also_drives``: more loop setpoints given the same output
    actuator: str
    also_drives: list[str] = Field(default_factory=list)
    setpoint: float
    K: float
    Ti_d: float = Field(gt=0)
    Td_d: float = Field(0.0, ge=0)
    N: float = Field(10.0, gt=0)
    b: float = 1.0
    c: float = 0.0
    Tt_d: float | None = Field(None, gt=0)
    anti_windup: Literal["back_calculation", "clamping"] = "back_calculation"
    form: Literal["positional", "velocity"] = "positional"
    rate_max_per_d: float | None = Field(None, gt=0)
    offset: float = 0.0
    limits: tuple[float, float]
    sample_time: Duration = seconds("1min")
    sensor: SensorSpec = Field(default_factory=SensorSpec)
    actuator_dynamics: ActuatorSpec = Field(default_factory=ActuatorSpec)
    autotune: AutotuneSpec = Field(default_factory=AutotuneSpec)
    adaptive: AdaptiveSpec = Field(default_factory=AdaptiveSpec)
    enabled: bool = True


    @model_validator(mode="after")
    def _limits(self):
        if self.limits[0] > self.limits[1]:
            raise ValueError(f"limits must be [low, high] with low <= high, got {list(self.limits)}")
        return self


class ZoneSpec(_Strict):
    """A diffuser grid in an aerated zone (see twin.equipment.aeration.DiffuserGrid)."""

    depth_m: float = Field(gt=0)
    n_diffusers: int = Field(gt=0)
    sote_per_m: float = Field(0.06, gt=0, lt=0.2)
    q_ref_nm3_h: float = Field(2.0, gt=0)
    flux_exponent: float = Field(0.15, ge=0, lt=1)
    alpha: float = Field(1.0, gt=0, le=1.5)
    headloss_pa: float = Field(4000.0, ge=0)
    #: with an air header: the airflow the zone's control valve is sized for (Nm3/d)
    valve_design_flow_nm3_d: float | None = Field(None, gt=0)


class BlowerSpec(_Strict):
    design_flow_nm3_d: float = Field(gt=0)
    n_installed: int = Field(1, ge=1)
    efficiency_design: float = Field(0.75, gt=0, le=1)
    min_flow_nm3_d: float = Field(0.0, ge=0)
    max_flow_nm3_d: float = Field(float("inf"), gt=0)
    motor_efficiency: float = Field(0.95, gt=0, le=1)
    header_loss_pa: float = Field(2000.0, ge=0)


class PumpSpec(_Strict):
    """A pump (or identical pumps in parallel) delivering one pumped-flow input of the plant."""

    input: str
    shutoff_head_m: float = Field(gt=0)
    bep_flow_m3_d: float = Field(gt=0)
    bep_head_m: float = Field(gt=0)
    bep_efficiency: float = Field(gt=0, le=1)
    static_head_m: float = Field(0.0, ge=0)
    n_parallel: int = Field(1, ge=1)
    max_speed_ratio: float = Field(1.2, gt=0)
    min_speed_ratio: float = Field(0.0, ge=0)
    staging: bool = False  # run the fewest pumps that deliver the flow within the speed range
    condition: float = Field(1.0, gt=0, le=1)  # impeller condition: 1 new, lower when worn
    motor_efficiency: float = Field(0.95, gt=0, le=1)
    drive_efficiency: float = Field(0.97, gt=0, le=1)


class TariffBand(_Strict):
    """One time-of-use band: the price from ``from_h`` to ``to_h`` (hours of the day; a band
    with ``from_h > to_h`` runs over midnight)."""

    from_h: float = Field(ge=0, le=24)
    to_h: float = Field(ge=0, le=24)
    price_per_kwh: float = Field(ge=0)


class TariffSpec(_Strict):
    kind: Literal["flat", "tou", "file"] = "flat"
    price_per_kwh: float = Field(0.0, ge=0)
    bands: list[TariffBand] = Field(default_factory=list)
    file: str | None = None  # kind file: two columns, time (d) and price per ``per``
    per: Literal["MWh", "kWh"] = "MWh"
    currency: str | None = None  # e.g. "EUR": names the unit of every cost priced with this tariff

    @model_validator(mode="after")
    def _cover(self):
        if self.kind == "tou":
            def priced(h: float) -> bool:
                return any((b.from_h <= h < b.to_h) if b.from_h < b.to_h else (h >= b.from_h or h < b.to_h)
                           for b in self.bands)
            gap = next((m for m in range(1440) if not priced((m + 0.5) / 60.0)), None)
            if gap is not None:
                raise ValueError(f"bands: the time-of-use bands do not cover every hour of the day (first gap at "
                                 f"{gap // 60:02d}:{gap % 60:02d})")
        if self.kind == "file" and not self.file:
            raise ValueError("file: a price file is needed for kind 'file'")
        return self


class ExchangerSpec(_Strict):
    """Hot-water heat exchanger of a heated tank: it can deliver at most UA (T_hot - T_tank)
    (hot water held at T_hot by the boiler; the log-mean temperature difference taken as the
    difference to the hot water, the usual simplification for a recirculated sludge loop).
    Fouling (from the fleet's heat exchangers) lowers UA."""

    ua_w_k: float = Field(gt=0)
    hot_water_temperature_c: float = 70.0


class HeatingSpec(_Strict):
    tanks: list[str] = Field(default_factory=list)  # heated_tank units whose heat input is metered
    efficiency: float = Field(0.9, gt=0)  # heat delivered per unit of energy drawn
    exchanger: ExchangerSpec | None = None
    # what the heater draws: electricity (an electric boiler or heat pump, priced at the tariff)
    # or fuel (a gas or biogas boiler: metered as heat, priced at fuel_price_per_kwh of fuel)
    source: Literal["electric", "fuel"] = "electric"
    fuel_price_per_kwh: float = Field(0.0, ge=0)
    fuel_co2_kg_per_kwh: float = Field(0.0, ge=0)


class MixerSpec(_Strict):
    """Submersible mixers of an unaerated zone: shaft power P = Np rho N^3 D^5 (turbulent
    regime, constant power number; Metcalf & Eddy 2014, eq. 5-14), drawn at the motor's
    efficiency."""

    speed_rpm: float = Field(ge=0, le=1500)
    impeller_diameter_m: float = Field(gt=0)
    power_number: float = Field(0.3, gt=0)  # hydrofoil propellers about 0.3
    count: int = Field(1, ge=1)
    motor_efficiency: float = Field(0.9, gt=0, le=1)
    # the electrical power per tank volume (W/m3) below which the mixers no longer keep the
    # solids suspended (a design minimum: the mixer supplier's or the plant's design guidance).
    # The twin does not model settling in the tank, so an optimiser variable on this zone's
    # mixer speed needs it: running below it is a constraint, never a saving
    min_power_w_m3: float | None = Field(None, gt=0)


class AirHeaderSpec(_Strict):
    """Air distribution (twin.equipment.aeration.solve_air_system): centrifugal blowers at a
    common speed (the plant input ``<unit>.blower_speed_ratio``, for a header-pressure loop)
    feed a header; each aerated zone draws through an equal-percentage control valve sized for
    its ``valve_design_flow_nm3_d`` at ``valve_design_dp_pa`` and ``valve_design_opening``."""

    unit: str = "air_header"
    blower_design_rise_pa: float = Field(gt=0)  # pressure rise of a blower at its design flow, rated speed
    blower_shutoff_ratio: float = Field(1.2, gt=1)
    valve_design_dp_pa: float = Field(3000.0, gt=0)
    valve_design_opening: float = Field(0.7, gt=0, le=1)
    valve_rangeability: float = Field(50.0, gt=1)
    #: a blower stops only when the others can carry the flow with this fraction of their
    #: maximum to spare
    staging_deadband: float = Field(0.1, ge=0, lt=1)


class EnvironmentSpec(_Strict):
    """Weather at the plant (twin.environment): constant, the seeded generator, or a CSV file with
    columns time_h, air_temperature_C, relative_humidity (0-1), pressure_Pa (rename with
    ``columns``). It sets the blowers' inlet air, the reactors' oxygen saturation and the heat
    losses of heated tanks."""

    kind: Literal["constant", "synthetic", "file"] = "constant"
    air_temperature_c: float = 15.0  # the constant value, or the generator's annual mean
    relative_humidity: float = Field(0.7, gt=0, le=1)
    pressure_pa: float = Field(101325.0, ge=50000, le=110000)
    seasonal_amplitude_c: float = Field(8.0, ge=0)
    diurnal_amplitude_c: float = Field(4.0, ge=0)
    temperature_anomaly_sd_c: float = Field(2.0, ge=0)
    pressure_sd_pa: float = Field(800.0, ge=0)
    sample_interval: Duration = seconds("1h")
    file: str | None = None
    time_column: str = "time_h"
    columns: dict[str, str] = Field(default_factory=dict)
    #: water temperature for the oxygen saturation (degC); the reactors' temperature input when None
    water_temperature_c: float | None = None


    @model_validator(mode="after")
    def _file(self):
        if self.kind == "file" and not self.file:
            raise ValueError("'file' is needed for kind 'file' (a CSV with time_h, air_temperature_C, "
                             "relative_humidity, pressure_Pa)")
        return self


class EquipmentSpec(_Strict):
    """Machines around the process (twin.equipment.layer): blowers and diffusers, pumps, mixers."""

    enabled: bool = True
    sample_time: Duration = seconds("1min")
    zones: dict[str, ZoneSpec] = Field(default_factory=dict)
    blowers: BlowerSpec | None = None
    air_header: AirHeaderSpec | None = None
    pumps: dict[str, PumpSpec] = Field(default_factory=dict)
    mixing_w_per_m3: float = Field(5.0, ge=0)  # zones without a mixers entry
    mixers: dict[str, MixerSpec] = Field(default_factory=dict)  # per unaerated zone
    heating: HeatingSpec = Field(default_factory=HeatingSpec)
    water_temperature_c: float = 15.0
    air_temperature_c: float = 20.0
    ambient_pressure_pa: float = Field(101325.0, gt=0)
    tariff: TariffSpec = Field(default_factory=TariffSpec)
    co2_kg_per_kwh: float = Field(0.0, ge=0)


    @model_validator(mode="after")
    def _blowers(self):
        if self.zones and self.blowers is None:
            raise ValueError("aerated zones need a 'blowers' section")
        if self.air_header is not None:
            for name, z in self.zones.items():
                if z.valve_design_flow_nm3_d is None:
                    raise ValueError(f"zones.{name}.valve_design_flow_nm3_d: needed to size the zone's air "
                                     "control valve when the equipment has an air_header")
        return self


class PolicySpec(_Strict):
    """Maintenance policy of an asset type (see agents.maintenance)."""

    kind: Literal["rtf", "time_based", "condition", "predictive"] = "rtf"
    interval_h: float | None = Field(None, gt=0)  # time_based: service hours between replacements
    channel: str | None = None  # condition: the sensor channel watched
    threshold: float | None = None  # condition: act at or above this reading
    horizon_h: float = Field(720.0, gt=0)  # predictive
    probability: float = Field(0.5, gt=0, lt=1)  # predictive without a model: the Weibull hazard model's alarm level
    #: predictive: an LSTM model file (relative to the scenario, or "reference" for the shipped
    #: one); the policy then acts by expected cost, P(failure within horizon_h) x the cost of a
    #: functional failure against the cost of planned work now (the fleet file's costs)
    model: str | None = None
    #: predictive with a model: an asset whose last window ran outside the operating context the
    #: model was trained in (load, air temperature: agents.predictors.policy.outside_context)
    #: gets no planned work from the model meanwhile ("skip": it runs to failure unless it comes
    #: back inside), or the model's decision anyway ("predict"); both are counted in the KPIs
    outside_context: Literal["skip", "predict"] = "skip"
    inspection_interval: Duration = seconds("1d")


    @model_validator(mode="after")
    def _fields(self):
        if self.kind == "time_based" and self.interval_h is None:
            raise ValueError("a time_based policy needs interval_h")
        if self.kind == "condition" and (self.channel is None or self.threshold is None):
            raise ValueError("a condition policy needs channel and threshold")
        if self.model is not None and self.kind != "predictive":
            raise ValueError(f"model: only a predictive policy takes a model (this one is '{self.kind}')")
        if self.outside_context != "skip" and self.model is None:  # (skip, the default: a dumped scenario has it)
            raise ValueError("outside_context: only a predictive policy with a model checks its training context")
        return self


class CrewSpec(_Strict):
    count: int = Field(2, ge=1)  # crews working in parallel
    size: int = Field(2, ge=1)  # people per crew (labour cost)
    shift_start_h: float = Field(7.0, ge=0, le=24)
    shift_end_h: float = Field(16.0, ge=0, le=24)


class SparesSpec(_Strict):
    stock: int = Field(2, ge=0)
    lead_time: Duration = seconds("14d")



class FleetSpec(_Strict):
    """The equipment fleet and its maintenance (twin.fleet, agents.maintenance)."""

    file: str
    step: Duration = seconds("1h")
    process_model: bool = True  # false: fleet-only study at a constant relative load
    load: float = Field(1.0, ge=0)
    #: fleet-only studies: relative amplitude of the assets' daily load cycle and day-to-day
    #: factor (0: constant load); with the process model the loads come from the process
    load_variation: float = Field(0.0, ge=0, le=0.9)
    policies: dict[str, PolicySpec] = Field(default_factory=dict)  # per asset type, or "default"
    crews: CrewSpec = Field(default_factory=CrewSpec)
    spares: dict[str, SparesSpec] = Field(default_factory=dict)  # per asset type, or "default"
    planned_hours: tuple[float, float] = (0.0, 24.0)  # hours of day when planned work may start
    #: when planned work starts among the allowed hours (planned_hours within the crews' shift):
    #: "first", the first allowed hour; "cheapest", the allowed start within the next 24 h with
    #: the lowest forecast price x load over the work's duration (the tariff's price and the
    #: plant's inflow the same hours a day earlier, as recorded): needs the process model and
    #: the equipment's tariff
    planned_start: Literal["first", "cheapest"] = "first"
    alarm_horizon_h: float = Field(720.0, gt=0)
    #: fouled aeration grids and heat exchangers: transfer factor = exp(-c d_fouling), d the
    #: fouling modes' damage (0 before a defect, 1 at failure: twin.fleet.assembly.FleetCoupling)
    fouling_transfer_loss: float = Field(0.3, ge=0)
    #: worn machines: condition = exp(-c d) of the named mode's damage (pump impeller: head and
    #: efficiency; blower: efficiency)
    wear_condition_loss: float = Field(0.1, ge=0)
    impeller_mode: str = "impeller_wear"
    blower_efficiency_mode: str = "efficiency_loss"


    def policy_for(self, type_name: str) -> PolicySpec:
        return self.policies.get(type_name) or self.policies.get("default") or PolicySpec()

    def spares_for(self, type_name: str) -> SparesSpec:
        return self.spares.get(type_name) or self.spares.get("default") or SparesSpec()


class EventSpec(_Strict):
    """A scheduled change, ``at`` counted from the start of the main period: plant inputs
    (``reactor3.kla_per_d``) and loop settings (``controllers.do_reactor5.setpoint``, ``.K``,
    ``.Ti_d``, ``.Td_d``) in ``set``; assets that fail in ``fail``."""

    at: Duration
    set: dict[str, float] = Field(default_factory=dict)
    fail: list[str] = Field(default_factory=list)  # asset identities of the fleet that fail then
    note: str = ""



class ScheduleSpec(_Strict):
    """A repeating schedule of one target (a loop setting such as
    ``controllers.do_reactor5.setpoint``, or a plant input): ``values[k]`` holds during block
    ``k`` of every ``period``, blocks of ``block`` each, from ``start`` (counted from the start
    of the main period) to ``end`` (default: the end of the run). ``values`` must fill the
    period: len(values) x block = period."""

    target: str
    values: list[float] = Field(min_length=1)
    block: Duration = seconds("1h")
    period: Duration = seconds("1d")
    start: Duration = seconds("0s")
    end: Duration | None = None
    note: str = ""



    @model_validator(mode="after")
    def _fills(self):
        b, p = self.block, self.period
        if b <= 0 or len(self.values) * b != p:
            raise ValueError(f"{len(self.values)} values of {text_of(self.block)} do not fill the period of "
                             f"{text_of(self.period)}")
        return self


class VariableSpec(_Strict):
    """A decision variable of the optimiser: a loop setting planned per block of the horizon."""

    target: str
    bounds: tuple[float, float]
    block: Duration = seconds("4h")


    @model_validator(mode="after")
    def _bounds(self):
        if not self.bounds[0] < self.bounds[1]:
            raise ValueError(f"bounds [{self.bounds[0]}, {self.bounds[1]}] must be increasing")
        return self


class ForecastErrorSpec(_Strict):
    """The error of a ``noisy`` forecast (see twin.evaluate.noisy): log-normal, AR(1) in time."""

    sd: float = Field(0.1, ge=0)  # standard deviation of the log error of flow and of concentrations
    correlation_time: Duration = seconds("6h")



class FallbackSpec(_Strict):
    """The plan's safeguard: while a plan is applied, ``signal`` (an instrument the plant has,
    e.g. ``sensor.effluent_ammonia``) is read every ``every``; when it has read above its
    threshold for ``hold`` the plan is dropped and the variables go back to the default control
    until the next decision. The threshold is one of ``above`` (in the signal's unit);
    ``above_forecast``: a factor on what the plan's forecast said of that signal at that time,
    for the influent flow (the plan was made for a forecast the plant has left: a storm); or
    ``above_plan``: a margin (in the signal's unit) over what the plan's own simulation
    predicted of the measured quantity at that time, for a stream concentration (the plant is
    not doing what the plan expected)."""

    signal: str
    above: float | None = None
    above_forecast: float | None = Field(None, gt=0)
    above_plan: float | None = Field(None, ge=0)
    every: Duration = seconds("5min")
    # the readings must stay above for this long (consecutive readings) before the plan is
    # dropped: one noisy reading does not end a plan (0s: the first reading above)
    hold: Duration = seconds("15min")

    @model_validator(mode="after")
    def _one_threshold(self):
        if sum(v is not None for v in (self.above, self.above_forecast, self.above_plan)) != 1:
            raise ValueError("give one threshold: above (in the signal's unit), above_forecast (a factor on the "
                             "forecast) or above_plan (a margin over the plan's prediction)")
        return self


class OptimiserSpec(_Strict):
    """The energy optimiser (see agents.energy). GA defaults: the plant specification's
    (population 80, 40 generations, tournament selection, uniform crossover, Gaussian mutation,
    the 10 best kept)."""

    enabled: bool = True
    every: Duration = seconds("1d")
    first_at: Duration = seconds("0s")  # from the start of the main period
    horizon: Duration = seconds("24h")
    # how far past the plan's horizon a candidate is simulated, under the default control's
    # values, and scored: the plan pays for the state it hands on (an ammonia load left in the
    # tanks at the horizon's end shows up in this tail); 0s: scored on the horizon alone
    lookahead: Duration = seconds("12h")
    # perfect (the twin's own future), persistence (the same hours of the last day or week), or
    # noisy: the true influent with a seeded error (forecast_error)
    forecast: Literal["perfect", "persistence_day", "persistence_week", "noisy"] = "persistence_day"
    forecast_error: ForecastErrorSpec = Field(default_factory=ForecastErrorSpec)
    variables: list[VariableSpec] = Field(min_length=1)
    population: int = Field(80, ge=2)
    generations: int = Field(40, ge=0)
    tournament: int = Field(3, ge=2)
    elite: int = Field(10, ge=0)
    crossover_probability: float = Field(0.7, ge=0, le=1)
    crossover_indpb: float = Field(0.5, ge=0, le=1)
    mutation_probability: float = Field(0.3, ge=0, le=1)
    mutation_indpb: float = Field(0.2, ge=0, le=1)
    mutation_sigma_fraction: float = Field(0.1, gt=0)  # Gaussian sd as a fraction of each variable's range
    # effluent limits (g/m3) whose exceedance hours must not grow: BSM1's by default
    limits: dict[str, float] = Field(default_factory=lambda: {"SNH": 4.0, "Ntot": 18.0, "TSS": 30.0})
    # weights on flow-weighted effluent means (currency per g/m3 over the horizon): SNH, SNO, Ntot
    weights: dict[str, float] = Field(default_factory=dict)
    # process ranges of recorded signals (column: [low, high], null for an open side), hard
    # constraints of every plan (no hour outside): e.g. a heated tank's temperature when its
    # setpoint is a variable and the twin does not model what a colder tank does
    ranges: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    executor: Literal["serial", "process"] = "serial"
    workers: int | None = Field(None, ge=1)
    # ga: the specification's single-objective GA; nsga2: NSGA-II over (electricity cost, EQI,
    # CO2), applying the cheapest Pareto point within the EQI allowance
    algorithm: Literal["ga", "nsga2"] = "ga"
    # a plan's predicted EQI may exceed the default control's on the same forecast by at most this
    # fraction (a constraint, after the hours above the limits; null: EQI is not constrained)
    eqi_tolerance: float | None = Field(0.01, ge=0)
    # constraint tightening against forecast error: a plan may not have more hours than the
    # default control above each effluent limit times (1 - limit_margin), both on the forecast
    # (0: the limits themselves)
    limit_margin: float = Field(0.0, ge=0, lt=1)
    # safeguards on measured signals, each of which drops the plan for the default control (none:
    # the plan runs open loop to the next decision); one mapping or a list
    fallback: list[FallbackSpec] | None = None
    # what is minimised after feasibility: the electricity cost at the equipment's tariff, or
    # for a plant without machines (BSM1) the horizon's BSM1 operational cost index
    objective: Literal["electricity_cost", "bsm1_oci"] = "electricity_cost"

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback_list(cls, v):
        """One safeguard or a list of them; an empty list is none."""
        return [v] if isinstance(v, dict) else (v or None)

    @model_validator(mode="after")
    def _check(self):
        for k, v in enumerate(self.variables):
            if self.horizon % v.block:
                raise ValueError(f"variables[{k}].block {text_of(v.block)} does not divide the horizon "
                                 f"{text_of(self.horizon)}")
        if self.elite >= self.population:
            raise ValueError("elite must be smaller than the population")
        if self.algorithm == "nsga2" and self.population % 4:
            raise ValueError("NSGA-II's tournament needs a population that is a multiple of 4")
        for k in self.limits:
            if k not in ("SNH", "Ntot", "TSS", "CODt", "BOD5"):
                raise ValueError(f"limits.{k}: not an effluent quantity (SNH, Ntot, TSS, CODt, BOD5)")
        for k in self.weights:
            if k not in ("SNH", "SNO", "Ntot"):
                raise ValueError(f"weights.{k}: weights apply to SNH, SNO or Ntot")
        return self


class InitialSpec(_Strict):
    """Initial plant state: ``steady_state`` under an influent (BSM1 protocol) or the units' defaults.

    The steady state is found by integrating in 15-day chunks and solving for the root after
    each; ``settle`` is the longest integration before the integrated state is kept as is.
    """

    mode: Literal["steady_state", "default"] = "steady_state"
    influent: InfluentSpec = Field(default_factory=InfluentSpec)
    settle: Duration = seconds("200d")



class EvaluationSpec(_Strict):
    kind: Literal["bsm1", "none"] = "bsm1"
    start: Duration = seconds("0d")
    end: Duration | None = None
    sample_interval: Duration = seconds("15min")




class OutputsSpec(_Strict):
    sample_interval: Duration = seconds("15min")
    timeseries: bool = True
    report: bool = True
    record_settler_layers: bool = True
    #: save the run's state this often (simulated time) so that a killed run can be resumed
    #: (``twin run --resume``); none by default
    checkpoint_every: Duration | None = None




class SolverSpec(_Strict):
    rtol: float = Field(1e-6, gt=0, lt=1)
    atol: float = Field(1e-6, gt=0)
    max_step: Duration = seconds("1h")
    max_steps_per_event: int = Field(10_000_000, gt=0)



class Scenario(_Strict):
    name: str
    description: str = ""
    plant: str = "bsm1"
    seed: int = 0
    initial: InitialSpec = Field(default_factory=InitialSpec)
    warmup: list[Phase] = Field(default_factory=list)
    influent: InfluentSpec = Field(default_factory=InfluentSpec)
    duration: Duration
    inputs: dict[str, float] = Field(default_factory=dict)
    controllers: dict[str, ControllerSpec] = Field(default_factory=dict)
    sensors: dict[str, InstrumentSpec] = Field(default_factory=dict)
    events: list[EventSpec] = Field(default_factory=list)
    schedules: dict[str, ScheduleSpec] = Field(default_factory=dict)
    optimiser: OptimiserSpec | None = None
    equipment: EquipmentSpec | None = None
    environment: EnvironmentSpec | None = None
    fleet: FleetSpec | None = None
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    outputs: OutputsSpec = Field(default_factory=OutputsSpec)
    solver: SolverSpec = Field(default_factory=SolverSpec)


    @model_validator(mode="after")
    def _window(self):
        start, end = self.evaluation_window_s()
        if not 0 <= start < end <= self.duration:
            ev = self.evaluation
            raise ValueError(f"evaluation window [{text_of(ev.start)}, {text_of(ev.end or self.duration)}] "
                             f"must lie inside the run (duration {text_of(self.duration)}) and not be empty")
        return self

    # convenience -----------------------------------------------------------------
    @property
    def duration_s(self) -> int:
        return self.duration

    def evaluation_window_s(self) -> tuple[int, int]:
        end = self.duration if self.evaluation.end is None else self.evaluation.end
        return self.evaluation.start, end

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------
def _format_error(err: dict[str, Any], data: Any, root: type[BaseModel] | None = None) -> str:
    loc = [str(p) for p in err["loc"]]
    field = ".".join(loc) or "(top level)"
    return f"{field}: {_error_message(err, root=root)}"


def _error_message(err: dict[str, Any], name_key: bool = False, root: type[BaseModel] | None = None) -> str:
    """What is wrong, without the field (``name_key``: name an unknown key in the message;
    ``root``: the model validated, for the "did you mean" of an unknown key; the scenario by default)."""
    loc = [str(p) for p in err["loc"]]
    if err["type"] == "extra_forbidden":
        parent = _model_at(root or Scenario, err["loc"][:-1])
        options = list(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(loc[-1], options, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return (f"unknown key '{loc[-1]}'" if name_key else "unknown key") + hint
    if err["type"] == "missing":
        return "required field is missing"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    got = err.get("input")
    if err["type"] not in ("value_error", "assertion_error") and not isinstance(got, (dict, list)):
        msg += f" (got {got!r})"
    return msg


def _inner_model(ann: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model inside a field's annotation, and whether the field maps names to it
    (``dict[str, Model]``: the next part of a location is a name, not a field)."""
    import types
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann, False
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is dict and len(args) == 2:
        return _inner_model(args[1])[0], True
    if origin in (list, tuple, set, frozenset) and args:
        return _inner_model(args[0])
    if origin in (typing.Union, types.UnionType, typing.Annotated) and args:
        for a in args:
            m, named = _inner_model(a)
            if m is not None:
                return m, named
    return None, False


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class at ``loc`` inside ``model`` (for "did you mean" hints): list
    indices and the names of ``dict[str, Model]`` fields (loops, pumps, arms) are stepped over."""
    cur: type[BaseModel] | None = model
    name_next = False
    for part in loc:
        if isinstance(part, int):
            continue
        if name_next:
            name_next = False
            continue
        if cur is None or part not in cur.model_fields:
            return None
        cur, name_next = _inner_model(cur.model_fields[part].annotation)
    return None if name_next else cur


def parse_value(text: str) -> Any:
    """Interpret an override value as YAML (``3``, ``true``, ``[0, 360]``, ``file.txt``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


#: mappings whose keys are signal names with dots in them (``reactor3.kla_per_d``)
DOTTED_KEY_SECTIONS = (("inputs",), ("events", "*", "set"))


def split_override_key(dotted: str) -> list[str]:
    """``a.b[c.d].e`` -> ``["a", "b", "c.d", "e"]``: a part in square brackets is one key, dots
    and all."""
    parts: list[str] = []
    buf, i = "", 0
    while i < len(dotted):
        ch = dotted[i]
        if ch == "[":
            j = dotted.find("]", i)
            if j < 0:
                raise ConfigError(f"--set {dotted}: '[' without ']'")
            if buf:
                parts.append(buf)
            parts.append(dotted[i + 1:j])
            buf, i = "", j + 1
            if i < len(dotted) and dotted[i] == ".":
                i += 1
            continue
        if ch == ".":
            parts.append(buf)
            buf = ""
        else:
            buf += ch
        i += 1
    if buf or (dotted and dotted[-1] == "."):
        parts.append(buf)
    return parts


def _in_dotted_section(path: list[str]) -> bool:
    return any(len(path) == len(sec) and all(s == "*" or s == p for s, p in zip(sec, path))
               for sec in DOTTED_KEY_SECTIONS)


def apply_override(data: dict[str, Any], dotted: str, value: Any, source: str) -> list[str]:
    """Set ``data[a][b][c] = value`` for ``dotted = "a.b.c"``; numeric parts index lists.

    Keys with dots in them: a part in square brackets is one key (``inputs[reactor3.kla_per_d]``);
    inside a mapping of signal names (``inputs``, ``events.N.set``) the rest of the path is the
    key (``inputs.reactor3.kla_per_d``); elsewhere an existing key that spans several parts is
    used whole. Returns the path of keys set (one key per level)."""
    parts = split_override_key(dotted)
    if not parts or not all(parts):
        raise ConfigError(f"--set {dotted}: expected a dotted key such as influent.file")
    cur: Any = data
    path: list[str] = []
    i = 0
    while i < len(parts) - 1:
        part = parts[i]
        if isinstance(cur, list):
            if not part.isdigit() or int(part) >= len(cur):
                raise ConfigError(f"--set {dotted}: '{'.'.join(parts[:i])}' is a list; "
                                  f"'{part}' is not an index below {len(cur)}")
            cur = cur[int(part)]
            path.append("*")
            i += 1
            continue
        if _in_dotted_section(path):
            parts = parts[:i] + [".".join(parts[i:])]
            break
        span = next((j for j in range(len(parts), i + 1, -1) if ".".join(parts[i:j]) in cur), None)
        if span is not None and span > i + 1:
            parts = parts[:i] + [".".join(parts[i:span])] + parts[span:]
            part = parts[i]
            if i == len(parts) - 1:
                break
        nxt = cur.get(part)
        if nxt is None:
            nxt = cur[part] = {}
        if not isinstance(nxt, (dict, list)):
            raise ConfigError(f"--set {dotted}: '{'.'.join(parts[: i + 1])}' is a value, not a section")
        cur = nxt
        path.append(part)
        i += 1
    last = parts[-1]
    if isinstance(cur, list):
        if not last.isdigit() or int(last) >= len(cur):
            raise ConfigError(f"--set {dotted}: '{last}' is not an index of the list")
        cur[int(last)] = value
    else:
        cur[last] = value
    return parts


def load_scenario(path: str | Path, overrides: list[str] | None = None, seed: int | None = None
                  ) -> tuple[Scenario, Path]:
    """Read, override and validate a scenario file. Raises ConfigError naming file and field."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: scenario file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read scenario file: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scenario must be a YAML mapping (key: value), got {type(data).__name__}")
    applied: dict[str, list[str]] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected dotted.key=value")
        key, _, raw = item.partition("=")
        applied[key.strip()] = apply_override(data, key.strip(), parse_value(raw), str(path))
    if seed is not None:
        data["seed"] = seed
        applied["--seed"] = ["seed"]
    return validate_scenario(data, str(path), applied), path


def _override_of(loc: list[str], overrides: dict[str, list[str]]) -> str | None:
    """The override (last one wins) whose value holds the field at ``loc``, or that created it."""
    for key, parts in reversed(overrides.items()):
        n = min(len(loc), len(parts))
        if n and loc[:n] == parts[:n]:
            return key
    return None


def validate_scenario(data: Any, source: str, overrides: dict[str, list[str]] | None = None) -> Scenario:
    """Validate a scenario mapping. An error in a field set by an override (``overrides``: the
    ``--set`` key -> the path of keys it set) names the override, not the file."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        file_lines, override_lines = [], []
        for e in errors[:5]:
            key = _override_of([str(p) for p in e["loc"]], overrides or {})
            if key is None:
                file_lines.append(_format_error(e, data))
            else:
                flag = key if key == "--seed" else f"--set {key}"
                override_lines.append(f"{flag}: {_error_message(e, name_key=True)}")
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        parts = ([f"{source}: " + "; ".join(file_lines)] if file_lines else []) + override_lines
        raise ConfigError("; ".join(parts) + more) from None


def dump_scenario(s: Scenario) -> str:
    return yaml.safe_dump(s.to_dict(), sort_keys=False)


__all__ = ["Scenario", "load_scenario", "validate_scenario", "dump_scenario", "format_duration"]
