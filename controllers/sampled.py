"""Sampled-data control in compiled code: loops, instruments and machines stepped inside the integrator.

Everything the plant samples on a fixed period (control loops, instruments, the equipment
layer) runs as one SimPy process per sample period, a :class:`SampledBlock`, which at each
sample steps its loops, then its instruments, then the machines, in that order. Between two
*other* events (influent changes, recorder samples, weather, schedule changes, agents,
failures) nothing else touches the plant, so at each wake-up the block looks at the time of
the next other event and, where all its parts are plain, hands the samples up to that time to
a compiled function (:data:`SAMPLED_TEMPLATE`, appended to each plant's generated module). It
integrates from sample to sample with the same integrator calls and runs the same arithmetic
as the Python path in the same order: :func:`sample_loop` (with :class:`controllers.pid.PID`,
:class:`controllers.sensors.Sensor`, :class:`controllers.autotune.LoopStats`),
:meth:`controllers.sensors.Instrument.sample`, and :meth:`twin.equipment.layer.Equipment.update`
with its air header (:func:`twin.equipment.aeration.solve_air_system`), pumps (staging,
limits), mixers and heating. A sample at which a machine decision changes (a blower starts,
a valve opens fully, a pump stages, an output is held) ends the compiled call, so the event
log gets the decision at its time from the Python code that words it.

Plain parts: a loop that measures a plant state, a stream value or the air header's pressure,
drives a plant input (not another loop's setpoint), is in automatic and has no adaptive
monitor reading its recent samples; an instrument reading such a signal; an equipment layer
with an air header. Anything else (a cascade's outer loop, a loop under an identification
test, the first sample of the machines) makes the block take that sample in Python, as before.

Equal results: the two paths give the same numbers (np.array_equal on every recorded column,
loop statistic and event; tests compare them for each PID form, anti-windup, derivative,
rate limit, sensor and actuator model, instrument, machine decision, schedule and fork).
"""

from __future__ import annotations

import math

import numpy as np

from twin.equipment.layer import AREAS
from twin.units.asm1 import IDX, TSS_PER_COD

#: step plain parts in compiled code (False: always the Python path; the two give equal results)
COMPILED = True
#: most samples one compiled call takes (bounds the work between two looks at the clock)
MAX_TICKS = 100_000

_SOLIDS = tuple(IDX[n] for n in ("XI", "XS", "XBH", "XBA", "XP"))
#: component codes of a stream signal beyond the ASM1 concentrations
Q_CODE, TSS_CODE, NTU_CODE = 13, 14, 15

SAMPLED_TEMPLATE = '''
@njit(cache=True, error_model="numpy")
def stream_values_into(t, x, u, M, P, Q, C, q):
    """Flows and concentrations of every stream (twin.flowsheet.CompiledPlant.stream_values)."""
    _flows(M, u, Q)
    add_state_flows(t, x, u, P, Q, q)
    for i in range(C.shape[0]):
        for j in range(C.shape[1]):
            C[i, j] = 0.0
    streams(t, x, u, Q, P, C)


@njit(cache=True, error_model="numpy")
def _read(src, i, t, x, u, M, P, Q, C, q, hp):
    """Signal i of a source table: (kind, index, component); kind 0 state, 1 air header
    pressure (kPa), 2 stream value (component 0-12, 13 Q, 14 TSS, 15 turbidity)."""
    kind = src[i, 0]
    if kind == 0:
        return x[src[i, 1]]
    if kind == 1:
        return hp
    stream_values_into(t, x, u, M, P, Q, C, q)
    k = src[i, 1]
    comp = src[i, 2]
    if comp == 13:
        return Q[k]
    if comp >= 14:
        s = 0.0
        for j in SOLIDS:
            s += C[k, j]
        v = TSS_PER_COD * s
        if comp == 15:
            v = v / TSS_PER_NTU
        return v
    return C[k, comp]


@njit(cache=True, error_model="numpy")
def _lag(m, order, states, i, v):
    """Lag cascade of model i (controllers.sensors.Sensor.measure without the noise)."""
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
def _sensor(m, order, states, noise, noise_k, i, v):
    """controllers.sensors.Sensor.measure: lags, noise from the model's block, range."""
    y = _lag(m, order, states, i, v)
    if m[i, 2] > 0:
        y += m[i, 2] * noise[i, noise_k[i]]
        noise_k[i] += 1
    if m[i, 3] != 0.0:
        y = _clip(y, m[i, 4], m[i, 5])
    return y


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
def _pymin(a, b):
    return b if b < a else a


@njit(cache=True, error_model="numpy")
def _pymax(a, b):
    return b if b > a else a


@njit(cache=True, error_model="numpy")
def _sote(z, i, q):
    if q <= 0:
        return 0.0
    qq = q / 24.0 / z[i, 2]
    return _pymin(0.95, z[i, 3] * z[i, 1] * (qq / z[i, 4]) ** (-z[i, 5]))


@njit(cache=True, error_model="numpy")
def _kla(z, i, q, temp):
    sotr = _sote(z, i, q) * q * RHO_AIR_STD * O2_MASS_FRACTION
    kla20 = sotr * 1000.0 / (z[i, 0] * CS20_G_M3)
    return z[i, 6] * 1.0 * THETA_KLA ** (temp - 20.0) * kla20


@njit(cache=True, error_model="numpy")
def _airflow_for_kla(z, i, kla, temp):
    if kla <= 0:
        return 0.0
    b = z[i, 5]
    scale = z[i, 6] * 1.0 * THETA_KLA ** (temp - 20.0) * RHO_AIR_STD * O2_MASS_FRACTION * 1000.0 \\
        / (z[i, 0] * CS20_G_M3)
    coeff = z[i, 3] * z[i, 1] * (24.0 * z[i, 2] * z[i, 4]) ** b
    q = (kla / (scale * coeff)) ** (1.0 / (1.0 - b))
    if _sote(z, i, q) >= 0.95:
        q = kla / (scale * 0.95)
    return q


@njit(cache=True, error_model="numpy")
def _max_flow(z, i, dp):
    return z[i, 7] * np.sqrt(_pymax(dp, 0.0))


@njit(cache=True, error_model="numpy")
def _zone_flows_sum(z, p, demands):
    s = 0.0
    for i in range(demands.size):
        s += _pymin(demands[i], _max_flow(z, i, p - z[i, 9]))
    return s


@njit(cache=True, error_model="numpy")
def _pump_speed(pp, j, q, n, cond):
    """twin.equipment.pumps.speed_for_flow."""
    head = pp[j, 7] + pp[j, 8] * (q * q)
    q1 = q / n
    return np.sqrt((head + pp[j, 6] * (q1 * q1)) / (pp[j, 0] * cond))


@njit(cache=True, error_model="numpy")
def _pump_power(pp, j, q, head, r, cond):
    """twin.equipment.pumps.power: electrical W of one pump."""
    if r <= 0:
        eta = 0.0
    else:
        xx = q / r / pp[j, 1]
        eta = _pymax(0.0, pp[j, 3] * cond * xx * (2.0 - xx))
    hyd = RHO_WATER * G * q * head
    if eta > 0:
        shaft = hyd / eta
    elif hyd == 0:
        shaft = 0.0
    else:
        shaft = np.inf
    return shaft / (pp[j, 4] * pp[j, 5])


@njit(cache=True, error_model="numpy")
def _equipment(now, x, u, du, es, ei, z, zi, zo, pp, pi, po, pclamp, mix_w, mix_i, heat_i, heat_t, hclamp,
               demands, flows):
    """twin.equipment.layer.Equipment.update (with an air header) at time ``now`` (s). Returns
    the header pressure (kPa)."""
    # energy meter: the power held since the last sample
    dt_h = (now - ei[0]) / 3600.0
    for a in range(4):
        es[8 + a] += es[4 + a] * dt_h
    ei[0] = now
    temp = es[0]
    nz = demands.size
    for i in range(nz):
        demands[i] = _airflow_for_kla(z, i, u[zi[i, 0]], temp)
    total_d = 0.0
    for i in range(nz):
        total_d += demands[i]
    # blowers to run (Equipment._blowers_for)
    if total_d <= 0:
        n = 0
    else:
        if np.isfinite(es[20]):
            n_min = int(np.ceil(total_d / es[20]))
        else:
            n_min = 1
        n = int(es[1])
        if n == 0:
            n = n_min
        if n_min > n:
            n = n_min
        elif n > 1 and total_d < (n - 1) * es[20] * (1.0 - es[21]):
            n -= 1
        n = min(max(n, 1), max(ei[1], 0))
    # air distribution (twin.equipment.aeration.solve_air_system)
    speed = u[ei[2]]
    top = speed * speed * es[22]
    min_back = z[0, 9]
    for i in range(1, nz):
        if z[i, 9] < min_back:
            min_back = z[i, 9]
    if n <= 0 or top <= min_back or total_d <= 0:
        hdr = _pymax(top, 0.0) if n > 0 else 0.0
        rise = hdr
        for i in range(nz):
            flows[i] = 0.0
            zo[i, 1] = 0.0
        total = 0.0
    else:
        c = es[23] / (n * n) + es[24]
        q = total_d
        p = top - c * q * q
        ok = True
        for i in range(nz):
            d = demands[i]
            if not (d <= 0 or (p > z[i, 9] and _max_flow(z, i, p - z[i, 9]) >= d)):
                ok = False
        if not ok:
            lo = min_back
            hi = top
            for _ in range(100):
                if hi - lo <= 1e-12 * top:
                    break
                mid = 0.5 * (lo + hi)
                if _zone_flows_sum(z, mid, demands) - np.sqrt((top - mid) / c) > 0:
                    hi = mid
                else:
                    lo = mid
            p = 0.5 * (lo + hi)
        total = 0.0
        for i in range(nz):
            flows[i] = _pymin(demands[i], _max_flow(z, i, p - z[i, 9]))
            total += flows[i]
        for i in range(nz):
            f = flows[i]
            full = _max_flow(z, i, p - z[i, 9])
            if f <= 0:
                zo[i, 1] = 0.0
            elif full <= f:
                zo[i, 1] = 1.0
            else:
                zo[i, 1] = _pymax(0.0, 1.0 + np.log(f / full) / np.log(z[i, 8]))
        hdr = p
        rise = p + es[24] * (total * total)
    for i in range(nz):
        d = demands[i]
        ratio = _kla(z, i, flows[i], temp) / _kla(z, i, d, temp) if d > 0 else 1.0
        f = z[i, 10] * ratio
        if u[zi[i, 1]] != f:
            u[zi[i, 1]] = f
            du[zi[i, 1]] = 0.0
    p_w = 0.0
    p1 = es[27]
    if n > 0 and total > 0:
        each = _pymax(total / n, es[25])
        xx = each / es[26]
        eff = _pymax(0.2, es[28] * (1.0 - 0.3 * ((xx - 1.0) * (xx - 1.0))))
        m_dot = each / 86400.0 * RHO_AIR_STD
        t1_k = es[29] + 273.15
        cpw = m_dot * CP_AIR * t1_k * (((p1 + rise) / p1) ** ((K_AIR - 1) / K_AIR) - 1.0) / eff
        p_w = n * cpw / es[30] * es[31] / es[32]
    es[1] = float(n)
    es[2] = total
    es[3] = p1 + rise
    hp = hdr / 1000.0
    for i in range(nz):
        zo[i, 0] = flows[i]
    # pumps (Equipment.update, Equipment._staging)
    pump_w = 0.0
    for j in range(pi.shape[0]):
        pclamp[j] = 0
        q = _pymax(u[pi[j, 0]], 0.0) / 86400.0
        if q <= 0:
            po[j, 0] = 0.0
            po[j, 1] = 0.0
            po[j, 2] = 0.0
            continue
        n_avail = pi[j, 1]
        w = pp[j, 11]
        r = 0.0
        nn = 0
        if n_avail <= 0:
            nn = 0
            r = 0.0
        elif pi[j, 2] == 0:
            nn = n_avail
            r = _pump_speed(pp, j, q, n_avail, w)
        else:
            nn = -1
            for m in range(1, n_avail + 1):
                r = _pump_speed(pp, j, q, m, w)
                if r <= pp[j, 9]:
                    nn = m
                    break
            if nn < 0:
                nn = n_avail
                r = _pump_speed(pp, j, q, n_avail, w)
        if nn == 0:
            u[pi[j, 0]] = 0.0
            du[pi[j, 0]] = 0.0
            q = 0.0
            w = 0.0
            r = 0.0
            pclamp[j] = 1
        elif r > pp[j, 9] or r < pp[j, 10]:
            pclamp[j] = 10 * nn + (2 if r > pp[j, 9] else 3)
            r = _pymin(_pymax(r, pp[j, 10]), pp[j, 9])
            lift = r * r * pp[j, 0] * w - pp[j, 7]
            if nn < 1 or r <= 0 or lift <= 0:
                qt = 0.0
                el = 0.0
            else:
                qt = np.sqrt(lift / (pp[j, 6] / (nn * nn) + pp[j, 8]))
                head = pp[j, 7] + pp[j, 8] * (qt * qt)
                el = nn * _pump_power(pp, j, qt / nn, head, r, w)
            u[pi[j, 0]] = qt * 86400.0
            du[pi[j, 0]] = 0.0
            q = qt
            w = el
        else:
            head = pp[j, 7] + pp[j, 8] * (q * q)
            w = nn * _pump_power(pp, j, q / nn, head, r, w)
        pump_w += w
        po[j, 0] = r
        po[j, 1] = q * 86400.0
        po[j, 2] = float(nn)
    mix = 0.0
    for k in range(mix_i.size):
        if u[mix_i[k]] < MIXING_KLA_THRESHOLD_PER_D:
            mix += mix_w[k]
    heat = 0.0
    for k in range(heat_i.size):
        hclamp[k] = 0
        qh = _pymax(u[heat_i[k]], 0.0)
        if es[33] != 0.0:
            cap = _pymax(es[34] * (es[35] - x[heat_t[k]]), 0.0)
            if qh > cap:
                u[heat_i[k]] = cap
                du[heat_i[k]] = 0.0
                qh = cap
                hclamp[k] = 1
        heat += qh
    heat_w = heat / es[36]
    es[4] = p_w / 1000.0
    es[5] = pump_w / 1000.0
    es[6] = mix / 1000.0
    es[7] = heat_w / 1000.0
    return hp


@njit(cache=True, error_model="numpy")
def _decisions(es, zo, po, pclamp, hclamp, dec):
    """The machine decisions the event log reports (Equipment._log_decisions): blowers running,
    valves fully open, pumps running, outputs held; True when any changed."""
    new = np.empty(dec.size)
    new[0] = float(int(es[1]))
    k = 1
    for i in range(zo.shape[0]):
        new[k] = 1.0 if zo[i, 1] >= 1.0 - 1e-6 else 0.0
        k += 1
    for j in range(po.shape[0]):
        new[k] = float(int(po[j, 2]))
        k += 1
    for j in range(pclamp.size):
        new[k] = float(pclamp[j])
        k += 1
    for j in range(hclamp.size):
        new[k] = float(hclamp[j])
        k += 1
    changed = False
    for i in range(dec.size):
        if new[i] != dec[i]:
            changed = True
        dec[i] = new[i]
    return changed


@njit(cache=True, error_model="numpy")
def advance_sampled(x, u, du, t0_ticks, period, n_ticks, h, rtol, atol, h_max, max_steps, M, P,
                    lsrc, act, fp, ip, st, last, sens, sens_order, sens_states, noise, noise_k,
                    actu, actu_order, actu_states, stats, win,
                    isrc, imod, iorder, istates, inoise, inoise_k, ipend, ipend_n, idelay, ivalue,
                    has_eq, es, ei, z, zi, zo, pp, pi, po, pclamp, mix_w, mix_i, heat_i, heat_t, hclamp, dec, hp):
    """Samples at t0_ticks + k period (k < n_ticks) of a sampled block: integrate to each
    sample (not before the first), then step the loops, the instruments and the machines in
    order. Returns (h, steps, nfev, status, bad, t_fail_d, samples done, header kPa); stops
    after a sample at which a machine decision changed."""
    nl = lsrc.shape[0]
    ni = isrc.shape[0]
    steps = 0
    nfev = 0
    Q = np.empty(M.shape[0])
    C = np.zeros((NS, NC))
    q = np.empty(max(NQ, 1))
    demands = np.empty(zo.shape[0])
    flows = np.empty(zo.shape[0])
    for k in range(n_ticks):
        now = t0_ticks + k * period
        td = now / 86400.0
        if k > 0:
            t0 = (now - period) / 86400.0
            t, h, s, nf, status, bad = advance(x, u, du, t0, td, h, rtol, atol, h_max, max_steps, M, P)
            steps += s
            nfev += nf
            if status != 0:
                return h, steps, nfev, status, bad, t, k, hp
            for j in range(u.size):
                u[j] = u[j] + (td - t0) * du[j]
        for i in range(nl):
            y_true = _read(lsrc, i, td, x, u, M, P, Q, C, q, hp)
            if y_true != y_true:
                continue
            y = y_true
            if sens[i, 0] != 0.0:
                y = _sensor(sens, sens_order, sens_states, noise, noise_k, i, y_true)
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
                ua = _lag(actu, actu_order, actu_states, i, uo)
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
        for i in range(ni):  # instruments (controllers.sensors.Instrument.sample)
            y = _read(isrc, i, td, x, u, M, P, Q, C, q, hp)
            if imod[i, 0] != 0.0:
                y = _sensor(imod, iorder, istates, inoise, inoise_k, i, y)
            ipend[i, ipend_n[i]] = y
            ipend_n[i] += 1
            if ipend_n[i] > idelay[i]:
                ivalue[i] = ipend[i, 0]
                for j in range(ipend_n[i] - 1):
                    ipend[i, j] = ipend[i, j + 1]
                ipend_n[i] -= 1
        if has_eq:
            hp = _equipment(now, x, u, du, es, ei, z, zi, zo, pp, pi, po, pclamp, mix_w, mix_i, heat_i, heat_t,
                            hclamp, demands, flows)
            if _decisions(es, zo, po, pclamp, hclamp, dec):
                return h, steps, nfev, 0, -1, 0.0, k + 1, hp
    return h, steps, nfev, 0, -1, 0.0, n_ticks, hp
'''


def template() -> str:
    """The compiled code with the constants it shares with the Python models."""
    from twin.equipment import aeration
    from twin.equipment.layer import MIXING_KLA_THRESHOLD_PER_D
    from twin.equipment.pumps import RHO_WATER, G
    from twin.plant import TSS_PER_NTU

    consts = {"RHO_AIR_STD": aeration.RHO_AIR_STD, "O2_MASS_FRACTION": aeration.O2_MASS_FRACTION,
              "CS20_G_M3": aeration.CS20_G_M3, "THETA_KLA": aeration.THETA_KLA, "CP_AIR": aeration.CP_AIR,
              "K_AIR": aeration.K_AIR, "RHO_WATER": RHO_WATER, "G": G,
              "MIXING_KLA_THRESHOLD_PER_D": MIXING_KLA_THRESHOLD_PER_D, "TSS_PER_COD": TSS_PER_COD,
              "TSS_PER_NTU": TSS_PER_NTU}
    head = "\n".join(f"{k} = {float(v)!r}" for k, v in consts.items()) + f"\nSOLIDS = {_SOLIDS!r}\n"
    return head + SAMPLED_TEMPLATE


# -- the Python path -----------------------------------------------------------------------
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


def signal_source(cp, name: str, equipment=None) -> tuple[int, int, int] | None:
    """(kind, index, component) of a signal the compiled code can read, None otherwise."""
    if name in cp.state_index:
        return (0, cp.state_index[name], 0)
    if equipment is not None and equipment.air is not None and name == equipment.air.signal:
        return (1, 0, 0)
    stream, _, comp = name.rpartition(".")
    if stream in cp.stream_index:
        code = {"Q": Q_CODE, "TSS": TSS_CODE, "turbidity_NTU": NTU_CODE}.get(comp, IDX.get(comp))
        if code is not None:
            return (2, cp.stream_index[stream], code)
    return None


def plain(loop) -> bool:
    """Whether a loop can be stepped in compiled code now (see the module's docstring)."""
    s = loop.ctrl.settings
    return (getattr(loop, "source", None) is not None and not loop.targets and loop.act >= 0
            and not loop.ctrl.manual and not loop.busy and loop.stats is not None and not loop.stats.keep_recent
            and s.form in ("positional", "velocity") and s.anti_windup in ("back_calculation", "clamping")
            and (loop.actuator is None or loop.actuator.noise_sd == 0))


# -- packing ---------------------------------------------------------------------------------
def _model_table(models) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(models)
    order = np.array([m.order if m is not None else 0 for m in models], dtype=np.int64)
    return np.zeros((n, 7)), order, np.zeros((n, max(list(order) + [1])))


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
    if m is not None and table[i, 6]:
        m.states = [float(v) for v in states[i, :m.order]]


def _pack_noise(models, noise: np.ndarray, noise_k: np.ndarray) -> tuple[np.ndarray, int]:
    """The noise blocks of the sensor models (refilled where Sensor.measure would draw the next
    one); returns the table and how many samples they allow."""
    room = MAX_TICKS
    blocks = []
    for i, m in enumerate(models):
        if m is not None and m.noise_sd > 0:
            if m._k == m._noise.size:
                m._noise = m.rng.standard_normal(1024)
                m._k = 0
            room = min(room, m._noise.size - m._k)
            blocks.append(m._noise)
            noise_k[i] = m._k
        else:
            blocks.append(None)
            noise_k[i] = 0
    width = max([b.size for b in blocks if b is not None] + [1])
    if noise.shape != (len(models), width):
        noise = np.zeros((len(models), width))
    for i, b in enumerate(blocks):
        if b is not None:
            noise[i, :b.size] = b
    return noise, room


def _unpack_noise(models, noise_k: np.ndarray) -> None:
    for i, m in enumerate(models):
        if m is not None and m.noise_sd > 0:
            m._k = int(noise_k[i])


class _LoopTables:
    def __init__(self, loops):
        n = len(loops)
        self.src = np.array([lp.source or (0, 0, 0) for lp in loops], dtype=np.int64).reshape(n, 3)
        self.act = np.array([lp.act for lp in loops], dtype=np.int64)
        self.ip = np.array([[1 if lp.ctrl.settings.form == "velocity" else 0,
                             1 if lp.ctrl.settings.anti_windup == "clamping" else 0] for lp in loops],
                           dtype=np.int64).reshape(n, 2)
        self.sens, self.sens_order, self.sens_states = _model_table([lp.sensor for lp in loops])
        self.actu, self.actu_order, self.actu_states = _model_table([lp.actuator for lp in loops])
        self.fp = np.zeros((n, 12))
        self.st = np.zeros((n, 8))
        self.last = np.zeros((n, 4))
        self.stats = np.zeros((n, 5))
        self.win = np.full((n, 2), -1, dtype=np.int64)
        self.noise_k = np.zeros(n, dtype=np.int64)
        self.noise = np.zeros((n, 1))

    def pack(self, loops) -> int:
        for i, lp in enumerate(loops):
            c, s = lp.ctrl, lp.ctrl.settings
            self.fp[i] = (s.K, s.Ti_d, s.Td_d, s.N, s.b, s.c, s.tracking_time(), s.offset, s.u_min, s.u_max,
                          s.rate_max_per_d, c.Ts_d)
            self.st[i] = (c.setpoint, c.integral, c.derivative, c.y_prev if c.y_prev is not None else 0.0,
                          c.r_prev if c.r_prev is not None else 0.0, c.u_prev if c.u_prev is not None else 0.0,
                          float(c.y_prev is not None), float(c.u_prev is not None))
            _pack_model(self.sens, self.sens_states, i, lp.sensor)
            _pack_model(self.actu, self.actu_states, i, lp.actuator)
            st = lp.stats
            self.stats[i] = (st.n, st.sum_abs, st.sum_sq, st.max_abs, st.n_saturated)
            self.win[i] = st.window_s if st.window_s is not None else (-1, -1)
            la = c.last
            self.last[i] = (la["y"], la["u"], la["e"], float(la["saturated"]))
        self.noise, room = _pack_noise([lp.sensor for lp in loops], self.noise, self.noise_k)
        return room

    def unpack(self, loops) -> None:
        for i, lp in enumerate(loops):
            c = lp.ctrl
            st = self.st[i]
            c.integral, c.derivative = float(st[1]), float(st[2])
            if st[6]:
                c.y_prev, c.r_prev = float(st[3]), float(st[4])
            if st[7]:
                c.u_prev = float(st[5])
            la = self.last[i]
            c.last = {"y": float(la[0]), "u": float(la[1]), "e": float(la[2]), "saturated": bool(la[3])}
            lp.last_measurement = float(la[0])
            _unpack_model(self.sens, self.sens_states, i, lp.sensor)
            _unpack_model(self.actu, self.actu_states, i, lp.actuator)
            s = lp.stats
            s.n, s.sum_abs, s.sum_sq = int(self.stats[i, 0]), float(self.stats[i, 1]), float(self.stats[i, 2])
            s.max_abs, s.n_saturated = float(self.stats[i, 3]), int(self.stats[i, 4])
        _unpack_noise([lp.sensor for lp in loops], self.noise_k)


class _InstrumentTables:
    def __init__(self, instruments, sources):
        n = len(instruments)
        self.src = np.array([s or (0, 0, 0) for s in sources], dtype=np.int64).reshape(n, 3)
        self.mod, self.order, self.states = _model_table([ins.sensor for ins in instruments])
        self.delay = np.array([ins.delay for ins in instruments], dtype=np.int64)
        self.pend = np.zeros((n, int(max(list(self.delay) + [0])) + 1))
        self.pend_n = np.zeros(n, dtype=np.int64)
        self.value = np.zeros(n)
        self.noise_k = np.zeros(n, dtype=np.int64)
        self.noise = np.zeros((n, 1))

    def pack(self, instruments) -> int:
        for i, ins in enumerate(instruments):
            _pack_model(self.mod, self.states, i, ins.sensor)
            self.pend_n[i] = len(ins.pending)
            self.pend[i, :len(ins.pending)] = ins.pending
            self.value[i] = ins.value
        self.noise, room = _pack_noise([ins.sensor for ins in instruments], self.noise, self.noise_k)
        return room

    def unpack(self, instruments) -> None:
        for i, ins in enumerate(instruments):
            _unpack_model(self.mod, self.states, i, ins.sensor)
            ins.pending = [float(v) for v in self.pend[i, :self.pend_n[i]]]
            ins.value = float(self.value[i])
        _unpack_noise([ins.sensor for ins in instruments], self.noise_k)


class _EquipmentTables:
    """The equipment layer's parameters and state as arrays. ``es`` (floats): 0 water
    temperature, 1 blowers running, 2 airflow, 3 discharge pressure, 4-7 power per area (kW),
    8-11 energy per area (kWh), 20 blower maximum flow, 21 staging dead band, 22 blower
    shut-off rise, 23 blower curve k, 24 header loss k, 25 blower minimum flow, 26 design
    flow, 27 inlet pressure, 28 design efficiency, 29 inlet temperature, 30 motor efficiency,
    31 moisture factor, 32 blower condition, 33 has exchanger, 34 UA x condition, 35 hot
    water temperature, 36 heating efficiency. ``ei`` (ints): 0 meter's last time, 1 blowers
    available, 2 blower-speed input."""

    def __init__(self, eq):
        a = eq.air
        nz, npump = len(eq.zones), len(eq.pumps)
        self.es = np.zeros(40)
        self.ei = np.zeros(3, dtype=np.int64)
        self.z = np.zeros((nz, 11))
        self.zi = np.array([[i_kla, i_otf] for (_, _, i_kla), i_otf in zip(eq.zones, a.i_otf)],
                           dtype=np.int64).reshape(nz, 2)
        self.zo = np.zeros((nz, 2))
        self.pp = np.zeros((npump, 12))
        self.pi = np.zeros((npump, 3), dtype=np.int64)
        self.po = np.zeros((npump, 3))
        self.pclamp = np.zeros(npump, dtype=np.int64)
        self.mix_i = np.array([i for _, _, i in eq.mixed], dtype=np.int64)
        self.mix_w = np.zeros(len(eq.mixed))
        self.heat_i = np.array([i for _, i, _ in eq.heated], dtype=np.int64)
        self.heat_t = np.array([t for _, _, t in eq.heated], dtype=np.int64)
        self.hclamp = np.zeros(len(eq.heated), dtype=np.int64)
        self.dec = np.zeros(1 + nz + 2 * npump + len(eq.heated))
        # what does not change during a run: zone geometry and valves, pump and system curves
        for i, ((_, grid, _), valve, back) in enumerate(zip(eq.zones, a.valves, a.back)):
            self.z[i, :10] = (grid.volume_m3, grid.depth_m, grid.n_diffusers, grid.sote_per_m, grid.q_ref_nm3_h,
                              grid.flux_exponent, grid.alpha, 0.0, valve.rangeability, back)
        for j, (_, curve, system, p, i_q) in enumerate(eq.pumps):
            self.pp[j, :11] = (curve.shutoff_head_m, curve.bep_flow_m3_s, curve.bep_head_m, curve.bep_efficiency,
                               curve.motor_efficiency, curve.drive_efficiency, curve.a, system.static_head_m,
                               system.k_s2_m5, p.max_speed_ratio, p.min_speed_ratio)
            self.pi[j, 0], self.pi[j, 2] = i_q, int(bool(p.staging))

    def pack(self, eq, plant) -> float:
        a, s, st = eq.air, eq.spec, eq.state
        es, b = self.es, eq.station.blower
        es[0] = s.water_temperature_c
        es[1], es[2], es[3] = st["blowers_running"], st["airflow_nm3_d"], st["discharge_pressure_pa"]
        for k, area in enumerate(AREAS):
            es[4 + k] = eq.meter.power_kw[area]
            es[8 + k] = eq.meter.energy_kwh[area]
        es[20], es[21] = b.max_flow_nm3_d, s.air_header.staging_deadband
        es[22], es[23], es[24] = a.curve.rise0_pa, a.curve.k, a.header_k
        es[25], es[26], es[27] = b.min_flow_nm3_d, b.design_flow_nm3_d, eq.ambient["pressure_pa"]
        es[28], es[29], es[30] = b.efficiency_design, eq.ambient["air_temperature_c"], b.motor_efficiency
        es[31], es[32] = eq._moisture(), eq.blower_condition
        ex = s.heating.exchanger
        es[33] = float(ex is not None)
        es[34] = ex.ua_w_k * eq.exchanger_condition if ex is not None else 0.0
        es[35] = ex.hot_water_temperature_c if ex is not None else 0.0
        es[36] = s.heating.efficiency
        self.ei[0] = eq.meter.t_last
        self.ei[1] = eq.station.n_installed - eq.blowers_out_of_service
        self.ei[2] = a.i_speed
        for i, ((name, *_), valve) in enumerate(zip(eq.zones, a.valves)):  # what the fleet changes
            self.z[i, 7] = valve.cv * eq.valve_capacity[name]
            self.z[i, 10] = eq.zone_fouling[name]
            self.zo[i] = (st.get(f"{name}.airflow_nm3_d", 0.0), st.get(f"{name}.valve_opening", 0.0))
        for j, (name, _, _, p, _) in enumerate(eq.pumps):
            self.pp[j, 11] = eq.pump_condition[name]
            self.pi[j, 1] = max(0, p.n_parallel - eq.pumps_out_of_service.get(name, 0))
            ps = eq.pump_state[name]
            self.po[j] = (ps["speed_ratio"], ps["flow_m3_d"], ps["running"])
        for k, (n, v, _) in enumerate(eq.mixed):
            self.mix_w[k] = eq._mixing_w(n, v)
        # the decisions as last logged (Equipment._log_decisions)
        d = eq._decided
        vals = [float(d["blowers"])] + [float(d[f"valve.{name}"]) for name, *_ in eq.zones] \
            + [float(d[f"pumps.{name}"]) for name, *_ in eq.pumps]
        vals += [float(_clamp_code(d.get(f"clamp.{p.input}"))) for _, _, _, p, _ in eq.pumps]
        vals += [float(bool(d.get(f"clamp.{tank}.heat_W"))) for tank, *_ in eq.heated]
        self.dec[:] = vals
        return plant.aux.get(a.signal, float("nan"))

    def unpack(self, eq, plant, hp: float) -> None:
        es, st = self.es, eq.state
        for k, area in enumerate(AREAS):
            eq.meter.power_kw[area] = float(es[4 + k])
            eq.meter.energy_kwh[area] = float(es[8 + k])
        eq.meter.t_last = int(self.ei[0])
        st.update(airflow_nm3_d=float(es[2]), blowers_running=float(es[1]), discharge_pressure_pa=float(es[3]),
                  header_pressure_kpa=float(hp))
        plant.aux[eq.air.signal] = float(hp)
        for i, (name, *_) in enumerate(eq.zones):
            st[f"{name}.airflow_nm3_d"] = float(self.zo[i, 0])
            st[f"{name}.valve_opening"] = float(self.zo[i, 1])
        clamped = {}
        for j, (name, _, _, p, _) in enumerate(eq.pumps):
            r, q, n = (float(v) for v in self.po[j])
            eq.pump_state[name] = {"speed_ratio": r, "flow_m3_d": q, "running": int(n)}
            code = int(self.pclamp[j])
            if code:
                clamped[p.input] = _clamp_reason(code)
        for k, (tank, *_) in enumerate(eq.heated):
            if self.hclamp[k]:
                clamped[f"{tank}.heat_W"] = "heat exchanger at its capacity"
        eq.clamped = clamped


def _clamp_reason(code: int) -> str:
    if code == 1:
        return "no pump in service"
    n, kind = divmod(code, 10)
    return f"{n} pump(s) at their maximum speed" if kind == 2 else f"{n} pump(s) at their minimum speed"


def _clamp_code(reason: str | None) -> int:
    if not reason:
        return 0
    if reason == "no pump in service":
        return 1
    n = int(reason.split(" ")[0])
    return 10 * n + (2 if "maximum" in reason else 3)


# -- the block -----------------------------------------------------------------------------
class SampledBlock:
    """The loops, instruments and machines of one sample period (see the module docstring)."""

    def __init__(self, env, plant, period: int, loops: list, instruments: list, equipment=None):
        self.env, self.plant, self.period = env, plant, period
        self.loops, self.instruments, self.equipment = loops, instruments, equipment
        cp = plant.cp
        for lp in loops:
            lp.source = signal_source(cp, lp.spec.measurement, equipment)
        self.ins_sources = [signal_source(cp, ins.signal, equipment) if getattr(ins, "signal", None) else None
                            for ins in instruments]
        self._lt = _LoopTables(loops)
        self._it = _InstrumentTables(instruments, self.ins_sources)
        self._et = _EquipmentTables(equipment) if equipment is not None and equipment.air is not None else None
        self._empty_eq = None

    def _plain(self) -> bool:
        if not COMPILED or not all(plain(lp) for lp in self.loops):
            return False
        if any(s is None for s in self.ins_sources):
            return False
        eq = self.equipment
        return eq is None or (self._et is not None and bool(eq._decided))

    def python_sample(self) -> None:
        env, plant = self.env, self.plant
        for lp in self.loops:
            sample_loop(env, plant, lp)
        for ins in self.instruments:
            ins.sample()
        if self.equipment is not None:
            self.equipment.update()
            self.equipment._log_decisions()

    def _eq_args(self):
        if self._et is not None:
            t = self._et
            return (True, t.es, t.ei, t.z, t.zi, t.zo, t.pp, t.pi, t.po, t.pclamp, t.mix_w, t.mix_i, t.heat_i,
                    t.heat_t, t.hclamp, t.dec)
        if self._empty_eq is None:
            f2, i2 = np.zeros((0, 12)), np.zeros((0, 3), dtype=np.int64)
            i1, f1 = np.zeros(0, dtype=np.int64), np.zeros(0)
            self._empty_eq = (False, np.zeros(40), np.zeros(3, dtype=np.int64), np.zeros((0, 11)),
                              np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2)), f2, i2, np.zeros((0, 3)), i1,
                              f1, i1, i1, i1, i1, f1)
        return self._empty_eq

    def compiled_samples(self, n: int) -> tuple[int, bool]:
        """Take up to ``n`` samples in compiled code (fewer when a sensor's noise block ends
        first); returns how many were taken and whether a machine decision changed at the last."""
        env, plant, lt, it = self.env, self.plant, self._lt, self._it
        n = min(n, lt.pack(self.loops), it.pack(self.instruments))
        hp = self._et.pack(self.equipment, plant) if self._et is not None else float("nan")
        plant.sync()
        now = int(env.now)
        h, steps, nfev, status, bad, t_fail, done, hp = plant.cp.sampled(
            plant.x, plant.u, plant.du, now, int(self.period), int(n), plant.h, plant.rtol, plant.atol, plant.h_max,
            plant.max_steps, plant.cp.M, plant.cp.P,
            lt.src, lt.act, lt.fp, lt.ip, lt.st, lt.last, lt.sens, lt.sens_order, lt.sens_states, lt.noise,
            lt.noise_k, lt.actu, lt.actu_order, lt.actu_states, lt.stats, lt.win,
            it.src, it.mod, it.order, it.states, it.noise, it.noise_k, it.pend, it.pend_n, it.delay, it.value,
            *self._eq_args(), hp)
        plant.steps += steps
        plant.rhs_evals += nfev
        plant.h = h
        plant.t_sync = now + (done - 1) * self.period
        if status != 0:
            plant._fail(status, bad, t_fail)
        plant._version += 1
        lt.unpack(self.loops)
        it.unpack(self.instruments)
        if self._et is not None:
            self._et.unpack(self.equipment, plant, hp)
        return done, done < n

    def process(self, wake_at: int | None = None):
        """``wake_at``: resume a saved run at the block's next sample."""
        env, period = self.env, self.period
        if wake_at is not None:
            yield env.timeout(wake_at - env.now)
        while True:
            n = 1
            if self._plain():
                nxt = env.peek()
                if nxt > env.now:  # samples at now + k period before the next other event
                    n = math.ceil((nxt - env.now) / period) if math.isfinite(nxt) else MAX_TICKS
            if n >= 2:
                done, decided = self.compiled_samples(n)
                if decided:  # a machine decision changed at the last sample taken: log it then
                    if done > 1:
                        yield env.timeout((done - 1) * period)
                    self.equipment._log_decisions()
                    yield env.timeout(period)
                else:
                    yield env.timeout(done * period)
                continue
            self.python_sample()
            yield env.timeout(period)


def sampled_blocks(env, plant, loops: list, instruments: list, equipment=None) -> dict[int, SampledBlock]:
    """One block per sample period: loops, instruments and machines sampled at that period,
    in that order; blocks in the order their periods first appear."""
    periods: dict[int, tuple[list, list, list]] = {}
    for lp in loops:
        periods.setdefault(lp.spec.sample_time, ([], [], []))[0].append(lp)
    for ins in instruments:
        periods.setdefault(int(ins.period_s), ([], [], []))[1].append(ins)
    if equipment is not None:
        periods.setdefault(equipment.spec.sample_time, ([], [], []))[2].append(equipment)
    return {p: SampledBlock(env, plant, p, lps, ins, eq[0] if eq else None) for p, (lps, ins, eq) in periods.items()}
