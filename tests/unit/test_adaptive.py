"""Adaptive gain rescaling from relay tests, on a linear plant whose gain drops by 40 %."""

from __future__ import annotations

from pydantic import BaseModel

from controllers.autotune import LoopStats, relay_rescale
from controllers.loop import Loop, loop_process
from controllers.lti import LTIPlant
from controllers.models import FOPDT
from controllers.pid import PID, PIDSettings
from twin.clock import TwinEnvironment
from twin.scenario import AdaptiveSpec, AutotuneSpec, Duration, seconds


class _Spec(BaseModel):
    sample_time: Duration = seconds("1min")


class _PlantInput:
    """The loop writes plant inputs by index; route index 0 to the linear plant."""

    def __init__(self, lti):
        self.lti = lti

    def set_input(self, index, value):
        self.lti.write(value)


def test_relay_rescaling_restores_the_loop_gain():
    """The ultimate gain scales with 1/(process gain): after the plant gain falls to 0.6, the
    controller gain must be multiplied by 1/0.6 (within 5 %), keeping the margins."""
    env = TwinEnvironment()
    model = FOPDT(1.0, 0.02, 0.004)  # days
    lti = LTIPlant(env, model, 1 / 1440 / 4)
    pid = PID(PIDSettings(K=2.0, Ti_d=0.02, u_min=-50, u_max=50), 0.0, 1 / 1440)
    pid.initialise(0.0, 0.0)
    loop = Loop("test", _Spec(), pid, lti.read, 0, stats=LoopStats(1 / 1440))
    loop.model = model
    env.process(loop_process(env, _PlantInput(lti), loop))
    adaptive = AdaptiveSpec(method="relay_rescale", relay_amplitude=1.0, relay_periods=5, relay_duration="1d")
    spec = AutotuneSpec()

    def scenario():
        yield env.timeout(3600)
        first = yield env.process(relay_rescale(env, loop, spec, adaptive, "reference"))
        assert first is None and loop.ku_ref is not None
        lti.sim.Cd = lti.sim.Cd * 0.6  # the process gain falls by 40 %
        yield env.timeout(3600)
        ratio = yield env.process(relay_rescale(env, loop, spec, adaptive, "drift"))
        return ratio

    proc = env.process(scenario())
    env.run(until=proc)
    assert abs(proc.value - 1 / 0.6) / (1 / 0.6) < 0.05
    assert abs(pid.settings.K - 2.0 / 0.6) / (2.0 / 0.6) < 0.05
    assert loop.retunes == 1
