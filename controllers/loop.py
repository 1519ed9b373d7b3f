"""A control loop as a SimPy process: sample the sensor, compute, write the actuator."""

from __future__ import annotations

from twin.durations import parse_duration


def loop_process(env, plant, name: str, sample_time: str, ctrl, read, act_index: int, sensor=None, actuator=None,
                 observers=()):
    """Every ``sample_time``: measure (through ``sensor`` if given), step the controller, apply
    the output (through ``actuator`` dynamics if given) and notify ``observers``.

    ``ctrl`` is any object with ``step(y) -> u`` (a :class:`controllers.pid.PID`).
    """
    period = parse_duration(sample_time)
    while True:
        y_true = read()
        y = sensor.measure(y_true) if sensor is not None else y_true
        u = ctrl.step(y)
        plant.set_input(act_index, actuator.measure(u) if actuator is not None else u)
        for obs in observers:
            obs(env.now, y_true, y, u)
        yield env.timeout(period)
