"""A control loop of the plant: its PID, sensor and actuator models, and the SimPy process
that samples, computes and writes the actuator."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Loop:
    """One loop of a run: scenario entry, controller, wiring to the plant and its statistics."""

    name: str
    spec: Any
    ctrl: Any  # controllers.pid.PID
    read: Callable[[], float]  # true process value
    act: int  # plant input index
    sensor: Any = None
    actuator: Any = None
    stats: Any = None  # controllers.autotune.LoopStats
    last_measurement: float = float("nan")
    busy: bool = False  # an identification test is running
    retunes: int = 0
    tuning: Any = None
    model: Any = None
    ku_ref: float | None = None  # ultimate gain of the last relay test (adaptive rescaling)
    sat_log: list = field(default_factory=list)
    #: (time, measurement, actuator value applied) of recent samples, for adaptive monitors
    io_log: deque = field(default_factory=lambda: deque(maxlen=20_000))
    #: state of the adaptive monitor (model_gain): reference gain indicator, ratio applied, last retune
    adapt: dict = field(default_factory=dict)

    #: inner loops whose setpoint this loop's output is (a cascade); empty: the output is plant input ``act``
    targets: list = field(default_factory=list)
    #: where the compiled sampled layer reads the measurement (controllers.sampled.signal_source)
    source: tuple | None = None

    _WIRING = ("name", "spec", "read", "act", "targets", "source")

    def output(self, plant) -> float:
        """The output this loop applies now: its plant input, or its inner loop's setpoint."""
        return float(self.targets[0].ctrl.setpoint) if self.targets else float(plant.u[self.act])

    def apply(self, plant, u: float) -> None:
        if self.targets:
            for inner in self.targets:
                inner.ctrl.setpoint = u
        else:
            plant.set_input(self.act, u)

    def checkpoint_state(self) -> dict:
        """The loop's state (controller, sensor and actuator models, statistics), not its wiring."""
        return {k: v for k, v in vars(self).items() if k not in self._WIRING}

    def restore_state(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def saturated_fraction(self, t_from: int, t_to: int) -> float:
        flags = [s for t, s in self.sat_log if t_from <= t < t_to]
        return sum(flags) / len(flags) if flags else 0.0


def loop_process(env, plant, loop: Loop, wake_at: int | None = None):
    """One loop on its own, every sample time (see :func:`controllers.sampled.sample_loop`; a
    run steps its loops in groups, :func:`controllers.sampled.loop_group_process`).
    ``wake_at``: resume a saved run at the loop's next sample."""
    from controllers.sampled import sample_loop

    period = loop.spec.sample_time
    if wake_at is not None:
        yield env.timeout(wake_at - env.now)
    while True:
        sample_loop(env, plant, loop)
        yield env.timeout(period)
