"""The BSM1 influent files in their two common layouts give the same table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_file

from twin.influent import COLUMNS, load_bsm1_file


def _bsm2_python_dry() -> Path | None:
    spec = importlib.util.find_spec("bsm2_python")
    if spec is None:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / "dryinfluent.csv"
    return p if p.exists() else None


def test_layouts_agree():
    a, b = shared_file("data", "bsm1", "dryinfluent.ascii"), _bsm2_python_dry()
    if a is None or b is None:
        pytest.skip("needs both the shared BSM1 dry-weather file and bsm2-python")
    ta, va, _ = load_bsm1_file(a, "auto")
    tb, vb, temp = load_bsm1_file(b, "auto")
    assert va.shape == (1344, len(COLUMNS))
    np.testing.assert_allclose(ta, tb)
    np.testing.assert_allclose(va, vb)
    assert np.all(temp == 15.0)


@pytest.mark.parametrize("name,mean_flow", [("dryinfluent.ascii", 18446), ("raininfluent.ascii", None),
                                            ("storminfluent.ascii", None)])
def test_bsm1_files_load(name, mean_flow):
    p = shared_file("data", "bsm1", name)
    if p is None:
        pytest.skip(f"shared BSM1 file {name} not available")
    t, v, _ = load_bsm1_file(p, "auto")
    assert t.size == 1344 and np.isclose(t[1] - t[0], 1 / 96, atol=1e-6)
    if mean_flow:
        # the dry-weather file's average flow is the BSM1 design flow (Alex et al. 2008, section 3)
        assert abs(np.mean(v[:, 0]) - mean_flow) / mean_flow < 0.01


def test_published_values_match_the_shared_reference(bsm1_reference):
    """The values the tests use are the published ones held in the shared reference file."""
    import yaml

    p = shared_file("reference", "bsm1.yaml")
    if p is None:
        pytest.skip("shared reference file not available")
    shared = yaml.safe_load(p.read_text())
    for section, values in bsm1_reference.items():
        assert shared[section] == values
