"""PyTorch is optional (the ``lstm`` extra): the quick start runs without it, and what needs it
says how to install it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from twin.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_without_torch_the_predictor_says_how_to_install_it(monkeypatch):
    from agents.predictors import lstm

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(ConfigError, match=r"needs PyTorch.*pip install -c constraints.txt -e '\.\[lstm\]'"):
        lstm._torch()


def test_a_run_of_the_quick_start_scenario_needs_no_torch(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from twin.cli import main\n"
            f"rc = main(['run', {str(ROOT / 'scenarios' / 'quickstart_24h.yaml')!r}, '--out', {str(tmp_path / 'out')!r},"
            " '--quiet', '--set', 'duration=2h', '--set', 'evaluation.end=2h'])\n"
            "assert 'torch' not in [m.split('.')[0] for m, v in sys.modules.items() if v is not None]\n"
            "sys.exit(rc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "report.html").exists()
