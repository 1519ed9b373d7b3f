"""Scores of the LSTM and its baselines on fleet data the model did not see.

Every window ending while an asset is in service (one per block) is scored. Per type and per
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
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from agents.predictors.dataset import HORIZONS_H, QUANTILES, RUL_CAP_H, gather, load_type, windows
from agents.predictors.lstm import TypeModel, check_compatible, load, window_stats

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
        out["interval_coverage"] = float(np.mean((rul_q[rk, 0] <= true) & (true <= rul_q[rk, -1])))
    else:
        out.update(rul_rmse=None, phm08=None, interval_coverage=None)
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


def evaluate(model_path: Path, data: Path, out: Path, log=print) -> dict:
    from agents.predictors.dataset import type_channels

    models: dict[str, TypeModel] = load(model_path)
    types_spec, meta = type_channels(Path(data))
    results: dict = {}
    for tname, model in sorted(models.items()):
        if tname not in types_spec:
            log(f"{tname}: not in the data's fleet, skipped")
            continue
        check_compatible(model, tname, tuple(c.name for c in types_spec[tname].channels), str(model_path))
        trained_on = {d["sha256"] for d in model.meta["data"]}
        ts = load_type(Path(data), tname, model.meta["block_h"])
        if ts.data_hash in trained_on:
            log(f"warning: {data} is one of the model's training sets: the scores are not a test")
        n_steps = model.n_steps
        w = windows(ts, n_steps, 1, 1)
        w.t_end = ts.t_end_h[w.end]
        xw = model.normalise(gather(ts.x, w, n_steps))
        p_lstm, q_lstm = model.predict_windows(xw)
        lr = model.meta["logreg"]
        z = (window_stats(xw) - np.array(lr["mean"])) / np.array(lr["std"])
        p_lr = 1 / (1 + np.exp(-(z @ np.array(lr["coef"][H7]) + lr["intercept"][H7])))
        p_wb, q_wb = _weibull(ts, w, types_spec)
        s_th = _threshold(ts, w, types_spec)
        a_lstm = model.meta["validation"].get("alarm_probability", ALARM_P)
        preds = {"lstm": (p_lstm[:, H7], p_lstm[:, H7] >= a_lstm, p_lstm[:, H7], q_lstm),
                 "logreg": (p_lr, p_lr >= lr.get("alarm_probability", ALARM_P), p_lr, None),
                 "weibull": (p_wb, p_wb >= ALARM_P, p_wb, q_wb),
                 "threshold": (s_th, s_th >= THRESHOLD_SHARE, None, None)}
        y = w.y[:, H7]
        known = w.known[:, H7]
        fails = [(i, float(t)) for i in range(len(ts.assets)) for t in
                 np.unique(w.htf_h[(w.asset == i) & np.isfinite(w.htf_h)] + w.t_end[(w.asset == i) & np.isfinite(w.htf_h)])]
        res_t = {}
        for mode in ["all", *[m.name for m in types_spec[tname].modes]]:
            pos_mode = (y == 1) & ((w.next_mode == mode) if mode != "all" else True)
            sel = known & ((y == 0) | pos_mode)
            mode_fails = [(i, t) for i, t in fails if mode == "all" or
                          np.any((w.asset == i) & np.isclose(w.htf_h + w.t_end, t) & (w.next_mode == mode))]
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
    doc = {"data": {"folder": str(data), "seed": meta.get("seed")},
           "model": str(model_path), "horizon_h": 168.0, "alarm_probability": ALARM_P,
           "metrics": results, "claimed_7d_precision": {"source": claims["source"], "by_type": table}}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=1))
    (out / "summary.json").write_text(json.dumps(doc, indent=1))
    (out / "table.md").write_text(_table(results, table))
    return doc


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
