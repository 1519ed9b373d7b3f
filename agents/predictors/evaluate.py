"""Scores of the LSTM and its baselines on fleet data the model did not see.

Every window ending while an asset is in service (one per block) is scored; with several data
folders (held-out seeds) the windows of all are pooled into one set of figures. Per type and per
failure mode (and ``all``): positives are windows with a failure of that mode within 7 days,
negatives windows with no failure within 7 days (windows before a failure of another mode are
left out of that mode's scores). An alarm is P(failure within 7 d) at or above the level with the best F1 on the training run's
validation assets (LSTM) or training windows (logistic regression), 0.5 for the Weibull model
(the threshold rule:
a channel's reading past base + 0.4 gain, as the condition policies of the reference scenarios).
Metrics: precision, recall, F1, PR-AUC (average precision), Brier score, RUL RMSE (hours, remaining
life capped at 90 days), the PHM'08 score (mean of exp(-d/13) - 1 for early, exp(d/10) - 1 for
late predictions, d in days; Saxena et al. 2008), coverage of the 10-90 % RUL interval, and the
mean lead time: hours from the first alarm within 30 days before a failure to the failure
(detected failures only). A predictor that gives no probability or no RUL has null there.
The RUL interval's coverage is given over every window with a known remaining life
(``interval_coverage``) and over the windows within 90 days of a failure
(``interval_coverage_before_failure``).

The LSTM's Brier score is that of the probabilities the predictive policy acts on (Platt-scaled
on the training run's validation assets, :func:`agents.predictors.policy.calibrated`; its
PR-AUC and alarms do not depend on the scaling, which is monotone); the logistic regression's
probabilities come from a class-weighted fit and are not rescaled. Besides ``all`` and each
mode, ``with_warning`` pools the modes with a P-F interval (those a sensor can show: the
acceptance's wear-out modes); ``summary`` in ``summary.json`` and the first table of
``table.md`` give, per type, PR-AUC of the LSTM against each baseline on those modes, the
Brier scores and the RUL interval's coverage.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from agents.predictors.dataset import HORIZONS_H, QUANTILES, RUL_CAP_H, Windows, gather, load_type, windows
from agents.predictors.lstm import TypeModel, check_compatible, load, window_stats
from agents.predictors.policy import calibrated
from twin.errors import ConfigError

H7 = HORIZONS_H.index(168.0)
CLAIMS = resources.files("analysis") / "claims.yaml"  # the one file of the specification's claims
ALARM_P = 0.5
THRESHOLD_SHARE = 0.4


def _weibull(ts, w, types_spec) -> tuple[np.ndarray, np.ndarray]:
    """P(failure within 7 d) and RUL quantiles from the fleet file's Weibull initiation models on
    operating hours since each mode's renewal (records), as the WeibullHazardPredictor."""
    t = types_spec[ts.type]
    a = np.stack([ts.mode_run_h[m.name][w.asset, w.end] for m in t.modes], axis=1)
    eta = np.array([m.weibull_scale_h for m in t.modes])
    beta = np.array([m.weibull_shape for m in t.modes])
    h_now = ((a / eta) ** beta).sum(axis=1)
    p = 1 - np.exp(-(((a + 168.0) / eta) ** beta).sum(axis=1) + h_now)
    grid = np.linspace(0, RUL_CAP_H, 181)
    surv = np.exp(-(((a[:, None, :] + grid[None, :, None]) / eta) ** beta).sum(axis=2) + h_now[:, None])
    q = np.stack([np.where((surv <= 1 - qq).any(axis=1), grid[np.argmax(surv <= 1 - qq, axis=1)], RUL_CAP_H)
                  for qq in QUANTILES], axis=1)
    return p, q


def _threshold(ts, w, types_spec) -> np.ndarray:
    """Score of the per-channel threshold rule: the largest (reading - base) / gain over the
    channels that respond to a failure mode (alarm at 0.4)."""
    t = types_spec[ts.type]
    scores = []
    for k, c in enumerate(t.channels):
        if c.modes and c.gain != 0:
            scores.append((ts.x[w.asset, w.end, k] - c.base) / c.gain)
    return np.nan_to_num(np.nanmax(np.stack(scores, axis=1), axis=1), nan=0.0) if scores else np.zeros(len(w.asset))


def _metrics(y, score, alarm, prob, rul_q, w, sel, mode_fail_times) -> dict:
    from sklearn.metrics import average_precision_score

    ys, al = y[sel], alarm[sel]
    tp, fp, fn = int((al & (ys == 1)).sum()), int((al & (ys == 0)).sum()), int((~al & (ys == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else None
    rec = tp / (tp + fn) if tp + fn else None
    out = {"windows": int(sel.sum()), "positives": int(ys.sum()), "precision": prec, "recall": rec,
           "f1": 2 * prec * rec / (prec + rec) if prec and rec else (0.0 if prec is not None and rec is not None else None),
           "pr_auc": float(average_precision_score(ys, score[sel])) if 0 < ys.sum() < len(ys) else None,
           "brier": float(np.mean((prob[sel] - ys) ** 2)) if prob is not None else None}
    rk = sel & w.rul_known
    if rul_q is not None and rk.any():
        true, med = w.rul_h[rk], rul_q[rk, QUANTILES.index(0.5)]
        d = (med - true) / 24.0
        out["rul_rmse"] = float(np.sqrt(np.mean((med - true) ** 2)))
        out["phm08"] = float(np.mean(np.where(d < 0, np.exp(-d / 13.0) - 1, np.exp(d / 10.0) - 1)))
        inside = (rul_q[rk, 0] <= true) & (true <= rul_q[rk, -1])
        out["interval_coverage"] = float(np.mean(inside))
        failing = true < RUL_CAP_H
        out["interval_coverage_before_failure"] = float(np.mean(inside[failing])) if failing.any() else None
        out["interval_width_h"] = float(np.median(rul_q[rk, -1] - rul_q[rk, 0]))
    else:
        out.update(rul_rmse=None, phm08=None, interval_coverage=None, interval_coverage_before_failure=None,
                   interval_width_h=None)
    leads = []
    for a, t_fail in mode_fail_times:  # per failure: first alarm within 30 d before it
        m = (w.asset == a) & (w.htf_h >= 0) & (w.htf_h <= 720.0) & alarm
        m &= np.isclose(w.htf_h + w.t_end, t_fail)
        if m.any():
            leads.append(float(w.htf_h[m].max()))
    out["mean_lead_time_h"] = float(np.mean(leads)) if leads else None
    out["failures"] = len(mode_fail_times)
    out["failures_alarmed"] = len(leads)
    return out


def _pooled(parts: list) -> Windows:
    """Windows of several data folders as one set: the arrays concatenated, asset indices made
    distinct per folder (a folder's assets are other machines, or the same ones in another history)."""
    offset, ws = 0, []
    for ts, w in parts:
        ws.append((w, offset))
        offset += len(ts.assets)
    cat = lambda name: np.concatenate([getattr(w, name) for w, _ in ws])  # noqa: E731
    pooled = Windows(np.concatenate([w.asset + off for w, off in ws]), cat("end"), cat("y"), cat("known"), cat("rul_h"),
                     cat("rul_known"), cat("htf_h"), cat("next_mode"))
    pooled.t_end = cat("t_end")
    return pooled


def evaluate(model_path: Path, data, out: Path, log=print) -> dict:
    """Score the model and its baselines on one held-out fleet-data folder or several (a list):
    several are pooled, every window of every folder scored once, so that rare modes have more
    failures behind each figure than one seed gives (the folders must hold the same fleet)."""
    from agents.predictors.dataset import type_channels

    folders = [Path(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
    models: dict[str, TypeModel] = load(model_path)
    specs = [type_channels(f) for f in folders]
    types_spec = specs[0][0]

    def channels_of(types: dict) -> dict:
        return {t: [c.name for c in v.channels] for t, v in types.items()}

    for f, (other, _) in zip(folders[1:], specs[1:]):
        if channels_of(other) != channels_of(types_spec):
            raise ConfigError(f"--data: {f} holds another fleet than {folders[0]} (asset types or channels differ)")
    results: dict = {}
    for tname, model in sorted(models.items()):
        if tname not in types_spec:
            log(f"{tname}: not in the data's fleet, skipped")
            continue
        check_compatible(model, tname, tuple(c.name for c in types_spec[tname].channels), str(model_path))
        trained_on = {d["sha256"] for d in model.meta["data"] + model.meta.get("validation_data", [])}
        n_steps = model.n_steps
        lr = model.meta["logreg"]
        a_lstm = model.meta["validation"].get("alarm_probability", ALARM_P)
        parts, scores = [], []
        for folder in folders:
            ts = load_type(folder, tname, model.meta["block_h"])
            if ts.data_hash in trained_on:
                log(f"warning: {folder} is one of the model's training or validation sets: the scores are not a test")
            w = windows(ts, n_steps, 1, 1)
            w.t_end = ts.t_end_h[w.end]
            xw = model.normalise(gather(ts.x, w, n_steps))
            p_lstm, q_lstm = model.predict_windows(xw)
            z = (window_stats(xw) - np.array(lr["mean"])) / np.array(lr["std"])
            p_lr = 1 / (1 + np.exp(-(z @ np.array(lr["coef"][H7]) + lr["intercept"][H7])))
            p_wb, q_wb = _weibull(ts, w, types_spec)
            s_th = _threshold(ts, w, types_spec)
            scores.append((p_lstm[:, H7], calibrated(model, p_lstm)[:, H7], q_lstm, p_lr, p_wb, q_wb, s_th))
            parts.append((ts, w))
        w = _pooled(parts)
        p7, p_cal, q_lstm, p_lr, p_wb, q_wb, s_th = (np.concatenate(c) for c in zip(*scores))
        preds = {"lstm": (p7, p7 >= a_lstm, p_cal, q_lstm),
                 "logreg": (p_lr, p_lr >= lr.get("alarm_probability", ALARM_P), p_lr, None),
                 "weibull": (p_wb, p_wb >= ALARM_P, p_wb, q_wb),
                 "threshold": (s_th, s_th >= THRESHOLD_SHARE, None, None)}
        y = w.y[:, H7]
        known = w.known[:, H7]
        n_assets = int(w.asset.max()) + 1 if len(w.asset) else 0
        fails = [(i, float(t)) for i in range(n_assets) for t in
                 np.unique(w.htf_h[(w.asset == i) & np.isfinite(w.htf_h)] + w.t_end[(w.asset == i) & np.isfinite(w.htf_h)])]
        res_t = {}
        groups = {"all": None, **{m.name: (m.name,) for m in types_spec[tname].modes}}
        warned = tuple(m.name for m in types_spec[tname].modes if m.pf_interval_h > 0)
        if warned and len(warned) < len(types_spec[tname].modes):
            groups["with_warning"] = warned
        for mode, members in groups.items():
            of_mode = np.isin(w.next_mode, members) if members else np.ones(len(y), dtype=bool)
            pos_mode = (y == 1) & of_mode
            sel = known & ((y == 0) | pos_mode)
            mode_fails = [(i, t) for i, t in fails if members is None or
                          np.any((w.asset == i) & np.isclose(w.htf_h + w.t_end, t) & of_mode)]
            res_t[mode] = {name: _metrics(y, *v, w, sel, mode_fails) for name, v in preds.items()}
            lost = [b for b in ("logreg", "weibull", "threshold")
                    if (res_t[mode][b]["pr_auc"] or 0) > (res_t[mode]["lstm"]["pr_auc"] or 0)]
            res_t[mode]["lstm_loses_on_pr_auc_to"] = lost
        results[tname] = res_t
    claims = yaml.safe_load(CLAIMS.read_text())
    table = {}
    for tname, c in claims["precision"].items():
        sim = results.get(tname, {}).get("all", {}).get("lstm", {}).get("precision") if tname != "overall" else None
        table[tname] = {"label": c["label"], "claimed": c["claimed"], "simulated_lstm": sim}
    all_tp = all_alarm = 0
    for tname in results:  # overall precision: pooled alarms of every evaluated type
        r = results[tname]["all"]["lstm"]
        if r["precision"] is not None:
            alarms = r["positives"] * (r["recall"] or 0) / r["precision"] if r["precision"] else 0
            all_tp += r["positives"] * (r["recall"] or 0)
            all_alarm += alarms
    table["overall"]["simulated_lstm"] = all_tp / all_alarm if all_alarm else None
    summary = summarise(results)
    data_doc = [{"folder": str(f), "seed": m.get("seed")} for f, (_, m) in zip(folders, specs)]
    doc = {"data": data_doc[0] if len(data_doc) == 1 else data_doc,
           "model": str(model_path), "horizon_h": 168.0, "alarm_probability": ALARM_P,
           "summary": summary, "metrics": results,
           "claimed_7d_precision": {"source": claims["source"], "by_type": table}}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=1))
    (out / "summary.json").write_text(json.dumps(doc, indent=1))
    (out / "table.md").write_text(summary_table(summary) + "\n" + _table(results, table))
    return doc


BASELINES = ("logreg", "weibull", "threshold")


def summarise(results: dict) -> dict:
    """Per type, on the modes a sensor can show (``with_warning``, else ``all``): PR-AUC at 7
    days of the LSTM and of each baseline, whether the LSTM is at least the best baseline,
    Brier scores, and the coverage of the LSTM's 10-90 % RUL interval."""
    out = {}
    for t, modes in results.items():
        group = "with_warning" if "with_warning" in modes else "all"
        r = modes[group]
        base = {b: r[b]["pr_auc"] for b in BASELINES}
        scored = {b: v for b, v in base.items() if v is not None}
        best = max(scored, key=scored.get) if scored else None
        lstm = r["lstm"]
        briers = {b: r[b]["brier"] for b in BASELINES if r[b]["brier"] is not None}
        out[t] = {"modes": group, "windows": lstm["windows"], "positives": lstm["positives"],
                  "pr_auc": {"lstm": lstm["pr_auc"], **base}, "best_baseline": best,
                  "lstm_at_least_best": None if best is None or lstm["pr_auc"] is None
                  else bool(lstm["pr_auc"] >= scored[best]),
                  "brier": {"lstm": lstm["brier"], **briers},
                  "rul_interval_coverage": lstm["interval_coverage"],
                  "rul_interval_coverage_before_failure": lstm["interval_coverage_before_failure"],
                  "rul_interval_width_h": lstm["interval_width_h"]}
    return out


def summary_table(summary: dict) -> str:
    f = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = ["PR-AUC at 7 days on the modes with a P-F interval (held-out data), Brier score (LSTM: as the policy "
             "uses it; best baseline by Brier), coverage of the LSTM's 10-90 % RUL interval (all windows; windows "
             "within 90 days of a failure) and its median width", "",
             "| type | windows | positives | LSTM | logreg | weibull | threshold | LSTM >= best | Brier LSTM | "
             "Brier best baseline | RUL coverage | before failure | width h |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t, r in summary.items():
        pr = r["pr_auc"]
        verdict = "-" if r["lstm_at_least_best"] is None else ("yes" if r["lstm_at_least_best"]
                                                                else f"no ({r['best_baseline']})")
        others = {b: v for b, v in r["brier"].items() if b != "lstm"}
        best_brier = min(others.values()) if others else None
        best_name = min(others, key=others.get) if others else ""
        lines.append(f"| {t} | {r['windows']} | {r['positives']} | {f(pr['lstm'])} | {f(pr['logreg'])} | "
                     f"{f(pr['weibull'])} | {f(pr['threshold'])} | {verdict} | {f(r['brier']['lstm'])} | "
                     f"{f(best_brier)} {best_name} | {f(r['rul_interval_coverage'], 2)} | "
                     f"{f(r['rul_interval_coverage_before_failure'], 2)} | {f(r['rul_interval_width_h'], 0)} |")
    return "\n".join(lines) + "\n"


def _table(results: dict, claims: dict) -> str:
    lines = ["| type | mode | predictor | precision | recall | F1 | PR-AUC | Brier | RUL RMSE h | coverage | lead h |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    for t, modes in results.items():
        for m, preds in modes.items():
            for p, r in preds.items():
                if p == "lstm_loses_on_pr_auc_to":
                    continue
                lose = " (LSTM loses on PR-AUC to " + ", ".join(preds["lstm_loses_on_pr_auc_to"]) + ")" \
                    if p == "lstm" and preds["lstm_loses_on_pr_auc_to"] else ""
                lines.append(f"| {t} | {m} | {p}{lose} | {f(r['precision'])} | {f(r['recall'])} | {f(r['f1'])} | "
                             f"{f(r['pr_auc'])} | {f(r['brier'])} | {f(r['rul_rmse'], 0)} | {f(r['interval_coverage'], 2)} | "
                             f"{f(r['mean_lead_time_h'], 0)} |")
    lines += ["", "7-day precision: claimed (plant specification) against simulated (LSTM)", "",
              "| | claimed | simulated |", "|---|---|---|"]
    for c in claims.values():
        lines.append(f"| {c['label']} | {c['claimed']:.3f} (claimed) | {f(c['simulated_lstm'])} |")
    return "\n".join(lines) + "\n"
