"""Influent sources: CSV of plant data, the synthetic generator, file coverage."""

from __future__ import annotations

import numpy as np
import pytest

from twin.errors import ConfigError
from twin.influent import COLUMNS, build_table
from twin.scenario import InfluentSpec
from twin.units.junctions import BSM1_CONSTANT_INFLUENT


def test_csv_with_declared_columns(tmp_path):
    f = tmp_path / "plant.csv"
    f.write_text("hour,flow,nh4\n0,20000,30\n1,22000,28\n2,18000,35\n")
    spec = InfluentSpec(kind="csv", file=str(f), time_column="hour", time_unit="h",
                        columns={"Q": "flow", "SNH": "nh4"}, values={"SS": 50.0}, repeat=True)
    t = build_table(spec, 5 * 3600, None, np.random.default_rng(0))
    assert list(t.times_s[:3]) == [0, 3600, 7200]
    assert t.values[1, COLUMNS.index("Q")] == 22000 and t.values[2, COLUMNS.index("SNH")] == 35
    assert t.values[0, COLUMNS.index("SS")] == 50.0
    assert t.values[0, COLUMNS.index("XI")] == BSM1_CONSTANT_INFLUENT["XI"]


def test_csv_errors_name_the_column(tmp_path):
    f = tmp_path / "plant.csv"
    f.write_text("hour,flow\n0,1\n1,2\n")
    spec = InfluentSpec(kind="csv", file=str(f), time_column="hour", columns={"Q": "flw"})
    with pytest.raises(ConfigError, match="influent.columns.Q: column 'flw' not in the header"):
        build_table(spec, 3600, None, np.random.default_rng(0))
    spec = InfluentSpec(kind="csv", file=str(f), time_column="hour", time_unit="h", columns={"Q": "flow"})
    with pytest.raises(ConfigError, match=r"covers .* influent.repeat"):
        build_table(spec, 10 * 3600, None, np.random.default_rng(0))


def test_csv_with_text_in_a_numeric_column_names_the_column(tmp_path):
    f = tmp_path / "plant.csv"
    f.write_text("hour,flow,nh4\n0,20000,30\n1,22000,n/a\n2,18000,35\n")
    spec = InfluentSpec(kind="csv", file=str(f), time_column="hour", time_unit="h",
                        columns={"Q": "flow", "SNH": "nh4"}, repeat=True)
    with pytest.raises(ConfigError, match=r"plant.csv: column 'nh4', line 3: expected a number, got 'n/a'"):
        build_table(spec, 3600, None, np.random.default_rng(0))


def test_negative_concentration_is_refused(tmp_path):
    f = tmp_path / "bad.ascii"
    rows = [f"{k / 96} 60 30 200 50 30 30 6 10 {'-5' if k == 3 else '18000'}" for k in range(10)]
    f.write_text("\n".join(rows))
    with pytest.raises(ConfigError, match=r"negative Q .* row 4"):
        build_table(InfluentSpec(kind="file", file=str(f)), 3600, None, np.random.default_rng(0))


def test_synthetic_is_seeded_and_keeps_the_dry_weather_load():
    spec = InfluentSpec(kind="synthetic", synthetic={"rain_events_per_year": 0.0})
    year = 364 * 86400
    a = build_table(spec, year, None, np.random.default_rng(1))
    b = build_table(spec, year, None, np.random.default_rng(1))
    c = build_table(spec, year, None, np.random.default_rng(2))
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)
    q = a.values[:, 0]
    # without rain, the cycles average out: the mean flow is the BSM1 design flow (52 whole weeks)
    expected = BSM1_CONSTANT_INFLUENT["Q"]
    assert abs(q.mean() - expected) / expected < 0.01
    # daily cycle: the hourly profile has a clear maximum and minimum
    hours = (a.times_s // 3600) % 24
    profile = np.array([q[hours == h].mean() for h in range(24)])
    assert profile.max() / profile.min() > 1.3


def test_synthetic_rain_raises_flow_and_dilutes():
    dry = build_table(InfluentSpec(kind="synthetic", synthetic={"rain_events_per_year": 0.0}), 200 * 86400,
                      None, np.random.default_rng(3))
    wet = build_table(InfluentSpec(kind="synthetic", synthetic={"rain_events_per_year": 40.0}), 200 * 86400,
                      None, np.random.default_rng(3))
    assert wet.values[:, 0].max() > 1.3 * dry.values[:, 0].max()
    i = np.argmax(wet.values[:, 0])
    j = COLUMNS.index("SNH")
    load_ratio = (wet.values[i, 0] * wet.values[i, j]) / (wet.values[i, 0])
    assert load_ratio < BSM1_CONSTANT_INFLUENT["SNH"] * 1.6  # storm water dilutes


def test_unknown_synthetic_setting():
    with pytest.raises(ConfigError, match="did you mean 'rain_events_per_year'"):
        build_table(InfluentSpec(kind="synthetic", synthetic={"rain_event_per_year": 3}), 86400, None,
                    np.random.default_rng(0))
