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


SEEDS = (1, 2, 3, 4, 5)


def _run(name, dry_file, seed):
    s, p = load_scenario(SCEN / name, [f"warmup.0.influent.file={dry_file}", f"influent.file={dry_file}",
                                       "outputs.timeseries=false", "outputs.report=false"], seed=seed)
    return run_scenario(s, p.parent)


@pytest.fixture(scope="module", params=SEEDS)
def default_and_tuned(request, dry_file):
    seed = request.param
    return _run("bsm1_closedloop_dry.yaml", dry_file, seed), _run("bsm1_closedloop_dry_autotuned.yaml", dry_file, seed)


@pytest.mark.parametrize("loop", ["do_reactor5", "nitrate_reactor2"])
def test_autotuned_loops_are_no_worse_than_bsm1_defaults(default_and_tuned, loop):
    """On each of five seeds the auto-tuned loop's IAE is within 2 % of the BSM1 default tuning's
    or better. An identification that does not determine the model well enough keeps the
    default gains (the event log says why), which also satisfies this; an applied design must
    have passed verification."""
    default, tuned = default_and_tuned
    decisions = [e for e in tuned.events.records if e["source"] == loop
                 and e["kind"] in ("retune", "tuning_kept", "tuning_refused", "tuning_failed")]
    assert len(decisions) == 1
    c = tuned.kpis["control"][loop]
    if decisions[0]["kind"] == "retune":
        assert c["retunes"] == 1 and c["margins"]["accepted"]
    else:
        assert c["retunes"] == 0 and decisions[0]["message"]
    assert c["IAE"] <= 1.02 * default.kpis["control"][loop]["IAE"]


def test_adaptive_do_loop_beats_fixed_gains_after_oxygen_transfer_drops(dry_file):
    """Oxygen transfer in tank 5 falls by 40 % at day 7 (diffuser fouling). The auto-tuned DO loop
    with model-gain adaptation re-estimates its process gain from routine data ((S_sat - S_O) /
    KLa, which falls with the transfer) and retunes; over the following two days its IAE is
    lower than the same loop's with its gains fixed. Same seed, same noise."""
    def run(adaptive: bool):
        sets = [f"warmup.0.influent.file={dry_file}", f"influent.file={dry_file}",
                "events=[{at: 7d, set: {reactor5.oxygen_transfer_factor: 0.6}}]",
                "evaluation.start=7d", "evaluation.end=9d"]
        if adaptive:
            sets += ["controllers.do_reactor5.adaptive.enabled=true",
                     "controllers.do_reactor5.adaptive.method=model_gain",
                     "controllers.do_reactor5.adaptive.saturation_value=8.0"]
        s, p = load_scenario(SCEN / "bsm1_closedloop_dry_autotuned.yaml", sets)
        return run_scenario(s, p.parent)
    fixed, adaptive = run(False), run(True)
    drop_s = 21 * 86400  # day 7 of the test period, after the 14-day warm-up
    after = [e for e in adaptive.events.records if e["kind"] == "retune" and e["source"] == "do_reactor5"
             and drop_s < e["time_s"] <= drop_s + 2 * 86400]
    assert after, "the adaptive loop did not retune after the drop"
    # the gain estimate saw the drop: about 0.6 x its level at the same hour before the drop
    assert min(e["data"]["gain_ratio"] for e in after) < 0.7
    assert all(e["data"]["margins"]["accepted"] for e in after)
    assert adaptive.kpis["control"]["do_reactor5"]["IAE"] < fixed.kpis["control"]["do_reactor5"]["IAE"]
