#!/usr/bin/env python3
"""The strong-generalization and cold-item split of ML-1M's PROTOCOL.md, for any
MovieLens ratings file (ML-1M `ratings.dat`/`ratings_pos.dat.gz`, or `ratings.csv`
of ml-latest-small), with the protocol's seeds.

The procedure is PROTOCOL.md's, step for step (binarize at rating >= 4, keep users with
>= 5 positives, one seeded permutation of the kept users, the fold-in/held-out draw
continuing the same generator, the cold items from a second generator). Only the number
of validation and test users is a parameter: ML-1M's 600 + 600 of 6,034 users would
leave nothing to train on in a 610-user log. Run on ML-1M with `--users 600` it
reproduces the shared split files byte for byte (`--check DIR` compares). `--seed`
replaces the partition's seed, for other draws of the same log (`make eval-resplits`).

    python bench/quality/split.py --ratings data/ml-latest-small/ratings.csv.gz \
        --users 100 --out target/ml-latest-small-splits
"""

import argparse
import gzip
import json
import os
import sys

import numpy as np

SPLIT_SEED = 98765
COLD_SEED = 13579


def read_positives(path):
    """(user, item) pairs rated >= 4, from `u::i::r::t` lines or a CSV with a header."""
    opener = gzip.open if path.endswith(".gz") else open
    pairs = set()
    with opener(path, "rt", encoding="utf-8") as f:
        first = True
        for line in f:
            line = line.strip()
            if not line:
                continue
            if "::" in line:
                u, i, r = line.split("::")[:3]
            else:
                if first and not line[0].isdigit():
                    first = False
                    continue
                u, i, r = line.split(",")[:3]
            first = False
            if float(r) >= 4:
                pairs.add((int(u), int(i)))
    return pairs


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("user_id,item_id\n")
        for u, i in sorted(rows):
            f.write(f"{u},{i}\n")


def split(positives, users_each, seed=SPLIT_SEED):
    by_user = {}
    for u, i in positives:
        by_user.setdefault(u, []).append(i)
    kept = sorted(u for u, items in by_user.items() if len(items) >= 5)
    kept_pos = {(u, i) for u in kept for i in by_user[u]}
    rng = np.random.default_rng(seed)
    perm = rng.permutation(np.array(kept))
    validation = sorted(int(u) for u in perm[:users_each])
    test = sorted(int(u) for u in perm[users_each : 2 * users_each])
    held = set(validation) | set(test)
    train = [(u, i) for (u, i) in kept_pos if u not in held]
    candidates = {i for _, i in train}
    out = {"train": train}
    dropped = {}
    for name, users in (("validation", validation), ("test", test)):
        fold, hold = [], []
        dropped[name] = 0
        for u in users:
            items = sorted(i for i in by_user[u] if i in candidates)
            n = len(items)
            if n < 2:
                dropped[name] += 1
                continue
            n_hold = max(1, int(np.floor(0.2 * n)))
            picked = set(int(p) for p in rng.choice(n, n_hold, replace=False))
            for p, i in enumerate(items):
                (hold if p in picked else fold).append((u, i))
        out[f"{name}_foldin"], out[f"{name}_holdout"] = fold, hold

    counts = {}
    for _, i in kept_pos:
        counts[i] = counts.get(i, 0) + 1
    cold_candidates = sorted(i for i, c in counts.items() if c >= 5)
    crng = np.random.default_rng(COLD_SEED)
    size = int(round(0.1 * len(cold_candidates)))
    cold = sorted(int(i) for i in crng.choice(np.array(cold_candidates), size=size, replace=False))
    cold_set = set(cold)
    out["cold_train"] = [(u, i) for (u, i) in train if i not in cold_set]
    test_set = set(test)
    c_fold = [(u, i) for (u, i) in out["test_foldin"] if i not in cold_set]
    c_hold = [(u, i) for (u, i) in kept_pos if u in test_set and i in cold_set]
    both = {u for u, _ in c_fold} & {u for u, _ in c_hold}
    out["cold_test_foldin"] = [r for r in c_fold if r[0] in both]
    out["cold_test_holdout"] = [r for r in c_hold if r[0] in both]

    stats = {
        "positives_total": len(positives),
        "users_kept": len(kept),
        "positives_kept": len(kept_pos),
        "train_users": len(kept) - len(held),
        "train_interactions": len(train),
        "train_items": len(candidates),
        "validation_users": len(validation) - dropped["validation"],
        "test_users": len(test) - dropped["test"],
        "cold_items": len(cold),
        "cold_test_users": len(both),
        "seeds": {"split": seed, "cold": COLD_SEED},
    }
    for name in ("validation_foldin", "validation_holdout", "test_foldin", "test_holdout",
                 "cold_train", "cold_test_foldin", "cold_test_holdout"):
        stats[f"{name}_interactions"] = len(out[name])
    return out, cold, stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratings", required=True)
    ap.add_argument("--users", type=int, required=True, help="validation users, and as many test users")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=SPLIT_SEED,
                    help="the user partition's and fold-in draw's seed (default the protocol's); "
                         "other seeds give re-drawn splits of the same log, to see how much a "
                         "margin measured on a few users moves")
    ap.add_argument("--check", help="a folder of split files this split must equal")
    args = ap.parse_args()
    out, cold, stats = split(read_positives(args.ratings), args.users, args.seed)
    os.makedirs(args.out, exist_ok=True)
    for name, rows in out.items():
        write_csv(os.path.join(args.out, f"{name}.csv"), rows)
    with open(os.path.join(args.out, "cold_items.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{i}\n" for i in cold))
    with open(os.path.join(args.out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps(stats))
    if args.check:
        names = [f"{n}.csv" for n in out] + ["cold_items.txt"]
        differ = [n for n in names
                  if open(os.path.join(args.out, n), "rb").read() != open(os.path.join(args.check, n), "rb").read()]
        if differ:
            sys.exit(f"differs from {args.check}: {', '.join(differ)}")
        print(f"identical to {args.check}: {', '.join(names)}")


if __name__ == "__main__":
    main()
