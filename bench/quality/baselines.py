#!/usr/bin/env python3
"""Reference baselines on a PROTOCOL.md split folder, with standard Python
implementations: popularity, EASE (Steck 2019, dense numpy) and iALS (the `implicit`
package's ALS, the user side recomputed from the fold-in items only). Every setting is
chosen on the validation users (best Recall@20 + NDCG@20, as `localrec eval` chooses),
then the test users are scored once; ranking and metrics follow PROTOCOL.md §3 (every
candidate scored, fold-in items excluded, ties by ascending item id).

    python bench/quality/baselines.py --splits ../shared/datasets/ml-1m/splits --json out.json
"""

import argparse
import csv
import itertools
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

import numpy as np
import scipy.sparse as sp

SEED = 0
EASE_LAMBDAS = [10, 20, 50, 100, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000]
IALS_FACTORS = 128
IALS_REGS = [0.01, 0.1, 1, 10, 30, 100]
IALS_ALPHAS = [0.3, 1, 3, 10, 30]
IALS_ITERATIONS = 15


def read_pairs(path):
    with open(path, encoding="utf-8") as f:
        r = csv.reader(f)
        next(r)
        return [(int(u), int(i)) for u, i in r]


def matrix(pairs, users, col):
    rows = [users[u] for u, i in pairs if i in col]
    cols = [col[i] for u, i in pairs if i in col]
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(col)))


def eval_users(splits, name, col):
    fold = read_pairs(os.path.join(splits, f"{name}_foldin.csv"))
    hold = read_pairs(os.path.join(splits, f"{name}_holdout.csv"))
    users = sorted({u for u, _ in hold})
    index = {u: k for k, u in enumerate(users)}
    x = matrix([p for p in fold if p[0] in index], index, col)
    held = [[] for _ in users]
    for u, i in hold:
        if i in col:
            held[index[u]].append(col[i])
    return x, held


def metrics(scores, x, held):
    """Mean Recall@20, NDCG@20, NDCG@100 of PROTOCOL.md §3 (columns are ascending ids)."""
    scores = np.array(scores, dtype=np.float64)
    scores[x.nonzero()] = -np.inf
    out = np.zeros(3)
    n = 0
    gains = 1.0 / np.log2(np.arange(2, 102))
    for u in range(scores.shape[0]):
        h = set(held[u])
        if not h:
            continue
        # Stable sort on the negated score: ties stay in ascending column (item id) order.
        top = np.argsort(-scores[u], kind="stable")[:100]
        hit = np.array([t in h for t in top], dtype=np.float64)
        recall = hit[:20].sum() / min(20, len(h))
        ndcg = lambda k: (hit[:k] * gains[:k]).sum() / gains[: min(k, len(h))].sum()
        out += (recall, ndcg(20), ndcg(100))
        n += 1
    return out / n


def key(m):
    return m[0] + m[1]


def ease_b(g, lam):
    p = g.copy()
    p[np.diag_indices_from(p)] += lam
    p = np.linalg.inv(p)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b


def ials_scores(model, x):
    """Fold-in of each evaluation user (the exact least-squares user solve), then scores."""
    user_factors = model.recalculate_user(np.arange(x.shape[0]), x)
    return np.asarray(user_factors) @ np.asarray(model.item_factors).T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", required=True)
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--skip-ials", action="store_true")
    args = ap.parse_args()
    train = read_pairs(os.path.join(args.splits, "train.csv"))
    items = sorted({i for _, i in train})
    col = {i: k for k, i in enumerate(items)}
    tusers = {u: k for k, u in enumerate(sorted({u for u, _ in train}))}
    xt = matrix(train, tusers, col)
    val = eval_users(args.splits, "validation", col)
    test = eval_users(args.splits, "test", col)
    report = {"splits": args.splits, "items": len(items), "train_users": len(tusers)}

    def record(name, setting, fn, grid):
        t = time.time()
        curve = []
        best = None
        for s in grid:
            m = metrics(fn(s, val[0]), *val)
            curve.append({"setting": s, "recall@20": m[0], "ndcg@20": m[1], "ndcg@100": m[2]})
            if best is None or key(m) > key(best[1]):
                best = (s, m)
        mt = metrics(fn(best[0], test[0]), *test)
        report[name] = {
            setting: best[0],
            "validation": dict(zip(["recall@20", "ndcg@20", "ndcg@100"], np.round(best[1], 4).tolist())),
            "test": dict(zip(["recall@20", "ndcg@20", "ndcg@100"], np.round(mt, 4).tolist())),
            "grid": curve,
            "seconds": round(time.time() - t, 1),
        }
        print(name, setting, best[0], "validation", np.round(best[1], 4), "test", np.round(mt, 4), flush=True)

    pop = np.asarray(xt.sum(axis=0)).ravel()
    record("popularity", "none", lambda _s, x: np.tile(pop, (x.shape[0], 1)), [None])

    g = (xt.T @ xt).toarray().astype(np.float64)
    cache = {}

    def ease(lam, x):
        if lam not in cache:
            cache[lam] = ease_b(g, lam)
        return x @ cache[lam]

    record("ease", "lambda", ease, EASE_LAMBDAS)

    if not args.skip_ials:
        import implicit
        from threadpoolctl import threadpool_limits

        models = {}

        def ials(setting, x):
            if setting not in models:
                reg, alpha = setting
                m = implicit.cpu.als.AlternatingLeastSquares(
                    factors=IALS_FACTORS, regularization=reg, alpha=alpha, iterations=IALS_ITERATIONS,
                    random_state=SEED, num_threads=2, calculate_training_loss=False)
                with threadpool_limits(1, "blas"):
                    m.fit(xt, show_progress=False)
                models.clear()
                models[setting] = m
            return ials_scores(models[setting], x)

        record("ials", "reg_alpha", ials, list(itertools.product(IALS_REGS, IALS_ALPHAS)))

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
