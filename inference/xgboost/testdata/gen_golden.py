#!/usr/bin/python3
"""Make the golden files of the Go XGBoost evaluator's tests.

For each objective the evaluator supports, train a small model with Debian's
python3-xgboost on seeded random data with missing values, save it as JSON
and record python3-xgboost's predictions for held-out inputs.

  /usr/bin/python3 inference/xgboost/testdata/gen_golden.py
"""
import json, math, os
import numpy as np
import xgboost as xgb

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(42)
n, k = 3000, 5
X = rng.normal(size=(n, k)).astype(np.float32)
X[rng.random(X.shape) < 0.1] = np.nan
z = np.nan_to_num(X[:, 0]) * 2 - np.nan_to_num(X[:, 1]) ** 2 + np.nan_to_num(X[:, 2] * X[:, 3])
cases = {
    "binary_logistic": ({"objective": "binary:logistic", "max_depth": 6, "base_score": 0.3}, (z > 0).astype(int)),
    "binary_logitraw": ({"objective": "binary:logitraw", "max_depth": 3}, (z > 0.5).astype(int)),
    "reg_squarederror": ({"objective": "reg:squarederror", "max_depth": 5}, z + rng.normal(scale=0.1, size=n)),
}
for name, (params, y) in cases.items():
    params.update({"eta": 0.2, "tree_method": "hist", "seed": 1, "nthread": 1})
    d = xgb.DMatrix(X[:2500], label=y[:2500], missing=np.nan)
    bst = xgb.train(params, d, num_boost_round=30)
    bst.save_model(os.path.join(here, name + ".json"))
    T = X[2500:2700]
    dt = xgb.DMatrix(T, missing=np.nan)
    json.dump({
        "xgboost_version": xgb.__version__,
        "rows": [[None if math.isnan(v) else float(v) for v in r] for r in T.tolist()],
        "margin": bst.predict(dt, output_margin=True).astype(float).tolist(),
        "prediction": bst.predict(dt).astype(float).tolist(),
    }, open(os.path.join(here, name + ".golden.json"), "w"))
    print(name, "ok")
