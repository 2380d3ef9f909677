#!/usr/bin/env python3
"""The hybrid's margins over the tuned EASE in several `localrec eval --json` reports,
one per split of the same log (`split.py --seed`), per split and over all of them.

Every split holds as many validation and as many test users, so the mean of the splits'
means is the mean over all their users. A margin is `hybrid / ease - 1` of those means.

    python3 bench/quality/margins.py bench-results/eval-ml-latest-small*.json
"""

import argparse
import json
import statistics

METRICS = ("recall@20", "ndcg@20", "ndcg@100")


def margin(hybrid, ease):
    return hybrid / ease - 1 if ease else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reports", nargs="+", help="`localrec eval --json` outputs")
    args = ap.parse_args()
    reports = []
    for path in args.reports:
        with open(path, encoding="utf-8") as f:
            reports.append((path, json.load(f)))
    print("| split | part | " + " | ".join(f"hybrid / EASE {m}" for m in METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    for part in ("validation", "test"):
        for path, r in reports:
            cells = [f"{r[part]['hybrid'][m]:.4f} / {r[part]['ease'][m]:.4f} ({margin(r[part]['hybrid'][m], r[part]['ease'][m]):+.1%})"
                     for m in METRICS]
            print(f"| {path} | {part} | " + " | ".join(cells) + " |")
        cells = []
        for m in METRICS:
            h = statistics.fmean(r[part]["hybrid"][m] for _, r in reports)
            e = statistics.fmean(r[part]["ease"][m] for _, r in reports)
            per = [margin(r[part]["hybrid"][m], r[part]["ease"][m]) for _, r in reports]
            spread = statistics.stdev(per) / len(per) ** 0.5 if len(per) > 1 else float("nan")
            cells.append(f"{h:.4f} / {e:.4f} ({margin(h, e):+.1%}, splits' s.e. {spread:.1%})")
        print(f"| all {len(reports)} | {part} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
