"""Instruments the operators read: derived quality signals through sensor models with lags,
noise and analyser dead time, recorded as ``sensor.<name>``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from twin.errors import ConfigError
from twin.plant import TSS_PER_NTU
from twin.run import run_scenario
from twin.scenario import validate_scenario

ROOT = Path(__file__).resolve().parents[2]


def _scenario(sensors: dict) -> dict:
    s = yaml.safe_load((ROOT / "scenarios" / "quickstart_24h.yaml").read_text())
    s.update(duration="12h", evaluation={"kind": "bsm1", "start": "0h", "end": "12h"},
             outputs={"sample_interval": "5min", "report": False}, sensors=sensors)
    return s


@pytest.fixture(scope="module")
def run():
    sensors = {
        "turbidity": {"signal": "effluent.turbidity_NTU", "sample_time": "5min"},
        "ammonia": {"signal": "effluent.SNH", "sample_time": "5min"},
        "ammonia_delayed": {"signal": "effluent.SNH", "sample_time": "5min", "dead_time": "10min"},
        "ammonia_noisy": {"signal": "effluent.SNH", "sample_time": "5min", "noise_sd": 0.2},
        "ammonia_lagged": {"signal": "effluent.SNH", "sample_time": "5min", "T90_min": 30, "order": 1},
    }
    r = run_scenario(validate_scenario(_scenario(sensors), "instruments"), ROOT / "scenarios")
    return {c: r.values[:, i] for i, c in enumerate(r.columns)}


def test_turbidity_is_tss_over_the_published_factor(run):
    """Metcalf & Eddy (2014): TSS = (2.0-2.4) x NTU in settled secondary effluent; the twin uses 2.2."""
    assert TSS_PER_NTU == 2.2
    np.testing.assert_allclose(run["sensor.turbidity"], run["effluent.TSS_g_m3"] / 2.2, rtol=1e-12)


def test_dead_time_reports_the_reading_of_two_samples_earlier(run):
    d, now = run["sensor.ammonia_delayed"], run["sensor.ammonia"]
    assert np.all(np.isnan(d[:2]))  # nothing to report before the first reading has travelled
    np.testing.assert_array_equal(d[2:], now[:-2])


def test_noise_and_lag_change_the_reading_as_specified(run):
    true = run["sensor.ammonia"]
    err = run["sensor.ammonia_noisy"] - true
    # sample standard deviation of 144 draws: within 4 standard errors of the specified 0.2
    assert abs(np.std(err) - 0.2) < 4 * 0.2 / np.sqrt(2 * err.size)
    # first-order lag with T90 = 30 min: T = T90 / ln 10, sampled exactly every 5 min
    lag = run["sensor.ammonia_lagged"]
    a = np.exp(-5.0 / (30.0 / np.log(10.0)))
    np.testing.assert_allclose(lag[1:], a * lag[:-1] + (1 - a) * true[1:], rtol=1e-12)
    assert lag[0] == true[0]


def test_bad_instruments_are_clear_errors():
    with pytest.raises(ConfigError, match=r"sensors.x.signal: unknown signal 'effluent.turbidity'"):
        run_scenario(validate_scenario(_scenario({"x": {"signal": "effluent.turbidity"}}), "bad"), ROOT / "scenarios")
    with pytest.raises(ConfigError, match=r"sensors.y.dead_time: 7min is not a whole number of samples"):
        run_scenario(validate_scenario(_scenario({"y": {"signal": "effluent.SNH", "sample_time": "5min",
                                                        "dead_time": "7min"}}), "bad"), ROOT / "scenarios")
