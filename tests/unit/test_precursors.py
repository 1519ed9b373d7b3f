"""Failures with precursors: initiation at a Weibull effective age, exponential damage growth
over a lognormal P-F interval (Paris-law growth with m = 2), sensors that see the damage and
the operating point, electrical faults without warning; predictors that see observations only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from agents.maintenance import WeibullHazardPredictor
from twin.errors import ConfigError
from twin.fleet.model import Fleet, load_fleet
from twin.fleet.observe import Observation, observe

PF_H, PF_SIGMA, ETA, BETA = 400.0, 0.3, 2000.0, 2.0


def _fleet(tmp_path, n=300, pf=PF_H, extra_mode=None, seed=3) -> Fleet:
    modes = {"wear": {"kind": "wearout", "weibull_shape": BETA, "weibull_scale_h": ETA, "pf_interval_h": pf,
                      "pf_sigma": PF_SIGMA}}
    if extra_mode:
        modes.update(extra_mode)
    data = {"types": {"pump": {"modes": modes, "channels": {
        "vib": {"unit": "mm/s", "base": 2.0, "gain": 4.0, "modes": ["wear"], "noise_sd": 0.1, "load_coeff": 1.0},
        "temp": {"unit": "degC", "base": 40.0, "gain": 0.0, "modes": [], "ambient_coeff": 1.0}}}},
        "assets": [{"type": "pump", "count": n, "prefix": "P"}]}
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump(data))
    types, assets = load_fleet(p)
    return Fleet(types, assets, seed)


def _run_to_first_failure(fleet: Fleet, hours: int):
    """Step at load 1 until every asset has failed once; per asset: hour of initiation and of failure."""
    n = len(fleet.assets)
    init_h = np.full(n, np.nan)
    fail_h = np.full(n, np.nan)
    for h in range(1, hours + 1):
        for r in fleet.step(1.0):
            fail_h[fleet.s.row_asset[r]] = h
        new = fleet.s.initiated & np.isnan(init_h[fleet.s.row_asset])
        init_h[fleet.s.row_asset[new]] = h
        if not np.isnan(fail_h).any():
            break
    return init_h, fail_h


def test_initiation_is_weibull_and_the_pf_interval_lognormal(tmp_path):
    """Initiation ages: Weibull(beta, eta) (MLE within four standard errors); P-F intervals:
    log-mean within four standard errors of ln(pf_interval_h), log-sd within 25 %."""
    from scipy import stats

    fleet = _fleet(tmp_path)
    init_h, fail_h = _run_to_first_failure(fleet, 20000)
    n = init_h.size
    beta, _, eta = stats.weibull_min.fit(init_h, floc=0.0)
    assert abs(beta - BETA) <= 4 * math.sqrt(0.608 * BETA**2 / n)
    assert abs(math.log(eta / ETA)) <= 4 * math.sqrt(1.109 / (BETA**2 * n))
    log_pf = np.log(fail_h - init_h + 0.5)  # whole hours: the step in which each event fell
    assert abs(log_pf.mean() - math.log(PF_H)) <= 4 * PF_SIGMA / math.sqrt(n)
    assert log_pf.std() == pytest.approx(PF_SIGMA, rel=0.25)


def test_sensors_see_the_damage_and_the_operating_point(tmp_path):
    """Before initiation the reading is its base plus confounders; it rises to base + gain at
    failure; the load and the air temperature move readings of a healthy asset."""
    fleet = _fleet(tmp_path, n=40)
    healthy = np.array([fleet.read_channels(i)["vib"] for i in range(40)])
    assert abs(healthy.mean() - 2.0) < 0.1
    fleet.s.asset_load[:] = 1.5
    loaded = np.array([fleet.read_channels(i)["vib"] for i in range(40)])
    assert abs(loaded.mean() - 2.5) < 0.1
    fleet.s.asset_load[:] = 1.0
    fleet.s.ambient_c = 25.0
    assert fleet.read_channels(0)["temp"] == pytest.approx(50.0)
    fleet.s.ambient_c = 15.0
    last = np.zeros(40)
    for _ in range(20000):
        before = np.array([fleet.s.damage[fleet.rows_of(i)].sum() for i in range(40)])
        failed = fleet.step(1.0)
        for r in failed:
            last[fleet.s.row_asset[r]] = before[fleet.s.row_asset[r]]
        if fleet.s.failed_row.all():
            break
    assert np.all(last > 0.9) and np.all(last < 1.0)  # failures come at the end of visible growth
    reading = np.array([fleet.read_channels(i)["vib"] for i in range(40)])
    assert abs(reading.mean() - 6.0) < 0.1


def test_electrical_faults_give_no_warning(tmp_path):
    fleet = _fleet(tmp_path, n=200, extra_mode={"electrical": {"kind": "electrical", "weibull_shape": 1.0,
                                                                 "weibull_scale_h": 3000.0}})
    elec = np.array([m == "electrical" for _, m in fleet.s.row_mode])
    seen = False
    for _ in range(3000):
        before = fleet.s.damage.copy()
        for r in fleet.step(1.0):
            if elec[r]:
                seen = True
                assert before[r] == 0.0  # nothing to see the hour before
    assert seen
    with pytest.raises(ConfigError, match="electrical.pf_interval_h"):
        _fleet(tmp_path, extra_mode={"electrical": {"kind": "electrical", "weibull_scale_h": 1e5,
                                                    "pf_interval_h": 100}})


def test_bad_precursor_keys_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"modes\.wear\.pf_interval_h: expected a number"):
        _fleet(tmp_path, pf="soon")


class _Hidden:
    def __getattr__(self, name):
        raise AssertionError(f"a predictor read hidden state: {name}")


def test_the_weibull_predictor_reads_observations_only(tmp_path):
    """The baseline answers from an Observation (hour meters and the file's Weibull parameters)
    and never from the fleet: a fleet whose state raises on any access changes nothing."""
    fleet = _fleet(tmp_path, n=5)
    for _ in range(500):
        fleet.step(1.0)
    obs = observe(fleet)
    assert isinstance(obs, Observation) and not hasattr(obs, "age_h") and not hasattr(obs, "damage")
    fleet.s = _Hidden()
    pred = WeibullHazardPredictor()
    p = pred.probability(obs, np.arange(5), 100.0)
    expected = 1 - math.exp(-(((500 + 100) / ETA) ** BETA - (500 / ETA) ** BETA))
    assert np.allclose(p, expected, rtol=1e-9)
    prob, rul, (lo, hi) = pred.predict(obs, 0, 100.0)
    assert prob == pytest.approx(expected, rel=1e-9) and lo < rul < hi


def test_reading_a_whole_type_gives_the_per_asset_readings():
    """Fleet.read_type (one array operation per term, what the predictive policy and twin
    fleet-data read hourly) gives bit for bit what reading each asset alone gives, with damage
    on a channel of two modes, loads, air temperature, drift and dropouts, hour after hour."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    types, assets = load_fleet(root / "scenarios" / "fleets" / "reference.yaml")
    one, whole = Fleet(types, assets, 5), Fleet(types, assets, 5)
    rng = np.random.default_rng(0)
    for fleet in (one, whole):
        fleet.s.damage[:] = rng.uniform(0.0, 1.0, fleet.s.damage.size) * (rng.random(fleet.s.damage.size) < 0.3)
        fleet.s.asset_load[:] = rng.uniform(0.5, 1.2, len(assets))
        rng = np.random.default_rng(0)
    dropouts = 0
    for h in range(48):
        for fleet in (one, whole):
            fleet.advance_weather(float(h), 1.0)
        for t in types:
            idx, v = whole.read_type(t)
            readings = [one.read_channels(int(i)) for i in idx]
            ref = np.array([[r[c.name] for c in types[t].channels] for r in readings])
            np.testing.assert_array_equal(v, ref)
            dropouts += int(np.isnan(v).sum())
    assert dropouts > 0  # the reference fleet's vibration channels drop out now and then
    assert any(len(c.modes) == 2 for t in types.values() for c in t.channels)


def test_reading_some_assets_at_once_gives_their_readings_one_at_a_time():
    """Fleet.read_assets (the condition policy's inspection of the assets it may plan work on,
    in one call) gives what reading those assets one at a time gives, in any order, and leaves
    the other assets' streams alone."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    types, assets = load_fleet(root / "scenarios" / "fleets" / "reference.yaml")
    one, some = Fleet(types, assets, 9), Fleet(types, assets, 9)
    for fleet in (one, some):
        fleet.s.damage[:] = np.linspace(0.0, 0.9, fleet.s.damage.size)
    pick = np.random.default_rng(1)
    for h in range(24):
        for fleet in (one, some):
            fleet.advance_weather(float(h), 1.0)
        for t in types:
            idx = [i for i, a in enumerate(assets) if a.type == t]
            chosen = [int(i) for i in pick.permutation(idx)[: max(1, len(idx) // 2)]]
            names, v = some.read_assets(t, chosen)
            for k, i in enumerate(reversed(chosen)):
                r = one.read_channels(i)
                np.testing.assert_array_equal(v[len(chosen) - 1 - k], np.array([r[c] for c in names]))


def test_the_compiled_reader_computes_the_documented_formula():
    """Fleet readings (one compiled call per type) against the module's formula written out in
    numpy from a copy of each asset's stream: base + gain sum(damage) + load_coeff (L - 1) +
    ambient_coeff (T_air - T_ref) + drift (a random walk) + noise, NaN on dropout; the streams
    advance by exactly the draws the formula takes (3 seeds, random damage, loads, weather)."""
    import copy
    from pathlib import Path

    from twin.fleet.model import DEFAULTS

    root = Path(__file__).resolve().parents[2]
    types, assets = load_fleet(root / "scenarios" / "fleets" / "reference.yaml")
    for seed in (1, 2, 3):
        fleet = Fleet(types, assets, seed)
        rng = np.random.default_rng(seed)
        streams = copy.deepcopy(fleet.sensor_rng)
        drift = {t: np.zeros((sum(a.type == t for a in assets), len(types[t].channels))) for t in types}
        row = {(int(fleet.s.row_asset[r]), fleet.s.row_mode[r][1]): r for r in range(fleet.s.damage.size)}
        for h in range(30):
            fleet.s.damage[:] = rng.uniform(0.0, 1.0, fleet.s.damage.size) * (rng.random(fleet.s.damage.size) < 0.4)
            fleet.s.asset_load[:] = rng.uniform(0.0, 1.3, len(assets))
            fleet.advance_weather(float(h), 1.0)
            for t, spec in types.items():
                idx, v = fleet.read_type(t)
                for k, i in enumerate(idx.tolist()):
                    z = streams[i].standard_normal(2 * len(spec.channels))
                    u = streams[i].random(len(spec.channels))
                    for c, ch in enumerate(spec.channels):
                        drift[t][k, c] += ch.drift_sd_per_h * z[2 * c]
                        damage = sum(fleet.s.damage[row[(i, m)]] for m in ch.modes)
                        expected = (ch.base + ch.gain * damage + ch.load_coeff * (fleet.s.asset_load[i] - 1.0)
                                    + ch.ambient_coeff * (fleet.s.ambient_c - DEFAULTS.ambient_reference_c)
                                    + drift[t][k, c] + ch.noise_sd * z[2 * c + 1])
                        if u[c] < ch.dropout_prob:
                            assert math.isnan(v[k, c])
                        else:
                            assert v[k, c] == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert all(a.random() == b.random() for a, b in zip(streams, fleet.sensor_rng))
