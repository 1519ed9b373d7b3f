"""The LSTM behind the ``predictive`` maintenance policy: the model file a policy names, checked
against the fleet before the run starts, and the block windows of the sensor history it reads.

A policy names its model with ``model:`` under ``fleet.policies.<type>``: a path relative to the
scenario file, or ``reference`` for the model shipped with the package (trained on the reference
fleet running in the reference plant with its process model, see the README). A model trained
for other channels or without the type is refused before the run (a :class:`~twin.errors.ConfigError`: exit 2).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from twin.errors import ConfigError

REFERENCE_MODEL = Path(__file__).with_name("models") / "reference.pt"


def model_path(name: str, base_dir: Path | None, where: str) -> Path:
    """The model file a policy names: ``reference`` (shipped) or a path relative to the scenario."""
    if name == "reference":
        path = REFERENCE_MODEL
    else:
        path = Path(name)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
    if not path.exists():
        raise ConfigError(f"{where}: model file {path} does not exist")
    return path


def load_policy_models(spec, types: dict, base_dir: Path | None) -> dict:
    """The model of every asset type whose policy is ``predictive`` with a ``model``, checked
    against the type's channels and the policy's horizon (one load per file)."""
    from agents.predictors.lstm import check_compatible, load

    files: dict[Path, dict] = {}
    out = {}
    for t in sorted(types):
        pol = spec.policy_for(t)
        if pol.kind != "predictive" or pol.model is None:
            continue
        key = t if t in spec.policies else "default"
        where = f"fleet.policies.{key}.model"
        path = model_path(pol.model, base_dir, where)
        if path not in files:
            files[path] = load(path)
        models = files[path]
        if t not in models:
            raise ConfigError(f"{where}: {path} has no model for asset type '{t}' (it has: {', '.join(sorted(models))})")
        model = models[t]
        check_compatible(model, t, tuple(c.name for c in types[t].channels), f"{where} ({path})")
        if float(pol.horizon_h) not in [float(h) for h in model.meta["horizons_h"]]:
            raise ConfigError(f"fleet.policies.{key}.horizon_h: {pol.horizon_h:g} h is not a horizon of the model "
                              f"({', '.join(f'{h:g}' for h in model.meta['horizons_h'])} h)")
        out[t] = model
    return out


def block_windows(hourly: np.ndarray, block_h: int) -> np.ndarray:
    """Block means (assets, hours / block_h, features) of an hourly history (assets, hours,
    features), NaN where a block has no reading (as the training data, agents.predictors.dataset)."""
    n, hours, f = hourly.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(hourly.reshape(n, hours // block_h, block_h, f), axis=2)


def calibrated(model, p: np.ndarray) -> np.ndarray:
    """Horizon probabilities after the model's Platt scaling on its validation assets (class
    weighting in training inflates the raw probabilities); raw where the model has none."""
    cal = model.meta.get("calibration")
    if not cal:
        return p
    q = np.clip(p, 1e-6, 1 - 1e-6)
    z = np.array(cal["a"]) * np.log(q / (1 - q)) + np.array(cal["b"])
    return 1.0 / (1.0 + np.exp(-z))


#: the operating context a policy checks against its model's training range: the operating point
#: and the weather; not the hour meter (an asset kept ten years outgrows any few years of records
#: while the hours mostly tell the network how old the parts are, a trend it extrapolates)
CONTEXT_CHECKED = ("load", "ambient_c")
#: a block counts as inside the training range widened on each side by this share of the larger
#: of the range's width and its midpoint's size: a design choice (a tenth more than was seen),
#: so that a load of 0.85 against a training load of exactly 1.0 is outside, 0.95 inside
CONTEXT_MARGIN = 0.1


def outside_context(model, blocks: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Which assets' windows of block means (assets, steps, features: ``meta["features"]``) leave
    the operating context the model was trained in (``meta["context_range"]``, widened by
    :data:`CONTEXT_MARGIN`), and why: (assets,) bool and, per asset, '' or e.g. 'load 0.62-0.91
    (trained 1.00-1.00)'. A model saved without the range (before it was recorded) is never
    outside. Missing blocks (out of service) are not checked."""
    n = blocks.shape[0]
    out = np.zeros(n, dtype=bool)
    why = [[] for _ in range(n)]
    ranges = model.meta.get("context_range") or {}
    features = list(model.meta["features"])
    for f in CONTEXT_CHECKED:
        if f not in ranges or f not in features:
            continue
        lo, hi = ranges[f]
        margin = CONTEXT_MARGIN * max(hi - lo, abs(hi + lo) / 2)
        v = blocks[..., features.index(f)]
        with np.errstate(invalid="ignore"):
            bad = ((v < lo - margin) | (v > hi + margin)).any(axis=1)
        if bad.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                vmin, vmax = np.nanmin(v[bad], axis=1), np.nanmax(v[bad], axis=1)
            for k, a, b in zip(np.nonzero(bad)[0], vmin, vmax):
                why[k].append(f"{f} {a:.2f}-{b:.2f} (trained {lo:.2f}-{hi:.2f})")
        out |= bad
    return out, ["; ".join(w) for w in why]
