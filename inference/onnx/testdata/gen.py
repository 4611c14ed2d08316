#!/usr/bin/python3
"""Make the ONNX test models of inference/onnx with Debian's python3-onnx.

congestion.onnx: models/congestion.json (XGBoost) rewritten as an ai.onnx.ml
  TreeEnsembleRegressor (BRANCH_LT, missing values follow default_left,
  LOGISTIC post-transform, base value = logit(base_score)). The Go test
  compares it with python3-xgboost's predictions in
  models/congestion.golden.json.
modes.onnx: a hand-made ensemble using every branch mode, AVERAGE, shuffled
  node ids and a base value; modes.golden.json holds the outputs of the
  small reference evaluator below for random inputs with missing values.
mlp.onnx: a scikit-learn pipeline (mean imputer, standard scaler, a
  multilayer perceptron of 16 and 8 ReLU units) trained with Debian's
  python3-sklearn on models/training/windows.csv to predict congestion,
  written out by hand as Imputer, Sub, Div, Gemm, Relu, MatMul, Add and
  Sigmoid nodes; mlp.golden.json holds scikit-learn's own predict_proba on
  300 windows, 15% of their values blanked as missing.

  /usr/bin/python3 inference/onnx/testdata/gen.py
"""
import json, math, os, random
import onnx
from onnx import helper, TensorProto

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..", "..", "..")


def model(attrs, nfeat, names=None):
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph(
        [node], "trees",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, nfeat])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                          producer_name="netfeat gen.py")
    if names:
        helper.set_model_props(m, {"feature_names": ",".join(names)})
    onnx.checker.check_model(m)
    return m


# 1. congestion.json -> ONNX
x = json.load(open(os.path.join(root, "models", "congestion.json")))
l = x["learner"]
base = float(l["learner_model_param"]["base_score"])
A = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                     "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                     "target_treeids", "target_nodeids", "target_ids", "target_weights"]}
for t, tr in enumerate(l["gradient_booster"]["model"]["trees"]):
    for i, left in enumerate(tr["left_children"]):
        A["nodes_treeids"].append(t)
        A["nodes_nodeids"].append(i)
        if left == -1:
            A["nodes_featureids"].append(0); A["nodes_values"].append(0.0); A["nodes_modes"].append("LEAF")
            A["nodes_truenodeids"].append(0); A["nodes_falsenodeids"].append(0)
            A["nodes_missing_value_tracks_true"].append(0)
            A["target_treeids"].append(t); A["target_nodeids"].append(i); A["target_ids"].append(0)
            A["target_weights"].append(tr["split_conditions"][i])
        else:
            A["nodes_featureids"].append(tr["split_indices"][i]); A["nodes_values"].append(tr["split_conditions"][i])
            A["nodes_modes"].append("BRANCH_LT")
            A["nodes_truenodeids"].append(left); A["nodes_falsenodeids"].append(tr["right_children"][i])
            A["nodes_missing_value_tracks_true"].append(tr["default_left"][i])
A.update(n_targets=1, aggregate_function="SUM", post_transform="LOGISTIC", base_values=[-math.log(1 / base - 1)])
onnx.save(model(A, 8, l["feature_names"]), os.path.join(here, "congestion.onnx"))

# 2. every mode, AVERAGE, shuffled ids
rng = random.Random(3)
modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
trees = []
for t in range(6):
    # a full tree of depth 3: ids 0..14 shuffled, 7 branches, 8 leaves
    ids = list(range(15)); rng.shuffle(ids)
    nodes = {}
    for k in range(15):
        if k < 7:
            nodes[ids[k]] = dict(mode=modes[(t + k) % 6], feat=rng.randrange(4), val=float(rng.choice([0, 1, 2, -1, 0.5])),
                                 true=ids[2 * k + 1], false=ids[2 * k + 2], miss=rng.randrange(2))
        else:
            nodes[ids[k]] = dict(mode="LEAF", w=round(rng.uniform(-2, 2), 3))
    trees.append(nodes)
B = {k: [] for k in A if k.startswith("nodes_") or k.startswith("target_")}
for t, nodes in enumerate(trees):
    for nid in sorted(nodes, reverse=True):
        n = nodes[nid]
        B["nodes_treeids"].append(t); B["nodes_nodeids"].append(nid); B["nodes_modes"].append(n["mode"])
        if n["mode"] == "LEAF":
            for k, v in [("nodes_featureids", 0), ("nodes_values", 0.0), ("nodes_truenodeids", 0),
                         ("nodes_falsenodeids", 0), ("nodes_missing_value_tracks_true", 0)]:
                B[k].append(v)
            B["target_treeids"].append(t); B["target_nodeids"].append(nid); B["target_ids"].append(0)
            B["target_weights"].append(n["w"])
        else:
            B["nodes_featureids"].append(n["feat"]); B["nodes_values"].append(n["val"])
            B["nodes_truenodeids"].append(n["true"]); B["nodes_falsenodeids"].append(n["false"])
            B["nodes_missing_value_tracks_true"].append(n["miss"])
B.update(n_targets=1, aggregate_function="AVERAGE", post_transform="NONE", base_values=[0.25])
onnx.save(model(B, 4), os.path.join(here, "modes.onnx"))


def ref(x):
    s = 0.0
    for nodes in trees:
        nid = [k for k in nodes if all(k not in (m.get("true"), m.get("false")) for m in nodes.values())][0]
        while nodes[nid]["mode"] != "LEAF":
            n = nodes[nid]
            v = x[n["feat"]]
            if v is None:
                go = n["miss"] == 1
            else:
                th = n["val"]
                go = {"BRANCH_LEQ": v <= th, "BRANCH_LT": v < th, "BRANCH_GTE": v >= th, "BRANCH_GT": v > th,
                      "BRANCH_EQ": v == th, "BRANCH_NEQ": v != th}[n["mode"]]
            nid = n["true"] if go else n["false"]
        s += nodes[nid]["w"]
    return s / len(trees) + 0.25


rows = [[None if rng.random() < 0.15 else rng.choice([0, 1, 2, -1, 0.5, rng.uniform(-2, 3)]) for _ in range(4)] for _ in range(300)]
json.dump({"rows": rows, "prediction": [ref(r) for r in rows]}, open(os.path.join(here, "modes.golden.json"), "w"))

# 3. a scikit-learn MLP pipeline, exported by hand
import sys
import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from onnx import numpy_helper

sys.path.insert(0, os.path.join(root, "models"))
from train_congestion import FEATURES, load_csv  # noqa: E402

X, y, _, _ = load_csv(os.path.join(root, "models", "training", "windows.csv"))
X = X.astype(np.float64)
pipe = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(),
                     MLPClassifier(hidden_layer_sizes=(16, 8), activation="relu", max_iter=400, random_state=7))
pipe.fit(X, y)
imp, sc, mlp = pipe.steps[0][1], pipe.steps[1][1], pipe.steps[2][1]
W1, W2, W3 = mlp.coefs_
b1, b2, b3 = mlp.intercepts_


def init(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


nodes = [
    helper.make_node("Imputer", ["X"], ["imputed"], domain="ai.onnx.ml",
                     imputed_value_floats=[float(v) for v in imp.statistics_], replaced_value_float=float("nan")),
    helper.make_node("Sub", ["imputed", "mean"], ["centred"]),             # [N,8] - [8]
    helper.make_node("Div", ["centred", "std"], ["scaled"]),               # [N,8] / [1,8]
    helper.make_node("Gemm", ["scaled", "W1t", "b1"], ["h1"], transB=1),   # W1 stored [16,8]
    helper.make_node("Relu", ["h1"], ["a1"]),
    helper.make_node("MatMul", ["a1", "W2"], ["m2"]),
    helper.make_node("Add", ["m2", "b2"], ["h2"]),
    helper.make_node("Relu", ["h2"], ["a2"]),
    helper.make_node("Gemm", ["a2", "W3", "b3"], ["logit"]),
    helper.make_node("Sigmoid", ["logit"], ["Y"]),
]
graph = helper.make_graph(
    nodes, "congestion_mlp",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, len(FEATURES)])],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
    [init("mean", sc.mean_), init("std", sc.scale_.reshape(1, -1)), init("W1t", W1.T), init("b1", b1),
     init("W2", W2), init("b2", b2), init("W3", W3), init("b3", b3)])
m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                      producer_name="netfeat gen.py")
helper.set_model_props(m, {"feature_names": ",".join(FEATURES)})
onnx.checker.check_model(m)
onnx.save(m, os.path.join(here, "mlp.onnx"))

rs = np.random.RandomState(11)
idx = rs.choice(len(X), 300, replace=False)
# Half of them congested, so that the scores spread over (0, 1).
pos, neg = np.where(y == 1)[0], np.where(y == 0)[0]
idx = np.concatenate([rs.choice(pos, 150, replace=False), rs.choice(neg, 150, replace=False)])
G = X[idx].copy()
G[rs.random_sample(G.shape) < 0.15] = np.nan
p = pipe.predict_proba(G)[:, 1]
rows = [[None if math.isnan(v) else float(v) for v in r] for r in G]
json.dump({"features": FEATURES, "rows": rows, "prediction": [float(v) for v in p]},
          open(os.path.join(here, "mlp.golden.json"), "w"))
print("mlp: training accuracy %.3f" % pipe.score(X, y))
print("ok")
