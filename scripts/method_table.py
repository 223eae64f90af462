#!/usr/bin/env python3
"""The README table of scripts/compare_methods.sh's runs: final validation mIoU and depth
RMSE of each method, and Δm against the single-task runs (Maninis et al. 2019):
Δm = ½ [(mIoU − mIoU_st) / mIoU_st − (RMSE − RMSE_st) / RMSE_st] × 100 %, higher is better.

usage: python3 scripts/method_table.py RUNS   (standard library only)
"""
import json
import sys
from pathlib import Path

ORDER = ["fixed", "uncertainty", "dwa", "rlw", "gls", "ew", "mgda", "mgda_ub", "pcgrad", "imtl", "aligned_mtl", "cagrad",
         "gradvac", "nash_mtl", "db_mtl", "gradnorm", "graddrop"]


def last_val(run):
    path = run / "metrics.jsonl"
    if not path.exists():
        return None, 0.0
    epochs = [r for r in (json.loads(l) for l in path.read_text().splitlines() if l.strip()) if r.get("kind") == "epoch"]
    vals = [r for r in epochs if "val" in r]
    return (vals[-1]["val"] if vals else None), sum(r.get("time_s", 0.0) for r in epochs)


def table(runs, prefix, names, title):
    """Rows of `names` (run folders `prefix + name`) with Δm against `prefix`'s single-task runs."""
    seg, _ = last_val(runs / f"{prefix}single_segm")
    dep, _ = last_val(runs / f"{prefix}single_depth")
    print(f"\n{title}\n")
    print("| method | val mIoU | val depth RMSE (m) | Δm vs single-task |")
    print("|---|---|---|---|")
    if seg and dep:
        print(f"| single-task (segm / depth) | {seg['miou']:.3f} | {dep['rmse']:.3f} | 0 |")
    for name in names:
        v, _ = last_val(runs / f"{prefix}{name}")
        if v is None or not (runs / f"{prefix}{name}" / "final.bpk").exists():
            print(f"| {name} | ({'not finished' if v else 'not run'}) | | |")
            continue
        dm = ""
        if seg and dep:
            dm = f"{50.0 * ((v['miou'] - seg['miou']) / seg['miou'] - (v['rmse'] - dep['rmse']) / dep['rmse']):+.1f} %"
        print(f"| {name.replace('mgda_ub', 'mgda (rep_grad: MGDA-UB)').replace('graddrop', 'graddrop (rep_grad)')} | {v['miou']:.3f} | {v['rmse']:.3f} | {dm} |")


def main():
    runs = Path(sys.argv[1])
    table(runs, "", ORDER, "SGD (the quickstart's optimiser)")
    if (runs / "adam_fixed").exists():
        table(runs, "adam_", ["fixed", "db_mtl"], "Adam, lr 1e-4 for encoder and decoder (DB-MTL's paper and LibMTL use Adam)")


if __name__ == "__main__":
    main()
