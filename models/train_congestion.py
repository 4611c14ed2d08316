#!/usr/bin/python3
"""Train netfeat's link-congestion model with Debian's python3-xgboost.

The model scores one closed window of the `interface_1m` feature view
(docs/inference.md) and predicts the probability that the interface is
congested: its egress queue is full and drops traffic.

Input features are named exactly as schema.FeatureName builds them
("<metric with dots as underscores>__<agg>_<window>"), in the view's
FeatureNames order, so the Go runtime binds them by name.

Training data:
  * default: synthetic windows drawn from the generative link model below
    (seeded, so a retrain reproduces the shipped file bit for bit with the
    same xgboost version);
  * --csv FILE: real windows exported with
        netfeat query --format csv \
          "SELECT * FROM interface_1m" > windows.csv
    plus a `congested` column (0/1) that you label yourself.

Outputs (next to this script unless --out is given):
  congestion.json         XGBoost JSON model (save_model), loaded by inference/xgboost
  congestion.golden.json  inputs and python3-xgboost predictions; the Go test
                          inference/xgboost checks the Go evaluator against them

Run with the Debian interpreter, which has the packages:
  /usr/bin/python3 models/train_congestion.py
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import xgboost as xgb

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


def synthesize(n, rng):
    """Draw n windows of a link and label congestion.

    A link carries a base load; bursts raise egress utilisation towards line
    rate. Congestion is a full egress queue: high sustained egress load with
    output discards, or a saturated peak with a burst of discards. Input
    errors indicate a physical fault, not congestion, and are noise here.
    """
    base = rng.beta(2.0, 3.0, n)  # typical load 0..1, mean 0.4
    burst = rng.random(n) < 0.25
    out_mean = np.clip(base + burst * rng.uniform(0.1, 0.6, n), 0, 1)
    out_max = np.clip(out_mean + rng.exponential(0.05, n) + burst * rng.uniform(0, 0.3, n), 0, 1)
    in_mean = np.clip(rng.beta(2.0, 3.0, n) * 0.9, 0, 1)
    in_max = np.clip(in_mean + rng.exponential(0.05, n), 0, 1)
    fault = rng.random(n) < 0.05
    in_err_mean = fault * rng.exponential(50.0, n) + rng.exponential(0.05, n)
    in_err_max = in_err_mean * rng.uniform(1.0, 3.0, n)
    # queue pressure grows steeply above ~85% utilisation
    pressure = 1.0 / (1.0 + np.exp(-(out_mean - 0.85) * 30)) + 0.5 * (out_max > 0.97)
    disc_mean = pressure * rng.exponential(200.0, n) + rng.exponential(0.2, n)
    disc_max = disc_mean * rng.uniform(1.0, 4.0, n)
    congested = ((out_mean > 0.85) & (disc_mean > 20)) | ((out_max > 0.97) & (disc_max > 200))
    # 2% label noise: operators mislabel
    flip = rng.random(n) < 0.02
    congested = np.where(flip, ~congested, congested)
    X = np.column_stack([in_mean, in_max, out_mean, out_max, in_err_mean, in_err_max, disc_mean, disc_max])
    # windows with missing data (NaN), as the window engine emits them
    holes = rng.random(X.shape) < 0.02
    X = np.where(holes, np.nan, X)
    return X.astype(np.float32), congested.astype(np.int32)


def load_csv(path):
    import csv
    rows, labels = [], []
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            rows.append([float(rec[c]) if rec[c] not in ("", "NULL", "nan", "NaN") else math.nan for c in FEATURES])
            labels.append(int(float(rec["congested"])))
    return np.array(rows, dtype=np.float32), np.array(labels, dtype=np.int32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", help="train on exported windows with a congested column")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--trees", type=int, default=40)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    if args.csv:
        X, y = load_csv(args.csv)
    else:
        X, y = synthesize(args.rows, rng)
    split = int(len(y) * 0.8)
    dtrain = xgb.DMatrix(X[:split], label=y[:split], feature_names=FEATURES, missing=np.nan)
    dtest = xgb.DMatrix(X[split:], label=y[split:], feature_names=FEATURES, missing=np.nan)
    params = {
        "objective": "binary:logistic",
        "max_depth": args.depth,
        "eta": 0.3,
        "eval_metric": ["logloss", "auc"],
        "tree_method": "exact",
        "seed": args.seed,
        "nthread": 1,
    }
    bst = xgb.train(params, dtrain, num_boost_round=args.trees, evals=[(dtest, "test")], verbose_eval=False)
    res = bst.eval(dtest)
    print(f"xgboost {xgb.__version__}: {len(y)} windows, {y.mean():.3f} congested; held-out {res}", file=sys.stderr)

    model_path = os.path.join(args.out, "congestion.json")
    bst.save_model(model_path)

    # Golden predictions for the Go evaluator: held-out rows plus edge cases.
    g = X[split:split + 200].astype(np.float64)
    edge = np.array([
        [0.1, 0.2, 0.95, 1.0, 0.0, 0.0, 500.0, 2000.0],
        [0.1, 0.2, 0.30, 0.4, 0.0, 0.0, 0.0, 0.0],
        [np.nan] * 8,
        [0.5, np.nan, 0.9, np.nan, 1.0, np.nan, 30.0, np.nan],
    ])
    g = np.vstack([g, edge]).astype(np.float32)
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
    print(f"wrote {model_path} and congestion.golden.json", file=sys.stderr)


if __name__ == "__main__":
    main()
