"""Auto-tuned loops on the BSM1 closed loop against the published default tunings (Alex et al. 2008).

Same plant, same influent, same seed (hence the same sensor-noise stream): the scenario with
both loops auto-tuned on the initial steady state against the scenario with the BSM1 PI
tunings. IAE is measured on the true process value over days 7-14 of the test file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.run import run_scenario
from twin.scenario import load_scenario

SCEN = Path(__file__).resolve().parents[2] / "scenarios"


def _control(name, dry_file):
    s, p = load_scenario(SCEN / name, [f"warmup.0.influent.file={dry_file}", f"influent.file={dry_file}"])
    return run_scenario(s, p.parent).kpis["control"]


@pytest.fixture(scope="module")
def default_and_tuned(dry_file):
    return _control("bsm1_closedloop_dry.yaml", dry_file), _control("bsm1_closedloop_dry_autotuned.yaml", dry_file)


@pytest.mark.parametrize("loop", ["do_reactor5", "nitrate_reactor2"])
def test_autotuned_loops_are_no_worse_than_bsm1_defaults(default_and_tuned, loop):
    default, tuned = default_and_tuned
    assert tuned[loop]["retunes"] == 1
    assert tuned[loop]["margins"]["accepted"]
    assert tuned[loop]["IAE"] <= default[loop]["IAE"]
