"""Ctrl-C and --resume on the command line say what they do, and a resumed run keeps its checkpoint interval."""

from __future__ import annotations

from pathlib import Path

import yaml

import twin.run
from twin.cli import main

ROOT = Path(__file__).resolve().parents[2]
REAL_RUN = twin.run.run_scenario


def _fleet(tmp_path) -> Path:
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump({"name": "fleet", "seed": 5, "duration": "1y",
                                 "fleet": {"file": str(ROOT / "scenarios" / "fleets" / "reference.yaml"),
                                           "process_model": False, "policies": {"default": {"kind": "rtf"}}}}))
    return p


def _spy(monkeypatch, interrupt_after: int | None):
    """Wrap run_scenario: record the checkpoint settings; press Ctrl-C after ``interrupt_after`` checkpoints."""
    seen = []

    def run(scenario, base, progress=False, checkpoint=None):
        seen.append(checkpoint)
        if interrupt_after is not None:
            def on_save(n, state):
                if n >= interrupt_after:
                    raise KeyboardInterrupt
            checkpoint.on_save = on_save
        return REAL_RUN(scenario, base, progress=progress, checkpoint=checkpoint)
    monkeypatch.setattr(twin.run, "run_scenario", run)
    return seen


def test_ctrl_c_names_the_checkpoint_and_the_resume_command(tmp_path, capsys, monkeypatch):
    scen, out = _fleet(tmp_path), tmp_path / "res"
    _spy(monkeypatch, interrupt_after=2)
    assert main(["run", str(scen), "--out", str(out), "--checkpoint-every", "100d", "--seed", "5", "--no-report"]) == 130
    err = capsys.readouterr().err
    assert f"interrupted: a checkpoint exists at day 200 in {out}.checkpoint" in err
    assert (f"resume with: twin run {scen} --out {out} --seed 5 --checkpoint-every 100d --no-report --resume"
            in err)
    assert "Traceback" not in err and not out.exists()

    # resumed without --checkpoint-every: says where it resumes and keeps the 100-day interval
    seen = _spy(monkeypatch, interrupt_after=None)
    assert main(["run", str(scen), "--out", str(out), "--seed", "5", "--no-report", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resuming from day 200" in err and "checkpoints every 100d" in err
    assert seen[0].every_s == 100 * 86400
    assert (out / "kpis.json").exists() and not Path(f"{out}.checkpoint").exists()


def test_resume_with_checkpoint_every_takes_the_new_interval(tmp_path, capsys, monkeypatch):
    scen, out = _fleet(tmp_path), tmp_path / "res"
    _spy(monkeypatch, interrupt_after=1)
    assert main(["run", str(scen), "--out", str(out), "--checkpoint-every", "100d", "--no-report"]) == 130
    seen = _spy(monkeypatch, interrupt_after=None)
    assert main(["run", str(scen), "--out", str(out), "--checkpoint-every", "50d", "--no-report", "--resume"]) == 0
    assert seen[0].every_s == 50 * 86400
    assert "resuming from day 100" in capsys.readouterr().err


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(tmp_path, capsys, monkeypatch):
    scen, out = _fleet(tmp_path), tmp_path / "res"

    def run(scenario, base, progress=False, checkpoint=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(twin.run, "run_scenario", run)
    assert main(["run", str(scen), "--out", str(out), "--checkpoint-every", "100d"]) == 130
    assert "before the first checkpoint" in capsys.readouterr().err
