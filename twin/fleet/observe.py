"""What a maintenance policy or a failure predictor may see of the fleet.

An :class:`Observation` holds observable quantities only: the fleet file's configuration
(asset types, modes and their Weibull parameters, sensor channels, costs), the hour meters
(operating hours of each mode since its last renewal, known from the maintenance records:
a repair renews the diagnosed mode, a replacement every mode), the assets' loads and the air
temperature now, the hourly sensor history when a policy asked for one, and the records.
Effective ages, initiation thresholds, damage and growth rates stay inside
:class:`twin.fleet.model.Fleet`: they are for the simulation, labels and evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Observation:
    asset_ids: tuple[str, ...]
    asset_types: tuple[str, ...]
    row_asset: np.ndarray  # asset of each (asset, mode) row
    row_mode: tuple[tuple[str, str], ...]  # (type, mode) of each row
    weibull_shape: np.ndarray  # per row, from the fleet file
    weibull_scale_h: np.ndarray
    run_h: np.ndarray  # per row: operating hours since the mode's last renewal
    load: np.ndarray  # per asset: relative load now
    up: np.ndarray  # per asset: in service
    ambient_c: float
    #: hourly history per asset type: (assets of the type, hours, features), oldest first, with
    #: the names of its features; empty when no policy asked for one
    history: dict[str, tuple[np.ndarray, np.ndarray, tuple[str, ...]]] = field(default_factory=dict)


def observe(fleet, history: dict | None = None) -> Observation:
    """The observable part of ``fleet`` now (copies: a predictor cannot change the fleet)."""
    s = fleet.s
    return Observation(tuple(a.id for a in fleet.assets), tuple(a.type for a in fleet.assets), s.row_asset.copy(),
                       tuple(s.row_mode), s.shape.copy(), s.scale_h.copy(), s.run_h.copy(), s.asset_load.copy(),
                       s.asset_up.copy(), float(s.ambient_c), dict(history or {}))
