"""The compiled integrator that advances the plant between two discrete events.

Method: Bogacki-Shampine 3(2) explicit Runge-Kutta with first-same-as-last and
error-per-step control (Bogacki and Shampine 1989, Appl. Math. Lett. 2(4), 321-325;
the scheme of MATLAB's ode23 and SciPy's RK23). Why explicit: the BSM1 system is only
mildly stiff (spectral radius ~1e4 1/d), so steps of ~30 s are stable, every actuator
change restarts any multistep or implicit scheme, and one Jacobian plus LU costs as much
as hundreds of right-hand-side evaluations.

Inputs are piecewise linear in time within one call: ``u(t) = u0 + (t - t0) * du``
(``du`` is zero for held actuators; a linearly interpolated influent has a slope).
Stream flows follow as ``Q = M @ u``. The integration stops exactly at ``t1``; the last
accepted step size is returned so the next call can start from it.

The code below is a template: :mod:`twin.flowsheet` appends it to the generated module
that defines ``rhs``, ``M`` and the sizes, and numba compiles it once per flowsheet.
Status codes: 0 ok, 1 non-finite state (``bad`` = first bad state index), 2 step size
collapsed, 3 negative stream flow (``bad`` = stream index), 4 too many steps.
"""

from __future__ import annotations

STATUS_MESSAGES = {
    1: "a state became non-finite (NaN or infinite)",
    2: "the step size collapsed below the minimum",
    3: "a stream flow became negative",
    4: "the maximum number of steps was exceeded",
}

INTEGRATOR_TEMPLATE = '''
@njit(cache=True, error_model="numpy")
def _inputs_at(u0, du, t, t0, u):
    s = t - t0
    for i in range(u0.size):
        u[i] = u0[i] + s * du[i]


@njit(cache=True, error_model="numpy")
def _flows(M, u, Q):
    for k in range(M.shape[0]):
        s = 0.0
        for j in range(M.shape[1]):
            s += M[k, j] * u[j]
        Q[k] = s


@njit(cache=True, error_model="numpy")
def _f(t, x, u0, du, t0, Q0, dQ, P, u, Q, C, dx, q):
    s = t - t0
    for i in range(u0.size):
        u[i] = u0[i] + s * du[i]
    for k in range(Q0.size):
        Q[k] = Q0[k] + s * dQ[k]
    rhs(t, x, u, Q, P, C, dx, q)


@njit(cache=True, error_model="numpy")
def derivs(t, x, u, M, P):
    """Right-hand side with held inputs (for steady-state solvers and checks)."""
    Q = np.empty(M.shape[0])
    _flows(M, u, Q)
    C = np.zeros((NS, NC))
    dx = np.empty(x.size)
    rhs(t, x, u, Q, P, C, dx, np.empty(max(NQ, 1)))
    return dx


@njit(cache=True, error_model="numpy")
def advance(x, u0, du, t0, t1, h, rtol, atol, h_max, max_steps, M, P):
    """Integrate x from t0 to t1 (days) in place. Returns (t, h_next, steps, rhs_evals, status, bad)."""
    n = x.size
    nu = u0.size
    u = np.empty(nu)
    Q = np.empty(M.shape[0])
    C = np.zeros((NS, NC))
    k1 = np.empty(n)
    k2 = np.empty(n)
    k3 = np.empty(n)
    k4 = np.empty(n)
    y = np.empty(n)
    ynew = np.empty(n)
    q = np.empty(max(NQ, 1))  # state-dependent flows (workspace)
    # negative flows at either end of the interval are a configuration failure
    for end in range(2):
        _inputs_at(u0, du, t0 + end * (t1 - t0), t0, u)
        _flows(M, u, Q)
        add_state_flows(t0, x, u, P, Q, q)
        for k in range(Q.size):
            if Q[k] < -1e-9:
                return t0, h, 0, 0, 3, k
    Q0 = np.empty(M.shape[0])
    dQ = np.empty(M.shape[0])
    _flows(M, u0, Q0)
    _flows(M, du, dQ)
    t = t0
    nfev = 0
    steps = 0
    if h <= 0.0:
        h = 1e-4
    if h > h_max:
        h = h_max
    _f(t, x, u0, du, t0, Q0, dQ, P, u, Q, C, k1, q)
    nfev += 1
    h_min = 1e-14
    while t < t1:
        if steps >= max_steps:
            return t, h, steps, nfev, 4, -1
        last = False
        hs = h
        if t + hs >= t1:
            hs = t1 - t
            last = True
        for i in range(n):
            y[i] = x[i] + 0.5 * hs * k1[i]
        _f(t + 0.5 * hs, y, u0, du, t0, Q0, dQ, P, u, Q, C, k2, q)
        for i in range(n):
            y[i] = x[i] + 0.75 * hs * k2[i]
        _f(t + 0.75 * hs, y, u0, du, t0, Q0, dQ, P, u, Q, C, k3, q)
        for i in range(n):
            ynew[i] = x[i] + hs * (2.0 / 9.0 * k1[i] + 1.0 / 3.0 * k2[i] + 4.0 / 9.0 * k3[i])
        tn = t1 if last else t + hs
        _f(tn, ynew, u0, du, t0, Q0, dQ, P, u, Q, C, k4, q)
        nfev += 3
        err = 0.0
        for i in range(n):
            e = hs * (-5.0 / 72.0 * k1[i] + 1.0 / 12.0 * k2[i] + 1.0 / 9.0 * k3[i] - 0.125 * k4[i])
            sc = atol + rtol * max(abs(x[i]), abs(ynew[i]))
            err += (e / sc) ** 2
        err = np.sqrt(err / n)
        if err <= 1.0:
            t = tn
            for i in range(n):
                x[i] = ynew[i]
                k1[i] = k4[i]
            steps += 1
            fac = 5.0 if err == 0.0 else min(5.0, max(0.2, 0.9 * err ** (-1.0 / 3.0)))
            if not last or hs * fac < h:
                h = min(hs * fac, h_max)
        else:
            if not np.isfinite(err):
                fac = 0.1
            else:
                fac = max(0.1, 0.9 * err ** (-1.0 / 3.0))
            h = hs * fac
            if h < h_min:
                for i in range(n):
                    if not np.isfinite(ynew[i]):
                        return t, h, steps, nfev, 1, i
                return t, h, steps, nfev, 2, -1
    for i in range(n):
        if not np.isfinite(x[i]):
            return t, h, steps, nfev, 1, i
    return t, h, steps, nfev, 0, -1
'''
