#!/usr/bin/python3
"""Train netfeat's link-congestion model with Debian's python3-xgboost.

The model scores one closed window of the `interface_1m` feature view
(docs/inference.md) and predicts the probability that the interface is
congested: a full egress queue dropping traffic under a load of at least
85% of line rate.

Training data (models/README.md): windows.csv, written by

    netfeat demo --scenarios models/training --duration 21m \\
        --training-set models/training/windows.csv

which runs the simulated Nokia, Ericsson and Cisco devices (replaying the
recordings in testdata/) through the real pipeline, following the scripted
episodes in models/training/*.yaml, and labels every window of
interface_1m with what the scenario scripted at its end: `congested` 0/1,
and `incident` naming the episode (congestion, hot, errors, link-down).
Windows in which a congestion episode ended have no label (their 1-minute
aggregates still show the episode, the truth says it is over) and are left
out.
The feature columns come from the feature store, exactly as the runtime
sees them; a column prefix "interface_1m__" (netfeat export) is dropped.

Input features are named exactly as schema.FeatureName builds them
("<metric with dots as underscores>__<agg>_<window>"), so the Go runtime
binds them by name.

Quality is measured by 5-fold cross-validation grouped by interface (no
interface is in both the training and the scoring fold, since neighbouring
windows of one interface overlap), then the shipped model is trained on
every window. Same CSV, same xgboost version: the same model, bit for bit.

Outputs (next to this script unless --out is given):
  congestion.json         XGBoost JSON model (save_model), loaded by inference/xgboost
  congestion.golden.json  inputs and python3-xgboost predictions; the Go tests
                          (inference/xgboost, inference/onnx, inference) check
                          the Go evaluators against them

Run with the Debian interpreter, which has the packages:
  /usr/bin/python3 models/train_congestion.py
"""

import argparse
import csv
import json
import math
import os
import sys
import zlib

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))

FEATURES = [
    "interface_in_utilization__mean_1m",
    "interface_in_utilization__max_1m",
    "interface_out_utilization__mean_1m",
    "interface_out_utilization__max_1m",
    "interface_in_errors_ps__mean_1m",
    "interface_in_errors_ps__max_1m",
    "interface_out_discards_ps__mean_1m",
    "interface_out_discards_ps__max_1m",
]
PREFIX = "interface_1m__"
FOLDS = 5


def load_csv(path):
    """Read labelled windows: features (NaN where NULL), labels, groups, incidents."""
    rows, labels, groups, incidents = [], [], [], []
    skipped = 0
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            rec = {k[len(PREFIX):] if k.startswith(PREFIX) else k: v for k, v in rec.items()}
            missing = [c for c in FEATURES + ["congested"] if c not in rec]
            if missing:
                sys.exit(f"{path}: no column {missing[0]}")
            if rec["congested"] in ("", "NULL"):
                skipped += 1  # ambiguous: the episode ended inside the window
                continue
            rows.append([float(rec[c]) if rec[c] not in ("", "NULL", "nan", "NaN") else math.nan for c in FEATURES])
            labels.append(int(float(rec["congested"])))
            groups.append(rec.get("device", "") + "/" + rec.get("component", ""))
            incidents.append(rec.get("incident", "") or "none")
    if skipped:
        print(f"{path}: left out {skipped} windows without a label (a congestion episode ended inside them)", file=sys.stderr)
    return np.array(rows, dtype=np.float32), np.array(labels, dtype=np.int32), groups, incidents


def auc(y, p):
    """Area under the ROC curve (rank statistic, ties averaged)."""
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sp = p[order]
    i = 0
    while i < len(sp):
        j = i
        while j + 1 < len(sp) and sp[j + 1] == sp[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def train(X, y, args):
    params = {
        "objective": "binary:logistic",
        "max_depth": args.depth,
        "eta": 0.3,
        "eval_metric": "logloss",
        "tree_method": "exact",
        "seed": args.seed,
        "nthread": 1,
    }
    d = xgb.DMatrix(X, label=y, feature_names=FEATURES, missing=np.nan)
    return xgb.train(params, d, num_boost_round=args.trees)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default=os.path.join(HERE, "training", "windows.csv"),
                    help="labelled windows (default: models/training/windows.csv)")
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--trees", type=int, default=40)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    X, y, groups, incidents = load_csv(args.csv)
    if y.sum() == 0 or y.sum() == len(y):
        sys.exit(f"{args.csv}: need congested and uncongested windows, have {y.sum()} of {len(y)} congested")
    fold = np.array([zlib.crc32(g.encode()) % FOLDS for g in groups])
    oof = np.zeros(len(y))
    for k in range(FOLDS):
        test = fold == k
        if test.sum() == 0 or y[~test].sum() == 0:
            continue
        bst = train(X[~test], y[~test], args)
        oof[test] = bst.predict(xgb.DMatrix(X[test], feature_names=FEATURES, missing=np.nan))
    pred = oof >= 0.5
    tp, fp = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    print(f"xgboost {xgb.__version__}: {len(y)} windows of {len(set(groups))} interfaces, {y.sum()} congested", file=sys.stderr)
    print(f"{FOLDS}-fold cross-validation grouped by interface: AUC {auc(y, oof):.4f}, "
          f"at 0.5: precision {tp / max(tp + fp, 1):.3f}, recall {tp / max(tp + fn, 1):.3f} "
          f"(TP {tp}, FP {fp}, FN {fn})", file=sys.stderr)
    for inc in sorted(set(incidents)):
        m = np.array([i == inc for i in incidents])
        print(f"  {inc:22s} {m.sum():6d} windows, {y[m].sum():5d} labelled congested, "
              f"{pred[m].sum():5d} predicted congested", file=sys.stderr)

    bst = train(X, y, args)
    model_path = os.path.join(args.out, "congestion.json")
    bst.save_model(model_path)

    # Golden predictions for the Go evaluators: 200 windows spread over the
    # set (congested ones included), then edge cases. The first two edge
    # rows are the congested and idle vectors of inference/helpers_test.go.
    pick = np.unique(np.concatenate([
        np.linspace(0, len(y) - 1, 150).astype(int),
        np.flatnonzero(y == 1)[np.linspace(0, y.sum() - 1, 50).astype(int)],
    ]))
    edge = np.array([
        [0.1, 0.2, 0.95, 1.0, np.nan, np.nan, 500.0, 2000.0],
        [0.1, 0.2, 0.30, 0.4, np.nan, np.nan, np.nan, np.nan],
        [np.nan] * 8,
        [0.5, np.nan, 0.9, np.nan, 1.0, np.nan, 30.0, np.nan],
        [0.1, 0.2, 0.30, 0.4, 0.0, 0.0, 0.0, 0.0],
    ])
    g = np.vstack([X[pick].astype(np.float64), edge]).astype(np.float32)
    dg = xgb.DMatrix(g, feature_names=FEATURES, missing=np.nan)
    golden = {
        "xgboost_version": xgb.__version__,
        "features": FEATURES,
        "rows": [[None if math.isnan(v) else float(v) for v in r] for r in g.tolist()],
        "margin": bst.predict(dg, output_margin=True).astype(float).tolist(),
        "prediction": bst.predict(dg).astype(float).tolist(),
    }
    with open(os.path.join(args.out, "congestion.golden.json"), "w") as f:
        json.dump(golden, f)
    print(f"wrote {model_path} and congestion.golden.json; edge scores: congested {golden['prediction'][-5]}, "
          f"idle {golden['prediction'][-4]}", file=sys.stderr)


if __name__ == "__main__":
    main()
