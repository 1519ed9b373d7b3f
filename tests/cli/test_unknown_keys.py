"""Unknown keys and bad values in every input file are refused before anything runs: exit 2, one
message naming the file and the field with a suggestion, no traceback, no results folder.
Flowsheets (top level, units, the evaluation block), tariffs (time-of-use bands, price files),
study files (their own keys and the overrides they apply), and nested names in scenarios
(a loop's or a pump's settings)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twin.cli import main

ROOT = Path(__file__).resolve().parents[2]
BSM1 = ROOT / "twin" / "plants" / "bsm1.yaml"
REF24 = ROOT / "scenarios" / "reference_24h.yaml"


def _refused(capsys, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error: ") and err.count("\n") == 1
    for n in needles:
        assert n in err, (n, err)
    return err


def _plant_scenario(tmp_path: Path, old: str, new: str) -> Path:
    fs = tmp_path / "my_plant.yaml"
    text = BSM1.read_text()
    assert old in text
    fs.write_text(text.replace(old, new))
    s = tmp_path / "s.yaml"
    s.write_text("name: x\nplant: my_plant.yaml\nduration: 1h\n")
    return s


@pytest.mark.parametrize("old,new,needles", [
    ("units:", "unit:", ("my_plant.yaml", "unknown key 'unit'", "did you mean 'units'")),
    ("  waste_stream: wastage", "  wast_stream: wastage",
     ("my_plant.yaml", "evaluation: unknown key 'wast_stream'", "did you mean 'waste_stream'")),
    ("  effluent_stream: effluent", "  effluent_stream: efluent",
     ("my_plant.yaml", "evaluation.effluent_stream: no stream 'efluent'", "did you mean 'effluent'")),
    ("    internal_recycle: 0.004", "    internal_recycle: lots",
     ("my_plant.yaml", "evaluation.pumped_flows.internal_recycle: expected kWh/m3")),
    ("params: {volume_m3: 1000}, kla_per_d: 0}", "params: {volume_m3: 1000}, kla_pr_d: 0}",
     ("my_plant.yaml", "units.reactor1", "unknown option 'kla_pr_d'", "did you mean 'kla_per_d'")),
    ("params: {volume_m3: 1000}, kla_per_d: 0}", "params: {volum_m3: 1000}, kla_per_d: 0}",
     ("my_plant.yaml", "units.reactor1", "unknown parameter 'volum_m3'", "did you mean 'volume_m3'")),
    # a typo or a bad value under a reactor's initial state (a bare KeyError once)
    ("params: {volume_m3: 1000}, kla_per_d: 0}", "params: {volume_m3: 1000}, kla_per_d: 0, initial: {SNHH: 5}}",
     ("my_plant.yaml", "reactor1", "initial.SNHH: no such state", "did you mean 'SNH'")),
    ("params: {volume_m3: 1000}, kla_per_d: 0}", "params: {volume_m3: 1000}, kla_per_d: 0, initial: {SO: -1}}",
     ("my_plant.yaml", "reactor1", "initial.SO: a concentration cannot be negative")),
    ("params: {volume_m3: 1000}, kla_per_d: 0}", "params: {volume_m3: 1000}, kla_per_d: 0, initial: {SO: high}}",
     ("my_plant.yaml", "reactor1", "initial.SO: expected a number")),
])
def test_a_flowsheet_file_with_an_unknown_key_is_refused(tmp_path, capsys, old, new, needles):
    s = _plant_scenario(tmp_path, old, new)
    _refused(capsys, ["validate", str(s)], *needles)
    _refused(capsys, ["run", str(s), "--out", str(tmp_path / "out"), "--quiet"], *needles)
    assert not (tmp_path / "out").exists()


def _tariff_scenario(tmp_path: Path, tariff: dict) -> Path:
    s = yaml.safe_load(REF24.read_text())
    s["equipment"]["tariff"] = tariff
    p = tmp_path / "tariff.yaml"
    p.write_text(yaml.safe_dump(s, sort_keys=False))
    return p


def test_a_misspelt_tariff_band_key_is_refused_with_a_suggestion(tmp_path, capsys):
    bands = [{"from_h": 0, "to_h": 12, "price_per_kwh": 0.1}, {"from_h": 12, "to_h": 24, "price_per_kWh": 0.2}]
    p = _tariff_scenario(tmp_path, {"kind": "tou", "bands": bands})
    for argv in (["validate", str(p)], ["run", str(p), "--out", str(tmp_path / "out"), "--quiet"]):
        _refused(capsys, argv, "tariff.yaml", "equipment.tariff.bands.1.price_per_kWh: unknown key",
                 "did you mean 'price_per_kwh'")
    assert not (tmp_path / "out").exists()


def test_time_of_use_bands_that_leave_hours_unpriced_are_refused(tmp_path, capsys):
    bands = [{"from_h": 0, "to_h": 12, "price_per_kwh": 0.1}, {"from_h": 13, "to_h": 24, "price_per_kwh": 0.2}]
    p = _tariff_scenario(tmp_path, {"kind": "tou", "bands": bands})
    _refused(capsys, ["validate", str(p)], "equipment.tariff", "do not cover every hour of the day", "12:00")
    # a band over midnight covers both ends of the day
    bands = [{"from_h": 7, "to_h": 22, "price_per_kwh": 0.2}, {"from_h": 22, "to_h": 7, "price_per_kwh": 0.1}]
    assert main(["validate", str(_tariff_scenario(tmp_path, {"kind": "tou", "bands": bands}))]) == 0


@pytest.mark.parametrize("content,needle", [
    ("0,50\n0.5,abc\n", "line 2: expected two numbers, time (d) and price per MWh, got '0.5,abc'"),
    ("0,50\n0.5\n", "line 2: expected two numbers"),
    ("0,50\n1,40\n0.5,45\n", "line 3: times must increase"),
    ("# day-ahead prices\n0,50\n", "expected at least two rows"),
])
def test_a_bad_price_file_is_refused_naming_file_and_line(tmp_path, capsys, content, needle):
    (tmp_path / "prices.csv").write_text(content)
    p = _tariff_scenario(tmp_path, {"kind": "file", "file": "prices.csv"})
    for argv in (["validate", str(p)], ["run", str(p), "--out", str(tmp_path / "out"), "--quiet"]):
        _refused(capsys, argv, "equipment.tariff.file", "prices.csv", needle)
    assert not (tmp_path / "out").exists()


def test_a_price_file_with_a_header_and_comments_is_read(tmp_path):
    from analysis.energy import load_price_file

    f = tmp_path / "p.csv"
    f.write_text("# hourly prices\ntime_d,price_eur_mwh\n0,50\n0.5,-10\n")
    t = load_price_file(f, "MWh")
    assert list(t.times_d) == [0.0, 0.5] and list(t.prices_per_kwh) == [0.05, -0.01]


def test_a_missing_price_file_names_the_tariff_field(tmp_path, capsys):
    p = _tariff_scenario(tmp_path, {"kind": "file", "file": "nowhere.csv"})
    err = _refused(capsys, ["validate", str(p)], "equipment.tariff.file", "nowhere.csv", "not found")
    assert "influent.file" not in err


@pytest.mark.parametrize("override,needle", [
    ("controllers.do_reactor3.Kp=3", "unknown key 'Kp' (did you mean 'K'?)"),
    ("equipment.pumps.lift_station.bep_flw_m3_d=3", "unknown key 'bep_flw_m3_d' (did you mean 'bep_flow_m3_d'?)"),
])
def test_unknown_keys_under_named_entries_get_a_suggestion(capsys, override, needle):
    _refused(capsys, ["validate", str(REF24), "--set", override], f"--set {override.partition('=')[0]}", needle)


def _study(tmp_path: Path, **over) -> Path:
    spec = {"name": "tiny", "scenario": str(ROOT / "scenarios" / "reference_10y.yaml"), "fleet_only": True,
            "overrides": {"duration": "1y", "evaluation.end": "1y", "outputs.checkpoint_every": None},
            "baseline": "rtf", "replications": 2,
            "arms": {"rtf": {"set": {"fleet.policies": {"default": {"kind": "rtf"}}}}, "condition": {"set": {}}}}
    for k, v in over.items():
        if v is None:
            spec.pop(k)
        else:
            spec[k] = v
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(spec, sort_keys=False))
    return p


@pytest.mark.parametrize("over,needles", [
    ({"replicatons": 3}, ("study.yaml: replicatons: unknown key", "did you mean 'replications'")),
    ({"arms": {"rtf": {"set": {}}, "condition": {"set": {}, "nte": "x"}}},
     ("study.yaml: arms.condition.nte: unknown key", "did you mean 'note'")),
    ({"arms": {"rtf": {"set": {}}, "condition": {"set": {"fleet.polices": {}}}}},
     ("study.yaml: arms.condition.set: fleet.polices: unknown key", "did you mean 'policies'")),
    ({"arms": {"rtf": {"set": {"fleet.policies.default.kindd": "rtf"}}, "condition": {"set": {}}}},
     ("study.yaml: arms.rtf.set: fleet.policies.default.kindd: unknown key", "did you mean 'kind'")),
    ({"overrides": {"seeed": 3}}, ("study.yaml: overrides: seeed: unknown key", "did you mean 'seed'")),
    ({"scenario": "nowhere.yaml"}, ("study.yaml: scenario:", "nowhere.yaml", "not found")),
])
def test_a_study_file_with_an_unknown_key_is_refused_before_any_run(tmp_path, capsys, over, needles):
    p = _study(tmp_path, **over)
    _refused(capsys, ["study", str(p), "--out", str(tmp_path / "out")], *needles)
    assert not (tmp_path / "out").exists()
