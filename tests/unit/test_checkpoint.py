"""Checkpoint and resume: a run stopped after a checkpoint and resumed from it gives exactly the
results of an uninterrupted run with the same seed (KPIs, time series, event log)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from twin.checkpoint import Checkpointing, Halted
from twin.durations import parse_duration
from twin.errors import ConfigError
from twin.run import run_scenario
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCEN = ROOT / "scenarios"


def _kpis(result) -> str:
    k = dict(result.kpis)
    k["run"] = {x: v for x, v in k["run"].items() if x != "wall_s"}  # wall time is not a result
    return json.dumps(k, sort_keys=True)


def _events(result) -> list:
    return [r for r in result.events.records if r["kind"] != "resumed"]


def _stop_and_resume(scenario, base, folder, every: str, halt_after: int):
    with pytest.raises(Halted):
        run_scenario(scenario, base, checkpoint=Checkpointing(folder, parse_duration(every), halt_after=halt_after))
    with open(folder / "state.pkl", "rb") as fh:
        saved = pickle.load(fh)
    resumed = run_scenario(scenario, base, checkpoint=Checkpointing(folder, parse_duration(every), resume=True))
    return saved, resumed


# a congested maintenance organisation: one crew on a short shift, one spare per type with a long
# lead time, so that checkpoints fall while orders wait for a crew, a planned-work window or a part
CONGESTED = ["fleet.process_model=false", "duration=1000d", "evaluation.end=1000d", "fleet.crews.count=1",
             "fleet.spares.default.stock=1", "fleet.spares.default.lead_time=30d", "fleet.crews.shift_start_h=8",
             "fleet.crews.shift_end_h=12"]


@pytest.fixture(scope="module")
def congested():
    """The congested fleet run, and the checkpoint numbers (every 77 h: not a multiple of a day,
    so they fall inside shifts too) at which orders wait for a crew while another waits for a
    planned-work window, a part or the end of its work."""
    scenario, path = load_scenario(SCEN / "reference_10y.yaml", CONGESTED)
    plain = run_scenario(scenario, path.parent)
    first: dict[str, int] = {}

    def seen(n, state):
        agent = state["parts"]["agent"]
        stages = {wo.stage for wo in agent["attrs"]["open_orders"].values()}
        if agent["crew_queue"] and agent["attrs"]["pending_parts"]:
            for stage in stages - {"queued"}:
                first.setdefault(stage, n)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        run_scenario(scenario, path.parent, checkpoint=Checkpointing(Path(d), parse_duration("77h"), on_save=seen))
    return scenario, path, plain, first


@pytest.mark.parametrize("stage", ["window", "part", "working"])
def test_fleet_run_resumed_mid_queue_equals_uninterrupted(tmp_path, congested, stage):
    scenario, path, plain, first = congested
    assert stage in first, f"no checkpoint caught an order in stage '{stage}' (caught: {first})"
    saved, resumed = _stop_and_resume(scenario, path.parent, tmp_path / "ck", "77h", first[stage])
    agent = saved["parts"]["agent"]
    stages = {wo.stage for wo in agent["attrs"]["open_orders"].values()}
    assert agent["crew_queue"] and {"queued", stage} <= stages
    assert _kpis(resumed) == _kpis(plain)
    assert _events(resumed) == _events(plain)
    assert plain.kpis["maintenance"]["by_type"]["total"]["failures"] > 20


def test_process_run_resumed_equals_uninterrupted(tmp_path):
    """The reference plant with its loops, equipment, fleet and maintenance agent: stopped after
    two daily checkpoints (at an instant that is no multiple of the loops' sample time) and resumed."""
    scenario, path = load_scenario(SCEN / "reference_year.yaml", ["duration=4d", "evaluation.end=4d"])
    plain = run_scenario(scenario, path.parent)
    _, resumed = _stop_and_resume(scenario, path.parent, tmp_path / "ck", "86430s", 2)
    assert _kpis(resumed) == _kpis(plain)
    assert np.array_equal(resumed.times_s, plain.times_s)
    assert np.array_equal(resumed.values, plain.values, equal_nan=True)  # bit-identical, not close
    assert _events(resumed) == _events(plain)
    # and checkpointing itself changes nothing
    again = run_scenario(scenario, path.parent, checkpoint=Checkpointing(tmp_path / "ck2", parse_duration("1d")))
    assert np.array_equal(again.values, plain.values, equal_nan=True)


def test_resume_refuses_another_scenario_or_a_missing_checkpoint(tmp_path):
    scenario, path = load_scenario(SCEN / "reference_10y.yaml", CONGESTED)
    folder = tmp_path / "ck"
    with pytest.raises(ConfigError, match="no checkpoint"):
        run_scenario(scenario, path.parent, checkpoint=Checkpointing(folder, None, resume=True))
    with pytest.raises(Halted):
        run_scenario(scenario, path.parent, checkpoint=Checkpointing(folder, parse_duration("30d"), halt_after=1))
    other, _ = load_scenario(SCEN / "reference_10y.yaml", CONGESTED, seed=99)
    with pytest.raises(ConfigError, match="different scenario"):
        run_scenario(other, path.parent, checkpoint=Checkpointing(folder, None, resume=True))


def test_adaptive_loops_are_refused_up_front(tmp_path):
    scenario, path = load_scenario(SCEN / "bsm1_closedloop_dry.yaml",
                                   ["controllers.do_reactor5.adaptive.enabled=true"])
    with pytest.raises(ConfigError, match="adaptive"):
        run_scenario(scenario, path.parent, checkpoint=Checkpointing(tmp_path / "ck", parse_duration("1d")))


def test_cli_run_killed_then_resumed(tmp_path):
    """``twin run`` killed (SIGKILL, no cleanup) after its second checkpoint, then
    ``twin run --resume``: the same kpis.json as an uninterrupted run; the checkpoint folder is
    removed once the run is complete."""
    scen = tmp_path / "fleet.yaml"
    scen.write_text(yaml.safe_dump({"name": "fleet", "seed": 5, "duration": "10y",
                                    "fleet": {"file": str(SCEN / "fleets" / "reference.yaml"), "process_model": False,
                                              "crews": {"count": 1}, "policies": {"default": {"kind": "rtf"}}}}))
    cmd = [sys.executable, "-m", "twin.cli", "run", str(scen), "--quiet", "--no-report"]
    env = dict(os.environ)
    a = subprocess.run(cmd + ["--out", str(tmp_path / "a")], capture_output=True, text=True, env=env)
    assert a.returncode == 0, a.stderr
    # killed from outside (SIGKILL, no cleanup) once its second checkpoint is on disk; a ten-year
    # run with monthly checkpoints has about a hundred more to write, so it is still running
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "b"), "--checkpoint-every", "30d"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    from twin.checkpoint import checkpoint_info

    def checkpoints() -> int:
        try:
            info = checkpoint_info(tmp_path / "b.checkpoint")
        except (OSError, EOFError, pickle.UnpicklingError):  # being replaced right now
            return 0
        return 0 if info is None else info["now_s"] // (30 * 86400)

    while proc.poll() is None and checkpoints() < 2:
        time.sleep(0.002)
    proc.kill()
    assert proc.wait() == -9, "the run ended before it could be killed"
    assert not (tmp_path / "b").exists() and (tmp_path / "b.checkpoint" / "state.pkl").exists()
    resumed = subprocess.run(cmd + ["--out", str(tmp_path / "b"), "--checkpoint-every", "30d", "--resume"],
                             capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    ka = json.loads((tmp_path / "a" / "kpis.json").read_text())
    kb = json.loads((tmp_path / "b" / "kpis.json").read_text())
    for k in (ka, kb):
        k["run"].pop("wall_s")
    assert ka == kb
    assert not (tmp_path / "b.checkpoint").exists()
    # no checkpoint to resume from: a clear error, exit code 2
    again = subprocess.run(cmd + ["--out", str(tmp_path / "c"), "--resume"], capture_output=True, text=True, env=env)
    assert again.returncode == 2 and "no checkpoint" in again.stderr and "Traceback" not in again.stderr


def test_adaptive_model_gain_loop_resumes_exactly(tmp_path, dry_file):
    """A loop that retunes itself from routine data keeps its adaptation state across a resume."""
    sets = [f"warmup.0.influent.file={dry_file}", f"influent.file={dry_file}", "duration=6d",
            "evaluation.start=1d", "evaluation.end=6d",
            "controllers.do_reactor5.adaptive.enabled=true", "controllers.do_reactor5.adaptive.method=model_gain",
            "controllers.do_reactor5.adaptive.saturation_value=8.0"]
    scenario, path = load_scenario(SCEN / "bsm1_closedloop_dry_autotuned.yaml", sets)
    plain = run_scenario(scenario, path.parent)
    saved, resumed = _stop_and_resume(scenario, path.parent, tmp_path / "ck", "2d", 9)
    assert saved["parts"]["loop.do_reactor5"]["retunes"] > 1  # it had retuned before the stop
    assert _kpis(resumed) == _kpis(plain)
    assert np.array_equal(resumed.values, plain.values, equal_nan=True)
    assert _events(resumed) == _events(plain)
