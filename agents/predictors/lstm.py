"""The LSTM failure predictor: per asset type, stacked LSTM layers over a window of block-mean
readings, with two heads: P(failure within each horizon) and quantiles of the remaining life.

Wide and deep (format 2): the heads read the last LSTM layer's final state *and* statistics of
the same normalised window (per feature: last value, mean, least-squares slope, standard
deviation; :func:`window_stats`), each standardised by its mean and sd over the training windows
(stored in the network as buffers). The small LSTM of format 1 lost on PR-AUC to a logistic
regression on exactly these statistics (aeration grids, filters, valves): the readings are
normalised by their spread over the whole record, so the slow drift of a wearing machine within
one week (a clogging filter's differential pressure, a grid's wet pressure) is a small fraction
of the input's scale, which a 16/8-unit LSTM trained for a few epochs does not resolve, while
the regression sees the slope and the spread re-standardised, at unit scale. The linear path
lets the network represent at least what that regression uses (its score through the monotone
hazard link; each horizon's increment starts at the regression fitted for it on the same
training windows, so a few epochs start from the baseline, not from noise); the recurrent path
adds what the sequence carries beyond four statistics. Format 1
files (no statistics path) still load and predict as before.

Inputs (format 3): the readings (the type's channels, load, air temperature, operating hours
since the last renewal) and each channel's residual from its normal-behaviour model, a least-squares
fit on load and air temperature over healthy blocks of the training assets (:func:`fit_nbm`,
``meta["nbm"]``; ``residuals=False`` leaves them out). Format 2 files (no residuals) still load.

Validation (``validation_data``, the shipped model's setting): whole data sets (other seeds) held
out for early stopping, the variant's choice, the Platt scaling, the alarm level and the RUL
calibration, every asset of the training sets training. Without it a share of each training
set's assets validates; in data of the plant every asset of a seed lives through one influent,
weather and load history, so those assets are not new conditions: models that scored better on
them with more epochs or units did worse on unseen seeds (pumps, 32/16 units, 10 epochs: Brier
0.018-0.025 on four unseen seeds against the baselines' 0.004-0.007, RUL coverage 0.50-0.65);
validated on a held-out seed the same architecture stopped earlier and had Brier 0.0013-0.0034
and coverage 0.86-0.90 (both with the earlier fixed-stride sampling of windows).

Which of the two per type (``variant``: ``lstm``, the default, ``stats`` or ``auto``, the shipped
model's): with ``auto`` both are trained from the same seed and the one with the higher PR-AUC
at 7 days on the validation assets is kept (ties, or no score for
either: the LSTM state alone, the simpler model); the model records its ``variant`` and both
scores (``selection``). Why not one architecture for all: on the shipped model's validation
assets (seeds 1, 2, 5 and 6; README) the statistics path helped where the regression on the
statistics is strong (a slow drift in one channel; PR-AUC at 7 days with it against without:
filters 0.976 against 0.920, valves 0.974 against 0.883, grids 0.845 against 0.676, pumps 0.736
against 0.635) and cost blowers (0.518 against 0.699), motors (0.268 against 0.371) and heat
exchangers (0.551 against 0.723). The choice is by the ranking at 7 days, the figure the
comparison with the baselines uses, not by the loss (which includes the remaining-life term),
made on the validation assets only, never on the seeds the model is evaluated on; on few
validation positives it is noisy (with two seeds, heat exchangers and motors got the statistics
path and the LSTM alone ranked them better on the held-out seeds).

Both heads are monotone by construction: the horizon probabilities are 1 - exp(-cumulative
hazard) with non-negative hazard increments (softplus), the quantiles are cumulative sums of
non-negative increments. Training: weighted binary cross-entropy (each horizon's positives
weighted by its negative/positive ratio, at most 50: the class imbalance) plus the pinball loss of
the quantiles of log remaining life; Adam; early stopping on the validation loss; validation on
held-out seeds or assets (above; evaluation on other seeds). Deterministic for a
seed on a machine: torch.manual_seed, deterministic algorithms, one thread unless asked, and one
thread for the native pools scikit-learn and numpy use while training.

Windows are sampled every block within the longest horizon before a failure and elsewhere at
blocks drawn with probability 1/6 (one a day on average, at every hour of the day: a fixed
daily stride let the network tell far windows from near ones by the hour;
:func:`agents.predictors.dataset.windows`); every figure fitted or chosen on them after training (validation PR-AUC and Brier
score, the Platt scaling, the alarm levels, the RUL interval's calibration) weights each window
by the inverse of its sampling rate (:func:`sampling_weights`), so that they hold at the plant's
base rate, where the policy and the evaluation (every block) use them. The validation assets
are drawn per data set (seed), so that they come from more of the fleet's machines.
"""

from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from agents.predictors.dataset import (
    CONTEXT,
    HORIZONS_H,
    MAX_FEATURES,
    QUANTILES,
    RUL_CAP_H,
    TypeSeries,
    Windows,
    gather,
    load_type,
    windows,
)
from twin.errors import ConfigError

FORMAT = "plant-twin-lstm/3"
#: formats :func:`load` reads: 1 has no statistics path (``meta["stats"]`` absent), 2 may have one,
#: 3 may have the normal-behaviour residuals among its inputs (``meta["nbm"]``)
READABLE = ("plant-twin-lstm/1", "plant-twin-lstm/2", FORMAT)
#: a block counts as healthy for the normal-behaviour model when no failure follows within this
#: many hours (the remaining-life cap: the label's "no failure in sight")
HEALTHY_H = RUL_CAP_H
#: the operating context the normal-behaviour model regresses each channel on
NBM_REGRESSORS = ("load", "ambient_c")


@dataclass(frozen=True)
class TrainSettings:
    """Defaults of ``twin predictor train`` (listed once)."""

    hidden: tuple[int, ...] = (128, 64, 32)
    window_h: int = 168
    block_h: int = 4
    max_epochs: int = 30
    patience: int = 4
    batch: int = 256
    lr: float = 1e-3
    stride_blocks: int = 6  # away from failures: one window a day on average, at drawn hours (dataset.windows)
    validation_share: float = 0.2
    #: fleet-data folders held out whole for validation (early stopping, the variant's choice, the
    #: Platt scaling, the alarm level, the RUL calibration); empty: a share of each training
    #: folder's assets (``validation_share``)
    validation_data: tuple[str, ...] = ()
    seed: int = 0
    threads: int = 1
    max_pos_weight: float = 50.0
    #: "stats": the wide path (window statistics beside the LSTM state in the heads); "lstm": the
    #: LSTM state alone; "auto": both, and per type the one with the better validation PR-AUC at 7 days
    variant: str = "lstm"
    #: each channel's residual from its normal-behaviour model among the inputs (:func:`fit_nbm`)
    residuals: bool = True


def _torch():
    """PyTorch, or a ConfigError saying how to install it: it is an optional dependency (the
    ``lstm`` extra), needed only by the LSTM failure predictor and the policies that use it."""
    try:
        import torch
    except ImportError:
        from twin.errors import ConfigError

        raise ConfigError("the LSTM failure predictor needs PyTorch, which is not installed: "
                          "pip install -c constraints.txt -e '.[lstm]' (the README says how to get the "
                          "CPU-only build)") from None
    return torch


def _net(n_features: int, hidden: tuple[int, ...], stats: bool = False):
    """The network: stacked LSTM layers, and with ``stats`` the window statistics of the input
    beside the last layer's final state in the heads (the wide path; its standardisation
    ``stat_mean``, ``stat_std`` are buffers, set from the training windows)."""
    torch = _torch()
    from torch import nn

    n_stats = 4 * n_features if stats else 0

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            sizes = (n_features, *hidden)
            self.layers = nn.ModuleList(nn.LSTM(sizes[k], sizes[k + 1], batch_first=True) for k in range(len(hidden)))
            self.hazard = nn.Linear(hidden[-1] + n_stats, len(HORIZONS_H))
            self.quant = nn.Linear(hidden[-1] + n_stats, len(QUANTILES))
            if n_stats:
                self.register_buffer("stat_mean", torch.zeros(n_stats))
                self.register_buffer("stat_std", torch.ones(n_stats))

        def forward(self, x):
            z = x
            for layer in self.layers:
                z, _ = layer(z)
            h = z[:, -1]
            if n_stats:
                h = torch.cat([h, (torch_window_stats(x) - self.stat_mean) / self.stat_std], dim=1)
            cum_hazard = torch.cumsum(nn.functional.softplus(self.hazard(h)), dim=1)
            q = self.quant(h)
            quant = torch.cumsum(torch.cat([q[:, :1], nn.functional.softplus(q[:, 1:])], dim=1), dim=1)
            return cum_hazard, quant

    return Net()


def torch_window_stats(x):
    """:func:`window_stats` of a tensor (n, steps, features), inside the network."""
    torch = _torch()

    n = x.shape[1]
    t = torch.arange(n, dtype=x.dtype) - (n - 1) / 2
    slope = torch.einsum("s,nsf->nf", t, x) / float((t * t).sum())
    return torch.cat([x[:, -1], x.mean(dim=1), slope, x.std(dim=1, unbiased=False)], dim=1)


@dataclass
class TypeModel:
    """One asset type's trained model: the network and everything needed to use it."""

    meta: dict
    net: object = field(repr=False)

    @property
    def n_steps(self) -> int:
        return self.meta["window_h"] // self.meta["block_h"]

    @property
    def inputs(self) -> list[str]:
        """The network's input features: the readings (``meta["features"]``: channels, then the
        operating context) and, with a normal-behaviour model, each channel's residual."""
        return list(self.meta.get("inputs", self.meta["features"]))

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Standardised network inputs of raw readings (..., features): with the model's
        normal-behaviour residuals appended (:func:`with_residuals`); missing readings 0 (the mean)."""
        if self.meta.get("nbm"):
            x = with_residuals(x, self.meta["features"], self.meta["nbm"])
        z = (x - np.array(self.meta["mean"])) / np.array(self.meta["std"])
        return np.nan_to_num(z, nan=0.0).astype(np.float32)

    def raw_outputs(self, xw: np.ndarray, batch: int = 2048, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """The network's outputs for normalised windows (n, steps, features): P(failure within
        each horizon) (n, horizons) and the remaining-life quantiles in its normalised log scale
        (n, quantiles; 0: no life left, 1: the cap; not clipped), both float32. Runs on
        ``threads`` threads (the caller's setting is restored afterwards): the results do not
        depend on the machine's core count, and small batches run about ten times faster on one
        thread than on two contended ones."""
        torch = _torch()

        if self.net.training:
            self.net.eval()
        probs, quants = [], []
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.no_grad():
                for k in range(0, len(xw), batch):
                    ch, q = self.net(torch.from_numpy(xw[k:k + batch]))
                    probs.append((1 - torch.exp(-ch)).numpy())
                    quants.append(q.numpy())
        finally:
            torch.set_num_threads(before)
        if not probs:
            return np.zeros((0, len(HORIZONS_H)), np.float32), np.zeros((0, len(QUANTILES)), np.float32)
        return np.concatenate(probs), np.concatenate(quants)

    def predict_windows(self, xw: np.ndarray, batch: int = 2048, threads: int = 1,
                        calibrate_rul: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n, horizons) and remaining-life quantiles in hours (n, quantiles) of
        normalised windows (n, steps, features) (see :meth:`raw_outputs`). The outer quantiles
        are moved by the model's conformal RUL calibration where it has one (``calibrate_rul``;
        :func:`_conformal_rul`), the median never."""
        p, q = self.raw_outputs(xw, batch, threads)
        cal = self.meta.get("rul_calibration") if calibrate_rul else None
        if not cal:  # (float32, as the models without calibration always gave it)
            return p.astype(float), np.expm1(q * math.log1p(RUL_CAP_H)).clip(0.0, RUL_CAP_H).astype(float)
        q = apply_rul_calibration(q.astype(float), cal)
        return p.astype(float), np.expm1(q * math.log1p(RUL_CAP_H)).clip(0.0, RUL_CAP_H)  # the cap exactly


def apply_rul_calibration(q: np.ndarray, cal: dict) -> np.ndarray:
    """Quantiles (n, 3) in the network's normalised log scale with the conformal shifts of
    :func:`_conformal_rul` on the outer two (the lower bound at most the median, the upper at
    least it: a narrowed interval never crosses its median); the median is unchanged."""
    q = q.copy()
    mid = q[:, QUANTILES.index(0.5)]
    q[:, 0] = np.minimum(q[:, 0] - cal["lower_shift"], mid)
    q[:, -1] = np.maximum(q[:, -1] + cal["upper_shift"], mid)
    return q


def fit_nbm(series: list, assets: list[np.ndarray], channels: tuple[str, ...]) -> dict:
    """Normal-behaviour model of each channel: ordinary least squares of its block reading on
    the operating context (load and ambient temperature, :data:`NBM_REGRESSORS`, and a constant)
    over healthy blocks of the training assets (in service, no failure within
    :data:`HEALTHY_H`, the remaining life known to be longer where the record ends first).

    Why: a channel's reading moves with the operating point as much as with damage (a pump's
    motor current with its duty, a grid's airflow per diffuser with the air the loops ask for,
    a heat exchanger's pressure drop with its flow), and the damage shows in the part the
    operating point does not explain: the residual of a normal-behaviour model, as in
    condition monitoring from SCADA data (Schlechtingen and Santos 2011, *Mech. Syst. Signal
    Process.* 25(5): 1849-1875; Zaher et al. 2009, *Wind Energy* 12(6): 574-593). A small LSTM
    trained for a few epochs did not learn that difference by itself: it missed a grid's
    membrane tear (a step in airflow per diffuser that varies with load by four times the
    step) that a logistic regression on window statistics, a linear combination of the
    airflow and the load, found. The fit is linear in the context (the reference fleet's
    channels respond linearly to load and ambient temperature; a plant's own channels may
    need more terms) and uses labels only to pick healthy blocks of training assets, as a
    plant picks its reference period after an overhaul. Early damage in a block more than
    :data:`HEALTHY_H` before a failure slightly biases the fit (damage grows from nearly
    nothing; most P-F intervals are longer than 90 days): the residual is then offset, not
    blind. Context that never moved in those blocks is not fitted (coefficient 0, ``fitted``
    lists the others): the plant runs some machines at one load, and a least-squares split of
    the constant between that load and the intercept made a motor run alone at 0.85 load read
    as 240 MOhm of lost insulation, and the policy ordered work on healthy motors again and
    again. At a load the training never saw, the residual carries the reading's whole change."""
    feats = series[0].features
    idx = [feats.index(r) for r in NBM_REGRESSORS]
    rows_x, rows_y = [], []
    for s, a in zip(series, assets):
        x = s.x[a]
        remaining = s.record_end_h - s.t_end_h
        htf = s.htf_h[a]
        healthy = x[s.up[a] & np.where(np.isfinite(htf), htf >= HEALTHY_H, remaining[None, :] >= HEALTHY_H)]
        rows_x.append(healthy[:, idx])
        rows_y.append(healthy[:, :len(channels)])
    ctx = np.concatenate(rows_x)
    y = np.concatenate(rows_y)
    coef = []
    fitted: set[str] = set()
    for c in range(len(channels)):
        ok = np.isfinite(y[:, c]) & np.isfinite(ctx).all(axis=1)
        # only context that moved over these blocks: a constant one (the plant runs its heat
        # exchangers, filters, valves and motors at one load) says nothing of the channel's
        # response to it, and least squares would split the constant between it and the intercept
        moved = [k for k in range(len(idx)) if ok.any() and np.ptp(ctx[ok, k]) > 1e-9 * (1.0 + np.abs(ctx[ok, k]).max())]
        row = [float(np.mean(y[ok, c])) if ok.any() else 0.0] + [0.0] * len(idx)
        if ok.sum() >= len(moved) + 2 and moved:
            A = np.column_stack([np.ones(ok.sum()), ctx[ok][:, moved]])
            sol = np.linalg.lstsq(A, y[ok, c], rcond=None)[0]
            row[0] = float(sol[0])
            for j, k in enumerate(moved):
                row[1 + k] = float(sol[1 + j])
                fitted.add(NBM_REGRESSORS[k])
        coef.append(row)
    return {"regressors": list(NBM_REGRESSORS), "channels": list(channels), "coef": coef,
            "fitted": [r for r in NBM_REGRESSORS if r in fitted], "healthy_h": HEALTHY_H, "blocks": int(len(y))}


def context_range(series: list, assets: list[np.ndarray]) -> dict[str, list[float]]:
    """The operating context the training assets ran in: per context feature (:data:`CONTEXT`),
    the least and greatest block mean over their in-service blocks, as ``[low, high]``. Saved
    with the model (``meta["context_range"]``) so that a policy can tell when an asset runs
    where the model never saw one run (:func:`agents.predictors.policy.outside_context`)."""
    feats = series[0].features
    out = {}
    for f in CONTEXT:
        k = feats.index(f)
        v = np.concatenate([s.x[a][..., k][s.up[a]] for s, a in zip(series, assets)])
        v = v[np.isfinite(v)]
        if v.size:
            out[f] = [float(v.min()), float(v.max())]
    return out


def with_residuals(x: np.ndarray, features, nbm: dict) -> np.ndarray:
    """Readings (..., features) with each channel's residual from its normal-behaviour model
    (:func:`fit_nbm`) appended (NaN where the reading or the context is missing)."""
    features = list(features)
    ctx = np.stack([x[..., features.index(r)] for r in nbm["regressors"]], axis=-1)
    coef = np.asarray(nbm["coef"], dtype=float)  # (channels, 1 + regressors)
    ch = x[..., [features.index(c) for c in nbm["channels"]]]
    expected = coef[:, 0] + ctx @ coef[:, 1:].T
    return np.concatenate([x, ch - expected], axis=-1)


STATS = ("last", "mean", "slope", "sd")


def window_stats(xw: np.ndarray) -> np.ndarray:
    """Statistics of each feature over a window (last value, mean, least-squares slope, sd):
    the inputs of the logistic-regression baseline."""
    n = xw.shape[1]
    t = np.arange(n) - (n - 1) / 2
    slope = np.tensordot(t, xw, axes=([0], [1])) / float(np.sum(t * t))
    return np.concatenate([xw[:, -1], xw.mean(axis=1), slope, xw.std(axis=1)], axis=1)


def _split_assets(n_assets: int, share: float, seed: int, data_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation asset indices of one data set: a share of the assets held out,
    drawn per data set (``data_seed``), so that the validation windows come from more of the
    fleet's machines (their duties and loads differ) than one draw for every seed would give; a
    data set's assets are independent histories, so a machine validated in one seed and trained
    on in another shares its configuration, not its history."""
    rng = np.random.default_rng([seed, data_seed])
    perm = rng.permutation(n_assets)
    n_val = max(1, int(round(share * n_assets))) if n_assets > 1 else 0
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _versions() -> dict:
    import importlib.metadata as md

    torch = _torch()

    out = {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__)}
    for pkg in ("plant-twin", "scikit-learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


VARIANTS = ("auto", "stats", "lstm")


def train_type(folders: list[Path], type_name: str, settings: TrainSettings, log=print) -> TypeModel:
    """Train one asset type's model on the data folders (all their seeds). With ``variant="auto"``
    both architectures are trained (each from the same seed, so each is what its own variant would
    give) and the one with the higher PR-AUC at 7 days on the validation assets is kept; on a tie,
    or where neither has a score (no positives among the validation windows), the LSTM state alone,
    the simpler model. The kept model's ``meta["variant"]`` says which it is and
    ``meta["selection"]`` holds both validation scores."""
    if settings.variant not in VARIANTS:
        raise ConfigError(f"--variant: expected one of {', '.join(VARIANTS)}, got '{settings.variant}'")
    if settings.variant != "auto":
        return _train_variant(folders, type_name, settings, settings.variant == "stats", log)
    candidates = {}
    for variant in ("lstm", "stats"):
        log(f"{type_name}: variant '{variant}'")
        candidates[variant] = _train_variant(folders, type_name, settings, variant == "stats", log)
    scores = {v: m.meta["validation"].get("pr_auc_7d") for v, m in candidates.items()}
    chosen = "stats" if scores["stats"] is not None and (scores["lstm"] is None
                                                          or scores["stats"] > scores["lstm"]) else "lstm"
    model = candidates[chosen]
    model.meta["selection"] = {"rule": "higher validation PR-AUC at 7 days; ties and no score: lstm",
                               "pr_auc_7d": scores,
                               "brier_7d": {v: m.meta["validation"].get("brier_7d") for v, m in candidates.items()}}
    log(f"{type_name}: validation PR-AUC at 7 d: LSTM alone {_fmt(scores['lstm'])}, with statistics "
        f"{_fmt(scores['stats'])}: keeps '{chosen}'")
    return model


def train_types(folders: list[Path], types: list[str], settings: TrainSettings, jobs: int = 1,
                log=print, hidden_by_type: dict[str, tuple[int, ...]] | None = None) -> dict[str, TypeModel]:
    """:func:`train_type` for each asset type, in ``jobs`` processes (one type per process at a
    time, each on ``settings.threads`` threads; spawned, so a worker shares no thread pool with
    its parent). Each type's training depends only on its data, its settings and the seed: the
    models are the same bit for bit whatever ``jobs`` is (tested), and a type trained alone with
    the same settings is the same as in the whole fleet's file. ``hidden_by_type``: layer sizes
    of some types instead of ``settings.hidden`` (each model's ``meta["settings"]`` says which)."""
    from dataclasses import replace

    per_type = {t: replace(settings, hidden=tuple((hidden_by_type or {}).get(t, settings.hidden))) for t in types}
    if jobs <= 1:
        return {t: train_type(folders, t, per_type[t], log) for t in types}
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from agents.predictors.dataset import type_channels
    from twin.fleet.model import load_fleet

    # the types with the most assets (the most windows) first: the longest trainings do not start last
    _, assets = load_fleet(Path(type_channels(folders[0])[1]["fleet_file"]))
    count = {t: sum(a.type == t for a in assets) for t in types}
    with ProcessPoolExecutor(max_workers=min(jobs, len(types)), mp_context=mp.get_context("spawn")) as pool:
        futures = {t: pool.submit(_train_type_blob, [str(f) for f in folders], t, per_type[t])
                   for t in sorted(types, key=lambda t: -count[t])}
        blobs = {t: f.result() for t, f in futures.items()}
    return {t: _from_blob(blobs[t]) for t in types}


def _train_type_blob(folders: list[str], type_name: str, settings: TrainSettings) -> dict:
    """One type's training in a worker process: the model as its file stores it."""
    m = train_type([Path(f) for f in folders], type_name, settings, lambda msg: print(msg, flush=True))
    return {"meta": m.meta, "state": m.net.state_dict()}


def _from_blob(blob: dict) -> TypeModel:
    meta = blob["meta"]
    net = _net(len(meta.get("inputs", meta["features"])), tuple(meta["hidden"]), bool(meta.get("stats")))
    net.load_state_dict(blob["state"])
    return TypeModel(meta, net)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _train_variant(folders: list[Path], type_name: str, settings: TrainSettings, stats: bool, log=print) -> TypeModel:
    """Train one architecture (``stats``: with the wide path) for one asset type. The native
    thread pools (BLAS, OpenMP) run one thread meanwhile: scikit-learn's logistic regressions (the
    wide path's start, the Platt scaling) summed in another order on two threads from one run to
    the next, and on an ill-conditioned type (electric motors) moved the fitted coefficients by
    up to 0.5, so the trained model was not the same for a seed."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _train_variant_1(folders, type_name, settings, stats, log)


def _train_variant_1(folders: list[Path], type_name: str, settings: TrainSettings, stats: bool, log) -> TypeModel:
    torch = _torch()
    from sklearn.linear_model import LogisticRegression

    torch.manual_seed(settings.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(settings.threads)
    if settings.window_h % settings.block_h:
        raise ConfigError(f"--window-h: {settings.window_h} is not a multiple of --block-h {settings.block_h}")
    n_steps = settings.window_h // settings.block_h
    series = [load_type(Path(f), type_name, settings.block_h) for f in folders]
    val_series = [load_type(Path(f), type_name, settings.block_h) for f in settings.validation_data]
    features = series[0].features
    for s, f in zip(series + val_series, list(folders) + list(settings.validation_data)):
        if s.features != features:
            raise ConfigError(f"{f}: type '{type_name}' has other channels than in {folders[0]}")
    train_w: list[tuple[TypeSeries, Windows]] = []
    val_w: list[tuple[TypeSeries, Windows]] = []
    train_assets = []
    def draw(s: TypeSeries, part: int) -> np.random.Generator:  # which blocks away from failures are sampled
        return np.random.default_rng([settings.seed, s.seed, part])

    for s in series:
        if val_series:  # validation on other seeds: every asset of these trains
            tr, va = np.arange(len(s.assets)), None
        else:
            tr, va = _split_assets(len(s.assets), settings.validation_share, settings.seed, s.seed)
            val_w.append((s, windows(s, n_steps, settings.stride_blocks, 1, va, draw(s, 2))))
        train_assets.append(tr)
        train_w.append((s, windows(s, n_steps, settings.stride_blocks, 1, tr, draw(s, 1))))
    for s in val_series:
        val_w.append((s, windows(s, n_steps, settings.stride_blocks, 1, None, draw(s, 2))))
    channels = features[:-len(CONTEXT)]
    nbm = fit_nbm(series, train_assets, channels) if settings.residuals and channels else None
    inputs = list(features) + ([f"{c}_residual" for c in channels] if nbm else [])
    if len(inputs) > MAX_FEATURES:
        raise ConfigError(f"type '{type_name}': {len(inputs)} inputs with the residuals, at most {MAX_FEATURES} "
                          "(--no-residuals)")

    def raw(x):
        return with_residuals(x, features, nbm) if nbm else x

    stacked = np.concatenate([raw(s.x[np.unique(w.asset)]).reshape(-1, len(inputs)) for s, w in train_w])
    mean = np.nanmean(stacked, axis=0)
    std = np.nanstd(stacked, axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    mean = np.nan_to_num(mean)
    meta = {"format": FORMAT, "type": type_name, "features": list(features), "channels": list(channels),
            "horizons_h": list(HORIZONS_H), "quantiles": list(QUANTILES), "rul_cap_h": RUL_CAP_H,
            "window_h": settings.window_h, "block_h": settings.block_h, "hidden": list(settings.hidden),
            "mean": mean.tolist(), "std": std.tolist(), "settings": {k: (list(v) if isinstance(v, tuple) else v)
                                                                    for k, v in asdict(settings).items()},
            "data": [{"folder": str(f), "seed": s.seed, "sha256": s.data_hash} for f, s in zip(folders, series)],
            "validation_data": [{"folder": str(f), "seed": s.seed, "sha256": s.data_hash}
                                for f, s in zip(settings.validation_data, val_series)],
            "seed": settings.seed, "versions": _versions(), "variant": "stats" if stats else "lstm"}
    meta["context_range"] = context_range(series, train_assets)
    if nbm:
        meta["inputs"] = inputs
        meta["nbm"] = nbm
    if stats:
        meta["stats"] = list(STATS)
    model = TypeModel(meta, _net(len(inputs), tuple(settings.hidden), stats))

    def tensors(parts):
        xs = np.concatenate([model.normalise(gather(s.x, w, n_steps)) for s, w in parts])
        y = np.concatenate([w.y for _, w in parts])
        known = np.concatenate([w.known for _, w in parts]).astype(np.float32)
        rul = np.concatenate([w.rul_h for _, w in parts])
        rk = np.concatenate([w.rul_known for _, w in parts]).astype(np.float32)
        target = (np.log1p(np.nan_to_num(rul, posinf=RUL_CAP_H)) / math.log1p(RUL_CAP_H)).astype(np.float32)
        return xs, y, known, target, rk

    xtr, ytr, ktr, rtr, rktr = tensors(train_w)
    xva, yva, kva, rva, rkva = tensors(val_w)
    if len(xtr) == 0 or ytr.sum() == 0:
        raise ConfigError(f"type '{type_name}': no failures in the training data (more years or seeds)")
    st = window_stats(xtr)  # standardisation of the wide path (and of the logistic-regression baseline)
    smean, sstd = st.mean(axis=0), st.std(axis=0)
    sstd = np.where(sstd > 0, sstd, 1.0)
    if stats:
        model.net.stat_mean.copy_(torch.from_numpy(smean.astype(np.float32)))
        model.net.stat_std.copy_(torch.from_numpy(sstd.astype(np.float32)))
    # the logistic-regression baseline on window statistics, fitted on the same training windows
    lr_coef, lr_icpt = [], []
    for h in range(len(HORIZONS_H)):
        m = ktr[:, h] > 0
        yh = ytr[m, h]
        if yh.min() == yh.max():
            lr_coef.append([0.0] * st.shape[1])
            lr_icpt.append(float(np.log(max(yh.mean(), 1e-6) / max(1 - yh.mean(), 1e-6))))
            continue
        clf = LogisticRegression(class_weight="balanced", max_iter=2000, C=1.0)
        clf.fit((st[m] - smean) / sstd, yh)
        lr_coef.append(clf.coef_[0].tolist())
        lr_icpt.append(float(clf.intercept_[0]))
    if stats:  # the wide path starts where the regression ends: each horizon's increment at its logit
        n_h = settings.hidden[-1]
        with torch.no_grad():
            model.net.hazard.weight[:, n_h:] = torch.tensor(lr_coef, dtype=torch.float32)
            model.net.hazard.bias[:] = torch.tensor(lr_icpt, dtype=torch.float32)
    pos = (ytr * ktr).sum(axis=0)
    neg = ((1 - ytr) * ktr).sum(axis=0)
    pos_weight = np.minimum(neg / np.maximum(pos, 1.0), settings.max_pos_weight).astype(np.float32)
    log(f"{type_name}: {len(xtr)} training windows ({int(pos[1])} within 7 d of a failure), {len(xva)} validation, "
        f"{len(inputs)} inputs x {n_steps} steps")
    net = model.net
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    tq = torch.tensor(QUANTILES)
    pw = torch.from_numpy(pos_weight)

    def loss_of(xb, yb, kb, rb, rkb):
        ch, q = net(xb)
        p = (1 - torch.exp(-ch)).clamp(1e-6, 1 - 1e-6)
        bce = -(pw * yb * torch.log(p) + (1 - yb) * torch.log(1 - p))
        lb = (bce * kb).sum() / kb.sum().clamp(min=1.0)
        err = rb[:, None] - q
        pin = torch.maximum(tq * err, (tq - 1) * err).sum(dim=1)
        lq = (pin * rkb).sum() / rkb.sum().clamp(min=1.0)
        return lb + lq

    T = [torch.from_numpy(a) for a in (xtr, ytr, ktr, rtr, rktr)]
    V = [torch.from_numpy(a) for a in (xva, yva, kva, rva, rkva)]
    gen = torch.Generator().manual_seed(settings.seed)
    best, best_state, bad, history = math.inf, None, 0, []
    for epoch in range(settings.max_epochs):
        net.train()
        order = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for k in range(0, len(order), settings.batch):
            idx = order[k:k + settings.batch]
            opt.zero_grad()
            loss = loss_of(*(t[idx] for t in T))
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        net.eval()
        with torch.no_grad():
            val = float(loss_of(*V)) if len(xva) else total / len(xtr)
        history.append({"epoch": epoch + 1, "train_loss": total / len(xtr), "val_loss": val})
        log(f"  epoch {epoch + 1}: train {total / len(xtr):.4f}, validation {val:.4f}")
        if val < best - 1e-6:
            best, bad = val, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= settings.patience:
                break
    net.load_state_dict(best_state)
    meta["history"] = history
    wva = np.concatenate([sampling_weights(w.htf_h, settings.stride_blocks) for _, w in val_w])
    wtr = np.concatenate([sampling_weights(w.htf_h, settings.stride_blocks) for _, w in train_w])
    meta["validation"] = _validation_metrics(model, xva, yva, kva, wva)
    meta["calibration"] = _platt(model, xva, yva, kva, wva)
    meta["rul_calibration"] = _conformal_rul(model, xva, rva, rkva, wva)
    h7 = HORIZONS_H.index(168.0)
    m7 = ktr[:, h7] > 0
    z = ((st - smean) / sstd)[m7] @ np.array(lr_coef[h7]) + lr_icpt[h7]
    meta["logreg"] = {"mean": smean.tolist(), "std": sstd.tolist(), "coef": lr_coef, "intercept": lr_icpt,
                      "alarm_probability": best_f1_threshold(ytr[m7, h7], 1 / (1 + np.exp(-z)), wtr[m7])}
    mv = kva[:, h7] > 0  # the baseline on the validation windows: settings are chosen against it there
    if len(xva) and 0 < yva[mv, h7].sum() < mv.sum():
        from sklearn.metrics import average_precision_score

        zv = ((window_stats(xva) - smean) / sstd)[mv] @ np.array(lr_coef[h7])
        meta["validation"]["logreg_pr_auc_7d"] = float(average_precision_score(yva[mv, h7], zv, sample_weight=wva[mv]))
    return model


def sampling_weights(htf_h: np.ndarray, stride: int) -> np.ndarray:
    """Each training or validation window's weight: the inverse of how often windows of its kind
    were sampled (every block within the longest horizon before a failure, every ``stride``
    blocks elsewhere), so that weighted figures are those of every window, as a plant meets
    them and as the evaluation scores them (every block)."""
    near = np.nan_to_num(htf_h, nan=np.inf) <= HORIZONS_H[-1]
    return np.where(near, 1.0, float(stride))


def _validation_metrics(model: TypeModel, xva, yva, kva, wva) -> dict:
    """PR-AUC, Brier score and the best-F1 alarm level at 7 days on the validation windows,
    weighted by ``wva`` (:func:`sampling_weights`): unweighted, the windows near failures,
    sampled six times as often, would stand for a base rate six times the plant's."""
    from sklearn.metrics import average_precision_score

    if len(xva) == 0:
        return {}
    p, _ = model.predict_windows(xva)
    h = HORIZONS_H.index(168.0)
    m = kva[:, h] > 0
    y, s, w = yva[m, h], p[m, h], wva[m]
    out = {"windows": int(m.sum()), "positives_7d": int(y.sum())}
    if 0 < y.sum() < len(y):
        out["pr_auc_7d"] = float(average_precision_score(y, s, sample_weight=w))
    out["brier_7d"] = float(np.average((s - y) ** 2, weights=w)) if len(y) else None
    out["alarm_probability"] = best_f1_threshold(y, s, w)
    return out


def _platt(model: TypeModel, xva, yva, kva, wva) -> dict | None:
    """Platt scaling of each horizon's probability on the validation assets (a logistic
    regression on the logit, no class weights; the windows weighted by ``wva``, the inverse of
    their sampling rate, so that the calibrated probabilities are those of the plant's base
    rate, not of the oversampled windows near failures): the class weights of training inflate
    the raw probabilities, and a decision by expected cost needs calibrated ones. None without
    both classes in every horizon's validation windows."""
    from sklearn.linear_model import LogisticRegression

    if len(xva) == 0:
        return None
    p, _ = model.predict_windows(xva)
    a, b = [], []
    for h in range(p.shape[1]):
        m = kva[:, h] > 0
        y = yva[m, h]
        if not 0 < y.sum() < len(y):
            return None
        q = np.clip(p[m, h], 1e-6, 1 - 1e-6)
        clf = LogisticRegression(C=1e6, max_iter=2000).fit(np.log(q / (1 - q))[:, None], y, sample_weight=wva[m])
        a.append(float(clf.coef_[0, 0]))
        b.append(float(clf.intercept_[0]))
    return {"method": "platt", "a": a, "b": b}


def _conformal_rul(model: TypeModel, xva, rva, rkva, weights, level: float = 0.8) -> dict | None:
    """Conformalised quantile regression of the remaining-life interval, one shift per side
    (Romano, Patterson and Candes 2019, *Conformalized quantile regression*, NeurIPS, sec. 6):
    on the validation assets' windows before a failure (remaining life below the cap), the
    lower bound's misses q_lo - r and the upper bound's r - q_hi (r the remaining life, all in
    the network's normalised log scale, before clipping to [0 h, cap]) have their (1 + level) / 2 quantiles s_lo and s_hi; the
    interval [q_lo - s_lo, q_hi + s_hi] then misses a new window's remaining life on each side
    with probability (1 - level) / 2 when the windows are exchangeable (a negative shift
    narrows). Windows far from a failure are left out: their remaining life is censored at the
    cap, where the upper quantile sits too, so they would tie at zero and say nothing. The
    pinball loss alone gave a small model intervals far too wide (README). Windows are weighted
    as the training windows were sampled (``weights``: one a day away from failures), so the
    level holds over every block, as the policy and the evaluation use them. None without
    validation windows before a failure."""
    m = (rkva > 0) & (rva < 1.0)
    if not m.any():
        return None
    q = model.raw_outputs(xva[m])[1].astype(float)
    r = rva[m].astype(float)
    w = np.asarray(weights, dtype=float)[m]

    def weighted_quantile(score: np.ndarray, level_side: float) -> float:
        order = np.argsort(score, kind="stable")
        cum = np.cumsum(w[order]) / (w.sum() + 1.0)  # the (n + 1) finite-sample correction, weighted
        return float(score[order][min(int(np.searchsorted(cum, level_side)), len(order) - 1)])

    side = (1.0 + level) / 2.0
    return {"method": "cqr-asymmetric", "level": level, "lower_shift": weighted_quantile(q[:, 0] - r, side),
            "upper_shift": weighted_quantile(r - q[:, -1], side), "windows": int(m.sum())}


def best_f1_threshold(y: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The alarm threshold with the best F1 on the given (validation) windows, each counted with
    its ``weights`` (default 1): class weighting in training shifts the probabilities up, so the
    alarm level is chosen on held-out assets."""
    grid = np.unique(np.quantile(score, np.linspace(0.5, 0.999, 200))) if len(score) else np.array([0.5])
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    pos = float(w[y == 1].sum())
    best, arg = -1.0, 0.5
    for t in grid:
        a = score >= t
        tp = float(w[a & (y == 1)].sum())
        f1 = 2 * tp / (w[a].sum() + pos) if w[a].sum() + pos else 0.0
        if f1 > best:
            best, arg = f1, float(t)
    return arg


def save(models: dict[str, TypeModel], path: Path) -> None:
    torch = _torch()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "models": {t: {"meta": m.meta, "state": m.net.state_dict()} for t, m in models.items()}}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def load(path: Path) -> dict[str, TypeModel]:
    """Read a model file (weights only: no code runs while loading)."""
    torch = _torch()

    path = Path(path)
    import pickle

    try:
        blob = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise ConfigError(f"{path}: not a plant-twin LSTM model file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") not in READABLE:
        found = blob.get("format") if isinstance(blob, dict) else None
        raise ConfigError(f"{path}: not a plant-twin LSTM model file this version reads (format {found!r}; "
                          f"it reads {', '.join(READABLE)})")
    return {t: _from_blob(m) for t, m in blob["models"].items()}


def check_compatible(model: TypeModel, type_name: str, channels: tuple[str, ...], where: str) -> None:
    """A model is used only for the type and channels it was trained on."""
    if model.meta["type"] != type_name:
        raise ConfigError(f"{where}: the model was trained for type '{model.meta['type']}', not '{type_name}'")
    if tuple(model.meta["channels"]) != tuple(channels):
        raise ConfigError(f"{where}: the model for '{type_name}' was trained on channels "
                          f"{', '.join(model.meta['channels'])}; this fleet's type has {', '.join(channels)}")
