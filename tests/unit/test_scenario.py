"""Scenario schema, overrides and error messages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import ConfigError
from twin.scenario import Scenario, dump_scenario, load_scenario, validate_scenario

SCEN = Path(__file__).resolve().parents[2] / "scenarios"


def _write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("name", sorted(p.name for p in SCEN.glob("*.yaml")))
def test_bundled_scenarios_validate(name):
    s, _ = load_scenario(SCEN / name)
    assert s.name == name[:-5]


def test_unknown_key_suggests(tmp_path):
    p = _write(tmp_path, """
        name: x
        duration: 1d
        influent: {kind: constant, interpolaton: hold}
    """)
    with pytest.raises(ConfigError, match=r"s.yaml: influent.interpolaton: unknown key \(did you mean 'interpolation'\?\)"):
        load_scenario(p)


def test_wrong_type_and_bad_duration(tmp_path):
    p = _write(tmp_path, "name: x\nduration: fortnight\nseed: abc\n")
    with pytest.raises(ConfigError) as e:
        load_scenario(p)
    msg = str(e.value)
    assert "duration: cannot parse duration 'fortnight'" in msg
    assert "seed:" in msg


def test_invalid_yaml_names_line(tmp_path):
    p = _write(tmp_path, "name: x\nduration: [1d\n")
    with pytest.raises(ConfigError, match=r"s.yaml: invalid YAML at line \d+"):
        load_scenario(p)


def test_override_and_seed(tmp_path):
    s, _ = load_scenario(SCEN / "bsm1_closedloop_dry.yaml",
                         ["influent.file=rain.ascii", "controllers.do_reactor5.setpoint=1.5"], seed=9)
    assert s.influent.file == "rain.ascii"
    assert s.controllers["do_reactor5"].setpoint == 1.5
    assert s.seed == 9
    assert s.warmup[0].influent.file.endswith("dryinfluent.csv")  # the warm-up keeps dry weather


def test_override_of_a_value_as_section_is_refused():
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_scenario(SCEN / "quickstart_24h.yaml", ["seed.x=1"])


def test_window_must_fit(tmp_path):
    p = _write(tmp_path, "name: x\nduration: 1d\nevaluation: {start: 2d}\n")
    with pytest.raises(ConfigError, match="evaluation window"):
        load_scenario(p)


names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@st.composite
def scenarios(draw):
    n_days = draw(st.integers(1, 400))
    d = {"name": draw(names), "duration": f"{n_days}d", "seed": draw(st.integers(0, 2**31)),
         "influent": {"kind": draw(st.sampled_from(["constant", "synthetic"])),
                      "interpolation": draw(st.sampled_from(["linear", "hold"]))},
         "evaluation": {"start": f"{draw(st.integers(0, n_days - 1))}d"},
         "inputs": {"reactor3.kla_per_d": draw(st.floats(0, 400))}}
    return d


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_yaml_round_trip(d):
    s = validate_scenario(d, "gen")
    again = validate_scenario(yaml.safe_load(dump_scenario(s)), "dump")
    assert again == s
    assert isinstance(again, Scenario)


_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                       max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "duration", "plant", "seed", "influent", "controllers",
                                        "evaluation", "warmup", "inputs", "solver", "outputs", "initial",
                                        "bogus"]), _values, max_size=8))
def test_malformed_scenarios_raise_config_errors_only(d):
    """Random malformed input is reported as a ConfigError (a message), never another exception."""
    try:
        validate_scenario(d, "random.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("random.yaml: ")
