"""'twin compare': what it shows, what it refuses, and that it never overwrites silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from twin.cli import main


def _folder(tmp_path: Path, name: str, *, plant="bsm1", end="14d", snh=1.0, eqi=6000.0, kwh=1000.0,
            cost=200.0, failures=10, currency="EUR") -> Path:
    f = tmp_path / name
    f.mkdir()
    (f / "scenario.resolved.yaml").write_text(yaml.safe_dump(
        {"name": name, "plant": plant, "duration": "14d", "evaluation": {"kind": "bsm1", "start": "7d", "end": end}}))
    viol = {n: {"pct_time": 1.0} for n in ("SNH", "Ntot", "TSS", "CODt", "BOD5")}
    kpis = {"bsm1": {"EQI": eqi, "window_d": [7, 14], "violations": viol,
                     "effluent_avg": {"SNH": snh, "Ntot": 15.0, "TSS": 13.0, "CODt": 48.0, "BOD5": 2.7}},
            "energy": {"total_kWh": kwh, "total_cost": cost, "by_area": {}, "units": {"cost": currency}},
            "maintenance": {"units": {"cost": "currency of the cost data"},
                            "by_type": {"total": {"failures": failures, "availability": 0.99, "cost": {"total": 5000.0},
                                                  "downtime_h": {"planned": 10.0, "unplanned": 20.0}}}}}
    (f / "kpis.json").write_text(json.dumps(kpis))
    return f


def test_compare_shows_effluent_eqi_energy_cost_and_maintenance(tmp_path, capsys):
    a = _folder(tmp_path, "a", snh=0.8, eqi=5900.0, kwh=900.0, cost=150.0, failures=7)
    b = _folder(tmp_path, "b")
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "EQI: 5,900.0 against 6,000.0 kg PU/d (reduction 100.0)" in out
    assert "SNH -0.200" in out and "Ntot +0.000" in out and "TSS" in out and "CODt" in out
    assert "saved 100 kWh; cost saved 50 EUR" in out
    assert "failures avoided: 3" in out and "maintenance cost saved: 0 currency of the cost data" in out
    res = json.loads((a / "compare.json").read_text())
    assert res["effluent"]["avg_g_m3"]["SNH"]["difference"] == pytest.approx(-0.2)
    assert res["energy"]["cost_unit"] == "EUR"


@pytest.mark.parametrize("change,needle", [({"plant": "reference"}, "plant"), ({"end": "13d"}, "evaluated over")])
def test_compare_refuses_different_plants_or_windows_unless_forced(tmp_path, capsys, change, needle):
    a, b = _folder(tmp_path, "a", **change), _folder(tmp_path, "b")
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "--force" in err and "Traceback" not in err
    assert not (a / "compare.json").exists()
    assert main(["compare", str(a), str(b), "--force"]) == 0


def test_compare_never_overwrites_silently(tmp_path, capsys):
    a, b = _folder(tmp_path, "a"), _folder(tmp_path, "b")
    assert main(["compare", str(a), str(b)]) == 0
    (a / "compare.json").write_text("earlier\n")
    assert main(["compare", str(a), str(b)]) == 0
    assert (a / "compare.json").read_text() == "earlier\n"
    assert "compare.1.json" in capsys.readouterr().out and (a / "compare.1.json").exists()
    assert main(["compare", str(a), str(b)]) == 0
    assert (a / "compare.2.json").exists()
    assert main(["compare", str(a), str(b), "--overwrite"]) == 0
    assert json.loads((a / "compare.json").read_text())["baseline"] == str(b)
    out = tmp_path / "mine.json"
    out.write_text("mine\n")
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 2
    assert out.read_text() == "mine\n" and "--overwrite" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--out", str(out), "--overwrite"]) == 0
    assert out.read_text() != "mine\n"


def test_compare_splits_the_electricity_saving_into_volume_and_timing(tmp_path, capsys):
    """Baseline 1,000 kWh for 200 (mean price 0.2); run 900 kWh for 171: saved 29, of which
    100 kWh x 0.2 = 20 from using less and 9 from the hours (mean price 0.19)."""
    a = _folder(tmp_path, "a", kwh=900.0, cost=171.0)
    b = _folder(tmp_path, "b")
    for f, kwh, cost in ((a, 900.0, 171.0), (b, 1000.0, 200.0)):
        k = json.loads((f / "kpis.json").read_text())
        k["energy"]["electricity"] = {"kWh": kwh, "cost": cost}
        (f / "kpis.json").write_text(json.dumps(k))
    assert main(["compare", str(a), str(b)]) == 0
    assert "cost saved 29.0 EUR, of which 20.0 from using 100 kWh less and 9.0 from the hours" in capsys.readouterr().out
    e = json.loads((a / "compare.json").read_text())["energy"]["electricity"]
    assert e["from_using_less"] == pytest.approx(20.0) and e["from_timing"] == pytest.approx(9.0)
