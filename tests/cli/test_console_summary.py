"""What the console says after 'twin run': the figures beyond the BSM1 indices, and the compile note."""

from __future__ import annotations

from pathlib import Path

import yaml

from twin import cli
from twin.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _reference_1h(tmp_path, currency: str | None) -> Path:
    s = yaml.safe_load((ROOT / "scenarios" / "reference_24h.yaml").read_text())
    s.update(duration="1h", evaluation={"kind": "bsm1", "start": "0h", "end": "1h"})
    if currency:
        s["equipment"]["tariff"]["currency"] = currency
    p = tmp_path / "ref1h.yaml"
    p.write_text(yaml.safe_dump(s))
    return p


def test_run_summary_shows_energy_cost_and_control(tmp_path, capsys):
    assert main(["run", str(_reference_1h(tmp_path, "EUR")), "--out", str(tmp_path / "r"), "--quiet",
                 "--no-report"]) == 0
    out = capsys.readouterr().out
    energy = next(line for line in out.splitlines() if line.strip().startswith("energy "))
    assert "kWh (" in energy and "aeration" in energy and "pumping" in energy and energy.endswith(" EUR")
    control = next(line for line in out.splitlines() if line.strip().startswith("control IAE:"))
    assert "do_reactor5" in control and "header_pressure" in control


def test_summary_lines_have_units_separators_and_a_currency_fallback():
    kpis = {"energy": {"total_kWh": 12345.6, "total_cost": 2345.4,
                       "by_area": {"aeration": {"kWh": 10000.0}, "pumping": {"kWh": 2345.6}},
                       "units": {"cost": "currency of the tariff"}},
            "maintenance": {"units": {"cost": "currency of the cost data"},
                            "by_type": {"total": {"failures": 1234, "availability": 0.9912,
                                                  "downtime_h": {"planned": 1000.0, "unplanned": 500.25},
                                                  "cost": {"total": 98765.0}}}},
            "control": {"do_reactor5": {"IAE": 1.5}, "nitrate_reactor2": {}}}
    meta = {"controllers": {"do_reactor5": {"measurement_unit": "g/m3"}}}
    lines = cli._summary_extra(kpis, meta)
    assert lines[0] == "energy 12,346 kWh (aeration 10,000, pumping 2,346); cost 2,345 currency of the tariff"
    assert lines[1] == ("maintenance: 1,234 failures, availability 99.12 %, downtime 1,500.2 h (unplanned 500.2 h), "
                        "cost 98,765 currency of the cost data")
    assert lines[2] == "control IAE: do_reactor5 1.500 g/m3·d"
    assert cli._summary_extra({}, {}) == []


def test_fleet_run_summary_shows_maintenance(tmp_path, capsys):
    s = {"name": "f", "seed": 4, "duration": "90d",
         "fleet": {"file": str(ROOT / "scenarios" / "fleets" / "reference.yaml"), "process_model": False,
                   "policies": {"default": {"kind": "rtf"}}}}
    p = tmp_path / "f.yaml"
    p.write_text(yaml.safe_dump(s))
    assert main(["run", str(p), "--out", str(tmp_path / "f"), "--quiet"]) == 0
    assert "maintenance: " in capsys.readouterr().out


def test_a_cold_kernel_cache_is_announced(tmp_path, capsys, monkeypatch):
    from twin.flowsheet import CompiledPlant

    quick = ROOT / "scenarios" / "quickstart_24h.yaml"
    p = tmp_path / "short.yaml"
    p.write_text(quick.read_text().replace("duration: 24h", "duration: 1h").replace("end: 24h", "end: 1h"))
    monkeypatch.setattr(CompiledPlant, "kernels_cached", lambda self: False)
    assert main(["run", str(p), "--out", str(tmp_path / "a"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "compiling the plant model 'bsm1' with numba" in err and "cached" in err
    monkeypatch.setattr(CompiledPlant, "kernels_cached", lambda self: True)
    assert main(["run", str(p), "--out", str(tmp_path / "b"), "--no-report"]) == 0
    assert "compiling" not in capsys.readouterr().err
    monkeypatch.setattr(CompiledPlant, "kernels_cached", lambda self: False)
    assert main(["run", str(p), "--out", str(tmp_path / "c"), "--no-report", "--quiet"]) == 0
    assert "compiling" not in capsys.readouterr().err


def test_kernels_cached_reads_numba_cache(tmp_path):
    """Cold: the generated module has no numba index beside it and nothing compiled in this process."""
    from types import SimpleNamespace

    from twin.flowsheet import CompiledPlant

    cp = CompiledPlant.__new__(CompiledPlant)
    cp.advance = SimpleNamespace(signatures=[])
    cp._module = SimpleNamespace(__file__=str(tmp_path / "plant_abc.py"))
    assert not cp.kernels_cached()
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "plant_abc.advance-159.py311.nbi").write_bytes(b"")
    assert cp.kernels_cached()
    cp.advance = SimpleNamespace(signatures=[("float64",)])
    (tmp_path / "__pycache__" / "plant_abc.advance-159.py311.nbi").unlink()
    assert cp.kernels_cached()
