"""Sampled-data control in compiled code: the plant's loops stepped inside the integrator.

A loop sampled every minute costs, as SimPy events in Python, more than the integration of
the plant between two samples (a measurement through the sensor model, the PID step, the
actuator model, the statistics, two events). Between two *other* events (influent changes,
recorder samples, machines, agents, schedule changes) nothing but the loops touches the
plant, so the loops of one sample period run together: one SimPy process per sample period
(a loop group) which, at each wake-up, looks at the time of the next other event and, where
every loop of the group is a plain one, hands the samples up to that time to a compiled
function (:data:`SAMPLED_TEMPLATE`, appended to each plant's generated module) that
integrates from sample to sample with the same integrator calls and runs the same arithmetic
as the Python path (:func:`sample_loop`, :class:`controllers.pid.PID`,
:class:`controllers.sensors.Sensor`, :class:`controllers.autotune.LoopStats`), in the same
order. A plain loop measures a plant state, drives a plant input (not another loop's
setpoint), is in automatic and has no adaptive monitor reading its recent samples; any
other loop of the group (a cascade's outer loop, a loop under an identification test, an
adaptive loop, a measurement computed from streams or machines) makes the group take that
sample in Python, one loop after the other, as before.

Equal results: the integrator is called from sample to sample exactly as the Python path
calls it (the same step-size sequence), the PID, sensor and statistics formulas are the same
operations in the same order, and each sensor's noise is drawn from its own stream in the
same blocks; a test compares the two paths sample by sample.
"""

from __future__ import annotations

import math

import numpy as np

from twin.durations import parse_duration

#: columns of the float parameter table of a compiled loop group
K, TI, TD, N, B, C, TT, OFFSET, UMIN, UMAX, RATE, TS = range(12)
#: columns of the state table: setpoint, integral, derivative, y_prev, r_prev, u_prev, has y_prev, has u_prev
SP, INTEG, DERIV, YPREV, RPREV, UPREV, HASY, HASU = range(8)
#: columns of a sensor / actuator model table: present, a (lag factor), noise sd, has range, low, high, initialised
PRESENT, LAG, NOISE, HASRANGE, LO, HI, INIT = range(7)

SAMPLED_TEMPLATE = '''
@njit(cache=True, error_model="numpy")
def _lag_model(m, order, states, i, v):
    """Sensor/actuator lag cascade of loop i (controllers.sensors.Sensor.measure, without noise)."""
    if m[i, 6] == 0.0:
        for j in range(order[i]):
            states[i, j] = v
        m[i, 6] = 1.0
    a = m[i, 1]
    b = 1.0 - a
    prev = v
    for j in range(order[i]):
        prev = a * states[i, j] + b * prev
        states[i, j] = prev
    return prev


@njit(cache=True, error_model="numpy")
def _clip(v, lo, hi):
    """min(max(v, lo), hi) with Python's semantics (the first argument is kept on ties)."""
    w = v
    if lo > w:
        w = lo
    if hi < w:
        w = hi
    return w


@njit(cache=True, error_model="numpy")
def advance_sampled(x, u, du, t0_ticks, period, n_ticks, h, rtol, atol, h_max, max_steps, M, P,
                    meas, act, fp, ip, st, last, sens, sens_order, sens_states, noise, noise_k,
                    actu, actu_order, actu_states, stats, win):
    """Samples at t0_ticks + k period (k < n_ticks) of a loop group: integrate to each sample
    (not before the first), then step every loop in order. Returns (h, steps, nfev, status,
    bad, t_fail_d, ticks_done)."""
    nl = meas.size
    steps = 0
    nfev = 0
    for k in range(n_ticks):
        now = t0_ticks + k * period
        if k > 0:
            t0 = (now - period) / 86400.0
            t1 = now / 86400.0
            t, h, s, nf, status, bad = advance(x, u, du, t0, t1, h, rtol, atol, h_max, max_steps, M, P)
            steps += s
            nfev += nf
            if status != 0:
                return h, steps, nfev, status, bad, t, k
            for j in range(u.size):
                u[j] = u[j] + (t1 - t0) * du[j]
        for i in range(nl):
            y_true = x[meas[i]]
            if y_true != y_true:
                continue
            y = y_true
            if sens[i, 0] != 0.0:
                y = _lag_model(sens, sens_order, sens_states, i, y_true)
                if sens[i, 2] > 0:
                    y += sens[i, 2] * noise[i, noise_k[i]]
                    noise_k[i] += 1
                if sens[i, 3] != 0.0:
                    y = _clip(y, sens[i, 4], sens[i, 5])
            # PID step (controllers.pid.PID.step, automatic mode)
            Kp = fp[i, 0]
            Ti = fp[i, 1]
            Td = fp[i, 2]
            hs = fp[i, 11]
            r = st[i, 0]
            if st[i, 6] == 0.0:
                st[i, 3] = y
                st[i, 4] = r
                st[i, 6] = 1.0
            e = r - y
            if Td > 0:
                Tf = Td / fp[i, 3]
                ad = Tf / (Tf + hs)
                bd = Kp * Td / (Tf + hs)
                d_sig = (fp[i, 5] * r - y) - (fp[i, 5] * st[i, 4] - st[i, 3])
                D = ad * st[i, 2] + bd * d_sig
            else:
                D = 0.0
            Pt = Kp * (fp[i, 4] * r - y)
            if ip[i, 0] == 1:  # velocity form
                u_base = st[i, 5] if st[i, 7] != 0.0 else fp[i, 7]
                P_prev = Kp * (fp[i, 4] * st[i, 4] - st[i, 3])
                dI = Kp * hs / Ti * e if np.isfinite(Ti) else 0.0
                v = u_base + (Pt - P_prev) + dI + (D - st[i, 2])
            else:
                v = fp[i, 7] + Pt + st[i, 1] + D
            uo = _clip(v, fp[i, 8], fp[i, 9])
            if st[i, 7] != 0.0 and np.isfinite(fp[i, 10]):
                dmax = fp[i, 10] * hs
                uo = _clip(uo, st[i, 5] - dmax, st[i, 5] + dmax)
            if ip[i, 0] != 1 and np.isfinite(Ti):
                if ip[i, 1] == 1:  # clamping
                    pushing_out = (uo != v) and ((v > uo and e * Kp > 0) or (v < uo and e * Kp < 0))
                    if not pushing_out:
                        st[i, 1] += Kp * hs / Ti * e
                else:
                    st[i, 1] += hs * (Kp * e / Ti + (uo - v) / fp[i, 6])
            st[i, 2] = D
            st[i, 3] = y
            st[i, 4] = r
            st[i, 5] = uo
            st[i, 7] = 1.0
            sat = uo != v
            last[i, 0] = y
            last[i, 1] = uo
            last[i, 2] = e
            last[i, 3] = 1.0 if sat else 0.0
            ua = uo
            if actu[i, 0] != 0.0:
                ua = _lag_model(actu, actu_order, actu_states, i, uo)
            u[act[i]] = ua
            du[act[i]] = 0.0
            # statistics (controllers.autotune.LoopStats.observe)
            if win[i, 0] >= 0 and win[i, 0] <= now and now < win[i, 1]:
                ea = abs(r - y_true)
                stats[i, 0] += 1.0
                stats[i, 1] += ea
                stats[i, 2] += ea * ea
                if ea > stats[i, 3] or ea != ea:
                    stats[i, 3] = ea
                if sat:
                    stats[i, 4] += 1.0
    return h, steps, nfev, 0, -1, 0.0, n_ticks
'''

#: step plain loops in compiled code (False: always the Python path; the two give equal results)
COMPILED = True
#: most samples one compiled call takes (bounds the work between two looks at the clock)
MAX_TICKS = 100_000


def sample_loop(env, plant, loop) -> None:
    """One sample of one loop in Python: measure (through the sensor model if any), step the
    PID, apply the output (through the actuator model if any), record the statistics. Without
    a measurement (a signal that is not available, NaN) the loop holds its actuator."""
    y_true = loop.read()
    if y_true != y_true:
        return
    ctrl = loop.ctrl
    y = loop.sensor.measure(y_true) if loop.sensor is not None else y_true
    loop.last_measurement = y
    u = ctrl.step(y)
    u_applied = loop.actuator.measure(u) if loop.actuator is not None else u
    loop.apply(plant, u_applied)
    sat = ctrl.last["saturated"]
    if loop.stats is not None:
        loop.stats.observe(env.now, ctrl.setpoint, y_true, sat)
    if loop.stats is None or loop.stats.keep_recent:
        loop.io_log.append((env.now, y, u_applied))
        loop.sat_log.append((env.now, sat))
        if len(loop.sat_log) > 200_000:
            del loop.sat_log[:100_000]


def plain(loop) -> bool:
    """Whether a loop can be stepped in compiled code now (see the module's docstring)."""
    s = loop.ctrl.settings
    return (loop.state_slot is not None and not loop.targets and loop.act >= 0 and not loop.ctrl.manual
            and not loop.busy and loop.stats is not None and not loop.stats.keep_recent
            and s.form in ("positional", "velocity") and s.anti_windup in ("back_calculation", "clamping")
            and (loop.actuator is None or loop.actuator.noise_sd == 0))


class _Tables:
    """A loop group's loops packed into arrays for the compiled step, and back."""

    def __init__(self, loops):
        n = len(loops)
        self.meas = np.array([-1 if lp.state_slot is None else lp.state_slot for lp in loops], dtype=np.int64)
        self.act = np.array([lp.act for lp in loops], dtype=np.int64)
        self.ip = np.array([[1 if lp.ctrl.settings.form == "velocity" else 0,
                             1 if lp.ctrl.settings.anti_windup == "clamping" else 0] for lp in loops], dtype=np.int64)
        so = [lp.sensor.order if lp.sensor is not None else 0 for lp in loops]
        ao = [lp.actuator.order if lp.actuator is not None else 0 for lp in loops]
        self.sens_order = np.array(so, dtype=np.int64)
        self.actu_order = np.array(ao, dtype=np.int64)
        self.fp = np.zeros((n, 12))
        self.st = np.zeros((n, 8))
        self.last = np.zeros((n, 4))
        self.sens = np.zeros((n, 7))
        self.actu = np.zeros((n, 7))
        self.sens_states = np.zeros((n, max(so + [1])))
        self.actu_states = np.zeros((n, max(ao + [1])))
        self.stats = np.zeros((n, 5))
        self.win = np.full((n, 2), -1, dtype=np.int64)
        self.noise_k = np.zeros(n, dtype=np.int64)
        self.noise = np.zeros((n, 1))

    def pack(self, loops) -> int:
        """Copy the loops' states in; returns how many samples their noise blocks allow."""
        room = MAX_TICKS
        blocks = []
        for i, lp in enumerate(loops):
            c, s = lp.ctrl, lp.ctrl.settings
            self.fp[i] = (s.K, s.Ti_d, s.Td_d, s.N, s.b, s.c, s.tracking_time(), s.offset, s.u_min, s.u_max,
                          s.rate_max_per_d, c.Ts_d)
            self.st[i] = (c.setpoint, c.integral, c.derivative, c.y_prev if c.y_prev is not None else 0.0,
                          c.r_prev if c.r_prev is not None else 0.0, c.u_prev if c.u_prev is not None else 0.0,
                          float(c.y_prev is not None), float(c.u_prev is not None))
            _pack_model(self.sens, self.sens_states, i, lp.sensor)
            _pack_model(self.actu, self.actu_states, i, lp.actuator)
            sen = lp.sensor
            if sen is not None and sen.noise_sd > 0:
                if sen._k == sen._noise.size:  # the block Sensor.measure would draw next
                    sen._noise = sen.rng.standard_normal(1024)
                    sen._k = 0
                room = min(room, sen._noise.size - sen._k)
                blocks.append(sen._noise)
                self.noise_k[i] = sen._k
            else:
                blocks.append(None)
                self.noise_k[i] = 0
            st = lp.stats
            self.stats[i] = (st.n, st.sum_abs, st.sum_sq, st.max_abs, st.n_saturated)
            la = c.last
            self.last[i] = (la["y"], la["u"], la["e"], float(la["saturated"]))
            self.win[i] = st.window_s if st.window_s is not None else (-1, -1)
        width = max([b.size for b in blocks if b is not None] + [1])
        if self.noise.shape[1] != width:
            self.noise = np.zeros((len(loops), width))
        for i, b in enumerate(blocks):
            if b is not None:
                self.noise[i, :b.size] = b
        return room

    def unpack(self, loops, now_ticks: int) -> None:
        for i, lp in enumerate(loops):
            c = lp.ctrl
            st = self.st[i]
            c.integral, c.derivative = float(st[INTEG]), float(st[DERIV])
            if st[HASY]:
                c.y_prev, c.r_prev = float(st[YPREV]), float(st[RPREV])
            if st[HASU]:
                c.u_prev = float(st[UPREV])
            la = self.last[i]
            c.last = {"y": float(la[0]), "u": float(la[1]), "e": float(la[2]), "saturated": bool(la[3])}
            lp.last_measurement = float(la[0])
            _unpack_model(self.sens, self.sens_states, i, lp.sensor)
            _unpack_model(self.actu, self.actu_states, i, lp.actuator)
            if lp.sensor is not None and lp.sensor.noise_sd > 0:
                lp.sensor._k = int(self.noise_k[i])
            s = lp.stats
            s.n, s.sum_abs, s.sum_sq = int(self.stats[i, 0]), float(self.stats[i, 1]), float(self.stats[i, 2])
            s.max_abs, s.n_saturated = float(self.stats[i, 3]), int(self.stats[i, 4])


def _pack_model(table: np.ndarray, states: np.ndarray, i: int, m) -> None:
    if m is None:
        table[i] = 0.0
        return
    rng = m.range
    table[i] = (1.0, m.a, m.noise_sd, float(rng is not None), rng[0] if rng is not None else 0.0,
                rng[1] if rng is not None else 0.0, float(m.states is not None))
    if m.states is not None:
        states[i, :m.order] = m.states


def _unpack_model(table: np.ndarray, states: np.ndarray, i: int, m) -> None:
    if m is not None and table[i, INIT]:
        m.states = [float(v) for v in states[i, :m.order]]


def loop_group_process(env, plant, loops: list, wake_at: int | None = None):
    """The loops of one sample period (see the module docstring). ``wake_at``: resume a saved
    run at the group's next sample."""
    period = parse_duration(loops[0].spec.sample_time)
    tables = _Tables(loops)
    if wake_at is not None:
        yield env.timeout(wake_at - env.now)
    while True:
        n = 1
        if COMPILED and all(plain(lp) for lp in loops):
            nxt = env.peek()
            if nxt > env.now:  # samples at now + k period before the next other event
                n = math.ceil((nxt - env.now) / period) if math.isfinite(nxt) else MAX_TICKS
        if n >= 2:
            n = min(n, tables.pack(loops))
        if n >= 2:
            plant.sync()
            h, steps, nfev, status, bad, t_fail, done = plant.cp.sampled(
                plant.x, plant.u, plant.du, int(env.now), int(period), int(n), plant.h, plant.rtol, plant.atol,
                plant.h_max, plant.max_steps, plant.cp.M, plant.cp.P, tables.meas, tables.act, tables.fp, tables.ip,
                tables.st, tables.last, tables.sens, tables.sens_order, tables.sens_states, tables.noise,
                tables.noise_k, tables.actu, tables.actu_order, tables.actu_states, tables.stats, tables.win)
            plant.steps += steps
            plant.rhs_evals += nfev
            plant.h = h
            if status != 0:
                plant.t_sync = int(env.now) + (done - 1) * period
                plant._fail(status, bad, t_fail)
            plant.t_sync = int(env.now) + (n - 1) * period
            plant._version += 1
            tables.unpack(loops, plant.t_sync)
            yield env.timeout(n * period)
            continue
        for lp in loops:
            sample_loop(env, plant, lp)
        yield env.timeout(period)
