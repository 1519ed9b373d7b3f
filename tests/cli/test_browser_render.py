"""The run report and the study report open in a real headless browser and their charts render:
the browser lays every chart out and measures data drawn inside its plot area, and every
embedded image decodes. Skipped where no Chromium-family browser is installed (set
TWIN_BROWSER to one); the check itself is ``python -m analysis.browser_check REPORT``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analysis.browser_check import NoBrowser, check, find_browser, main
from twin.cli import main as twin_main

try:
    BROWSER = find_browser()
except NoBrowser:
    BROWSER = None

pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless browser installed")
SCEN = Path(__file__).resolve().parents[2] / "scenarios"


def test_run_report_charts_render(tmp_path, capsys):
    out = tmp_path / "run"
    assert twin_main(["run", str(SCEN / "quickstart_24h.yaml"), "--out", str(out)]) == 0
    r = check(out / "report.html", screenshot=tmp_path / "page.png")
    assert r["failed"] == []
    assert len(r["svgs"]) >= 10
    assert all(s["width"] > 300 and s["height"] > 50 and s["data"] >= 1 for s in r["svgs"])
    assert (tmp_path / "page.png").stat().st_size > 10_000
    capsys.readouterr()
    assert main([str(out / "report.html")]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_study_report_charts_render(tmp_path):
    from twin.study import run_study

    spec = {"name": "tiny", "scenario": str(SCEN / "reference_10y.yaml"), "fleet_only": True,
            "overrides": {"duration": "1y", "evaluation.end": "1y", "outputs.checkpoint_every": None},
            "baseline": "run_to_failure", "replications": 2, "seed0": 5,
            "arms": {"run_to_failure": {"set": {"fleet.policies": {"default": {"kind": "rtf"}}}},
                     "condition": {"set": {}}},
            "economics": {"arm": "condition", "investment": 1000.0, "running_cost_per_year": 100.0, "rate": 0.08,
                          "horizon_years": 5}}
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(spec))
    run_study(p, tmp_path / "s", workers=1)
    r = check(tmp_path / "s" / "report.html")
    assert r["failed"] == []
    assert len(r["imgs"]) >= 2 and all(im["decoded"] and im["natural"][0] > 100 for im in r["imgs"])


def test_a_chart_that_draws_nothing_is_reported(tmp_path, capsys):
    """The check can fail: a chart whose line lies outside its plot area, a chart of zero size
    and an image that does not decode are each named."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!doctype html><html><body>"
        "<svg class='chart' viewBox='0 0 400 200' width='400' role='img' aria-label='off the plot'>"
        "<rect x='40' y='20' width='340' height='150' fill='none' stroke='#999'/>"
        "<path d='M 900 900 L 1000 1000' stroke='blue'/></svg>"
        "<svg class='chart' viewBox='0 0 400 200' width='0' height='0' aria-label='no size'>"
        "<path d='M 50 50 L 100 100' stroke='blue'/></svg>"
        "<img alt='broken' src='data:image/png;base64,AAAA'>"
        "</body></html>")
    r = check(page)
    assert len(r["failed"]) == 3
    assert any("off the plot" in f for f in r["failed"]) and any("no size" in f for f in r["failed"])
    assert any("broken" in f for f in r["failed"])
    assert main([str(page)]) == 1
    assert "FAILED" in capsys.readouterr().out
