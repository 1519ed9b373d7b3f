"""The run's HTML report as a plant engineer reads it: well-formed, one self-contained file,
numbers in fixed notation with thousands separators, costs in the tariff's currency, the
expected sections and charts, time in hours, PM/Ms or why there are none; and ``twin report``
writing the same report again from a results folder."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from analysis.report import _margin_reason, fmt, money
from analysis.svgchart import MAX_POINTS, Chart, Series, line_chart, nice_ticks, reduce, time_ticks
from twin.cli import main
from twin.results import write_results
from twin.run import run_scenario
from twin.scenario import validate_scenario

ROOT = Path(__file__).resolve().parents[2]
VOID = {"meta", "br", "img", "hr", "input", "link", "line", "rect", "path"}  # path/line/rect: self-closed in SVG


class _Page(HTMLParser):
    """Text (outside <style>) by element, the open/close balance, headings and chart titles."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.h2: list[str] = []
        self.charts: list[str] = []
        self._h2 = False
        self._style = False

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self.charts.append(dict(attrs).get("aria-label", ""))
        if tag not in VOID:
            self.stack.append(tag)
        self._h2 = tag == "h2" or self._h2
        self._style = tag == "style" or self._style

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()
        if tag == "h2":
            self._h2 = False
        if tag == "style":
            self._style = False

    def handle_data(self, data):
        if self._style:
            return
        self.text.append(data)
        if self._h2:
            self.h2.append(data)


def _parse(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    p.close()
    return p


@pytest.fixture(scope="module")
def reference_report(tmp_path_factory):
    """Six hours of the reference plant, costs in EUR, written with its report."""
    s = yaml.safe_load((ROOT / "scenarios" / "reference_24h.yaml").read_text())
    s.update(duration="6h", evaluation={"kind": "bsm1", "start": "0h", "end": "6h"})
    s["equipment"]["tariff"]["currency"] = "EUR"
    result = run_scenario(validate_scenario(s, "ref6h"), ROOT / "scenarios")
    out = write_results(result, tmp_path_factory.mktemp("res") / "ref6h")
    return result, out, (out / "report.html").read_text()


def test_report_is_well_formed_and_self_contained(reference_report):
    _, _, text = reference_report
    page = _parse(text)
    assert not page.errors and page.stack == []
    assert text.startswith("<!doctype html>")
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text and "<img" not in text  # every chart inline


def test_report_text_has_no_escaped_entities_and_no_scientific_notation(reference_report):
    _, _, text = reference_report
    words = " ".join(_parse(text).text)
    for entity in ("&gt;", "&lt;", "&amp;", "&quot;", "&#"):
        assert entity not in words
    assert not re.search(r"\d(\.\d+)?[eE][+-]?\d", words), re.search(r"\S*\d[eE][+-]?\d\S*", words)
    assert re.search(r"\d{1,3}(,\d{3})+", words)  # thousands separators


def test_report_shows_the_currency_of_the_tariff(reference_report):
    _, _, text = reference_report
    words = " ".join(_parse(text).text)
    assert re.search(r"energy cost\s*[\d,]+ EUR", words)
    assert "cost [EUR]" in words and "currency of the tariff" not in words


def test_report_has_the_sections_and_charts_of_a_plant_report(reference_report):
    _, _, text = reference_report
    page = _parse(text)
    h2 = [h.strip() for h in page.h2]
    assert len(h2) == len(set(h2))
    for section in ("Summary", "Influent", "Effluent against limits", "Control loops", "Aeration", "Pumping station",
                    "Sludge", "Instruments", "Energy", "Run"):
        assert section in h2
    for chart in ("Influent flow", "Influent COD load", "Influent nitrogen load", "Effluent ammonia (SNH)",
                  "Effluent total N", "Effluent nitrate (SNO)", "Effluent suspended solids (TSS)", "Effluent total COD",
                  "Effluent BOD5", "Airflow per zone", "Air valve openings", "Blowers running", "Wet well level",
                  "Treatment bypass (wet-well overflow)", "Sludge inventory (suspended solids in the plant)",
                  "Sludge age (solids retention time)", "Power by area (interval means)", "Mean power of each hour",
                  "Cumulative energy cost [EUR]", "BSM1 energy indices as power"):
        assert chart in page.charts, chart
    assert "do_reactor3: reactor3.SO" in page.charts
    words = " ".join(page.text)
    assert "00:00" not in words  # the mean power by hour is a chart, not a 24-row table
    assert "BSM1 energy indices" in words and "metered aeration" in words


def test_time_axes_are_in_whole_hours(reference_report):
    _, _, text = reference_report
    assert "time from the start [h]" in text and "time from the start [d]" not in text
    svg = re.search(r"<svg[^>]*aria-label='Effluent total N'.*?</svg>", text).group(0)
    ticks = re.findall(r"<text x='[^']*' y='[^']*' text-anchor='middle'>([^<]+)</text>", svg)
    hours = [t for t in ticks if t != "time from the start [h]"]
    assert hours and all(re.fullmatch(r"\d+", t) for t in hours) and hours[-1] == "6"


def test_loops_without_a_design_check_say_why(reference_report):
    _, _, text = reference_report
    words = " ".join(_parse(text).text)
    assert words.count("autotune off") == 8  # the eight loops of the scenario have fixed gains


def test_margins_come_from_the_design_check_or_the_refused_design():
    spec = SimpleNamespace(autotune=SimpleNamespace(enabled=True, at="initial"))
    result = SimpleNamespace(scenario=SimpleNamespace(controllers={"do": spec}), events=SimpleNamespace(records=[]))
    assert _margin_reason("do", {"margins": {"phase_margin_deg": 61.04, "Ms": 1.372}}, result) == ["61.0", "1.37"]
    result.events.records = [{"kind": "tuning_refused", "source": "do", "message": "design refused, gains kept: Ms",
                               "data": {"margins": {"phase_margin_deg": 20.0, "Ms": 2.9}}}]
    assert _margin_reason("do", {"margins": None}, result) == ["20.0 (refused design)", "2.90 (refused design)"]
    result.events.records = [{"kind": "tuning_failed", "source": "do", "message": "no design: too noisy", "data": {}}]
    assert _margin_reason("do", {"margins": None}, result) == [("no design: too noisy", 2)]


@pytest.mark.parametrize("value,text", [(13836.876, "13,837"), (1.384e4, "13,840"), (602.307, "602.3"), (0.7375, "0.7375"),
                                        (0.000554881, "0.0005549"), (-20000.0, "-20,000"), (18.0, "18"), (3, "3"),
                                        (1234567, "1,234,567"), (1e-12, "0"), (2.5e20, "250,000,000,000,000,000,000")])
def test_numbers_print_in_fixed_notation_with_thousands_separators(value, text):
    assert fmt(value) == text
    assert "e" not in fmt(value * 1.000001).lower()


def test_money_carries_the_currency():
    assert money(2667.84, "EUR") == "2,668 EUR"
    assert money(45.2528, None) == "45.25"


def test_long_series_are_reduced_to_their_extremes():
    x = np.arange(200_000, dtype=float)
    y = np.sin(x / 50.0)
    y[123_457] = 7.0
    xr, yr = reduce(x, y)
    assert xr.size <= MAX_POINTS and np.all(np.diff(xr) > 0)
    assert yr.max() == 7.0 and yr.min() == y.min()


def test_ticks_are_round_and_time_ticks_whole_hours():
    assert nice_ticks(0.0, 18.7) == [0.0, 5.0, 10.0, 15.0]
    assert nice_ticks(1.57, 1.83) == pytest.approx([1.6, 1.7, 1.8])
    assert time_ticks(0.0, 24.0) == [0, 3, 6, 9, 12, 15, 18, 21, 24]
    assert time_ticks(0.0, 6.0) == [0, 1, 2, 3, 4, 5, 6]


def test_a_chart_without_data_says_so_and_a_constant_gets_an_axis():
    assert "no data recorded" in line_chart(Chart("empty", "y", "t", [Series(np.zeros(0), np.zeros(0), "s")]))
    svg = line_chart(Chart("flat", "y", "t", [Series(np.arange(5.0), np.zeros(5), "s")], y_min=0.0))
    assert "<path d='M" in svg and "nan" not in svg


def test_twin_report_rewrites_the_report_of_a_results_folder(reference_report, tmp_path, capsys):
    _, out, text = reference_report
    again = tmp_path / "again.html"
    assert main(["report", str(out), "--out", str(again)]) == 0
    assert again.read_text() == text  # the same report from the saved files as from the run in memory


def test_twin_report_refuses_what_is_not_a_results_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such results folder" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "kpis.json").write_text("{}")
    assert main(["report", str(tmp_path / "half")]) == 2
    err = capsys.readouterr().err
    assert "not a results folder" in err and "Traceback" not in err
    assert not (tmp_path / "half" / "report.html").exists()


def test_a_fleet_only_run_reports_its_maintenance_over_the_whole_period(tmp_path):
    """Without a process model there are no series: the report still shows the fleet, and the
    failure timeline spans the scenario's duration (in days)."""
    out = tmp_path / "fleet"
    assert main(["run", str(ROOT / "scenarios" / "reference_10y_rtf.yaml"), "--out", str(out), "--quiet",
                 "--set", "fleet.process_model=false", "--set", "duration=1y", "--set", "evaluation.end=1y"]) == 0
    text = (out / "report.html").read_text()
    page = _parse(text)
    assert not page.errors and page.stack == []
    assert [h.strip() for h in page.h2] == ["Summary", "Equipment fleet and maintenance", "Run"]
    assert any(c.startswith("Maintenance cost by asset type") for c in page.charts)
    if "Failures" in page.charts:
        svg = re.search(r"<svg[^>]*aria-label='Failures'.*?</svg>", text).group(0)
        assert "time from the start [d]" in svg
        marks = [float(x) for x in re.findall(r"<line x1='([\d.]+)' x2='[\d.]+' y1='\d+' y2='\d+' "
                                               r"stroke='#[0-9a-f]{6}' stroke-width='2'/>", svg)]
        assert marks and all(150 <= x <= 880 for x in marks)  # every failure inside the plot area
