#!/usr/bin/env python3
"""Make fixtures/mtl/libmtl.json: what LibMTL's own multi-task methods return on fixed
per-task gradients and losses.

usage: ~/.venvs/hydra-ref/bin/python scripts/make_mtl_fixture.py --libmtl PATH
  PATH: a checkout of github.com/median-research-group/LibMTL at commit 4336804 (the methods
  are read from PATH/LibMTL/weighting; the package's __init__, which needs an old
  torchvision, is not run). Needs torch, numpy, scipy (CAGrad).

Each case: a gradient matrix G [T, P] (seeded, float64) and losses [T]; each method's class
runs its `backward` with its gradient computation replaced by G (the harness below), and the
file records the gradient it leaves on the shared parameters and the weights it returns.
PCGrad's random task orders are recorded as drawn. CAGrad is also run with its SLSQP
solve at ftol 1e-15 (`*_tight`): at SciPy's default tolerance LibMTL's minimiser is up to a
few 1e-4 off the true one. Everything runs in float64
(torch.set_default_dtype), so the figures are LibMTL's arithmetic without float32 rounding.
"""
import argparse
import importlib
import json
import random
import sys
import types
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "mtl" / "libmtl.json"


def load_methods(libmtl):
    pkg = types.ModuleType("LibMTL")
    pkg.__path__ = [str(Path(libmtl) / "LibMTL")]
    sub = types.ModuleType("LibMTL.weighting")
    sub.__path__ = [str(Path(libmtl) / "LibMTL" / "weighting")]
    sys.modules["LibMTL"], sys.modules["LibMTL.weighting"] = pkg, sub
    return lambda name: getattr(importlib.import_module(f"LibMTL.weighting.{name}"), name)


def harness(cls, G, losses):
    """An instance of LibMTL's method class whose shared parameters are one vector of size P
    and whose per-task gradients are G (their `_compute_grad` returns G)."""

    class H(cls):
        def __init__(self):
            super().__init__()
            self.task_num, self.device, self.rep_grad = G.shape[0], "cpu", False
            self.task_name = [f"t{i}" for i in range(G.shape[0])]
            self.p = torch.nn.Parameter(torch.zeros(G.shape[1]))
            self.p.grad = torch.zeros(G.shape[1])
            self.epoch, self.epochs = 0, 1

        def get_share_params(self):
            return [self.p]

        def zero_grad_share_params(self):
            self.p.grad.zero_()

        def _compute_grad(self, losses, mode, rep_grad=False):
            return torch.tensor(G).clone()

    h = H()
    h.init_param()
    # Losses that depend on the shared vector with gradient G_t (their value at p = 0 is
    # `losses`), for the methods that differentiate the losses themselves (EW).
    return h, torch.tensor(losses) + torch.tensor(G) @ h.p


def cases():
    rng = np.random.default_rng(20261202)
    out = []
    for t, p in [(2, 7), (3, 11), (3, 5), (4, 9)]:
        G = rng.normal(size=(t, p))
        if t == 3 and p == 5:
            G[1] = -0.6 * G[0] + 0.2 * rng.normal(size=p)  # a strong conflict
        losses = rng.uniform(0.3, 3.0, size=t)
        out.append((G, losses))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--libmtl", required=True)
    a = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    method = load_methods(a.libmtl)
    # Aligned_MTL calls torch.symeig, which today's torch only refuses: eigh is its successor
    # (eigenvalues ascending, the same decomposition).
    torch.symeig = lambda M, eigenvectors=True: torch.linalg.eigh(M)
    runs = [("EW", {}), ("MGDA", {"mgda_gn": "none"}), ("MGDA", {"mgda_gn": "l2"}), ("MGDA", {"mgda_gn": "loss+"}),
            ("PCGrad", {}), ("IMTL", {}), ("Aligned_MTL", {}), ("CAGrad", {"calpha": 0.5, "rescale": 1}),
            ("CAGrad", {"calpha": 0.4, "rescale": 0})]
    doc = {"libmtl_commit": "4336804", "torch": torch.__version__, "cases": []}
    for G, losses in cases():
        case = {"grads": G.tolist(), "losses": losses.tolist(), "methods": []}
        for name, kw in runs:
            h, L = harness(method(name), G, losses)
            orders = []
            if name == "PCGrad":
                random.seed(len(doc["cases"]))
                shuffle = random.shuffle

                def recording(x):
                    shuffle(x)
                    orders.append(list(x))

                mod = sys.modules[f"LibMTL.weighting.{name}"]
                mod.random.shuffle = recording
            w = h.backward(L, **kw)
            if name == "PCGrad":
                mod.random.shuffle = shuffle
            entry = {"method": name, "params": kw, "gradient": h.p.grad.tolist(), "weights": np.asarray(w, dtype=np.float64).tolist()}
            if name == "CAGrad":
                # LibMTL's own CAGrad again, its SLSQP call given ftol 1e-15.
                mod = sys.modules["LibMTL.weighting.CAGrad"]
                default = mod.minimize
                mod.minimize = lambda *args, **k: default(*args, **k, method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
                h2, L2 = harness(method(name), G, losses)
                entry["weights_tight"] = np.asarray(h2.backward(L2, **kw), dtype=np.float64).tolist()
                entry["gradient_tight"] = h2.p.grad.tolist()
                mod.minimize = default
            if orders:
                entry["orders"] = orders
            case["methods"].append(entry)
        doc["cases"].append(case)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}: {len(doc['cases'])} cases x {len(runs)} methods")


if __name__ == "__main__":
    main()
