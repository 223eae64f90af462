#!/usr/bin/env python3
"""Make fixtures/mtl/libmtl.json: what LibMTL's own multi-task methods return on fixed
per-task gradients and losses.

usage: ~/.venvs/hydra-ref/bin/python scripts/make_mtl_fixture.py --libmtl PATH [--stateful-only]
  PATH: a checkout of github.com/median-research-group/LibMTL at commit 4336804 (the methods
  are read from PATH/LibMTL/weighting; the package's __init__, which needs an old
  torchvision, is not run). Needs torch, numpy, scipy (CAGrad), cvxpy with ECOS (Nash-MTL).

Also fixtures/mtl/libmtl_stateful.json: the methods with state, run for several steps on one
instance (GradVac's targets, DB-MTL's buffer, Nash-MTL's last weights carried), GradNorm in
its second epoch (loss scales and the first epoch's losses given) and GradDrop on given
representation gradients (its uniforms recorded). There the per-task gradients come from
autograd on losses `L0 + G·p`, so DB-MTL's log-losses give `G / L0` as in LibMTL.

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
STATEFUL = OUT.with_name("libmtl_stateful.json")


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


class Leaf(torch.nn.Module):
    """A leaf module holding parameters of the given sizes (GradVac's `all_layer` groups)."""

    def __init__(self, sizes):
        super().__init__()
        for i, n in enumerate(sizes):
            self.register_parameter(f"p{i}", torch.nn.Parameter(torch.zeros(n)))


def stateful_harness(cls, leaves):
    """LibMTL's method class over shared parameters held by leaf modules of the given sizes;
    each step's losses are `L0 + G·p` at p = 0, so their real gradients (by autograd) are the
    rows of G, and those of log-losses are G / L."""

    class H(cls):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Sequential(*[Leaf(sizes) for sizes in leaves])
            self.params = [q for m in self.encoder for q in m.parameters()]
            for q in self.params:
                q.grad = torch.zeros_like(q)
            self.device, self.rep_grad = "cpu", False
            self.epoch, self.epochs = 0, 1

        def get_share_params(self):
            return self.params

        def zero_grad_share_params(self):
            for q in self.params:
                q.grad.zero_()

        def _compute_grad(self, losses, mode, rep_grad=False):
            rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[t], self.params, retain_graph=True)]) for t in range(self.task_num)]
            return torch.stack(rows)

        def shared_grad(self):
            return torch.cat([q.grad.reshape(-1) for q in self.params]).tolist()

    return H


def losses_of(h, G, L0):
    flat = torch.cat([q.reshape(-1) for q in h.params])
    return torch.tensor(L0) + torch.tensor(G) @ flat


def stateful(method):
    """Sequences of steps (state carried) for GradVac, DB-MTL and Nash-MTL; single steps for
    GradNorm (second epoch) and GradDrop (representation gradients)."""
    rng = np.random.default_rng(20261203)
    doc = {"libmtl_commit": "4336804", "torch": torch.__version__, "sequences": [], "gradnorm": [], "graddrop": []}
    shapes = [(2, [[3, 2], [2]]), (3, [[4], [3, 4]])]
    runs = [("GradVac", {"GradVac_beta": 0.5, "GradVac_group_type": 0}), ("GradVac", {"GradVac_beta": 0.3, "GradVac_group_type": 1}),
            ("GradVac", {"GradVac_beta": 0.5, "GradVac_group_type": 2}), ("DB_MTL", {"DB_beta": 0.9, "DB_beta_sigma": 0.0}),
            ("DB_MTL", {"DB_beta": 0.8, "DB_beta_sigma": 0.5}), ("Nash_MTL", {"update_weights_every": 1, "optim_niter": 20, "max_norm": 1.0}),
            ("Nash_MTL", {"update_weights_every": 1, "optim_niter": 20, "max_norm": 0.0})]
    for t, leaves in shapes:
        p = sum(sum(x) for x in leaves)
        steps = []
        for k in range(4):
            G = rng.normal(size=(t, p))
            if k == 2:
                G[1] = -0.5 * G[0] + 0.3 * rng.normal(size=p)
            steps.append((G, rng.uniform(0.3, 3.0, size=t)))
        seq = {"leaves": leaves, "steps": [{"grads": G.tolist(), "losses": L.tolist()} for G, L in steps], "methods": []}
        for name, kw in runs:
            cls = stateful_harness(method(name), leaves)
            h = cls()
            h.task_num = t
            h.task_name = [f"t{i}" for i in range(t)]
            h.init_param()
            mod = sys.modules[f"LibMTL.weighting.{name}"]
            orders, shuffle = [], random.shuffle
            random.seed(7 * t)

            def recording(x):
                shuffle(x)
                orders.append(list(x))

            if name == "GradVac":
                mod.random.shuffle = recording
            out = []
            for G, L0 in steps:
                h.zero_grad_share_params()
                w = h.backward(losses_of(h, G, L0), **kw)
                out.append({"gradient": h.shared_grad(), "weights": np.asarray(w, dtype=np.float64).tolist()})
            if name == "GradVac":
                mod.random.shuffle = shuffle
            entry = {"method": name, "params": kw, "steps": out}
            if orders:
                entry["orders"] = orders
            seq["methods"].append(entry)
        doc["sequences"].append(seq)
    for t, leaves in shapes:
        p = sum(sum(x) for x in leaves)
        G, L0 = rng.normal(size=(t, p)), rng.uniform(0.3, 3.0, size=t)
        G[0] *= 3.0
        initial, scales = rng.uniform(0.5, 4.0, size=t), rng.normal(size=t)
        for alpha in [1.5, 0.5]:
            h = stateful_harness(method("GradNorm"), leaves)()
            h.task_num, h.task_name = t, [f"t{i}" for i in range(t)]
            h.init_param()
            h.loss_scale.data = torch.tensor(scales)
            h.epoch = 1
            h.train_loss_buffer = np.stack([initial, initial * 0.5], axis=1)
            w = h.backward(losses_of(h, G, L0), alpha=alpha)
            doc["gradnorm"].append({"grads": G.tolist(), "losses": L0.tolist(), "initial": initial.tolist(), "scales": scales.tolist(), "alpha": alpha,
                                    "weights": np.asarray(w).tolist(), "gradient": h.shared_grad(), "scale_grad": h.loss_scale.grad.tolist()})
    for t, b, f in [(2, 3, 8), (3, 2, 10)]:
        rep = rng.normal(size=(b, f))
        rep[rep < -0.8] = 0.0  # zero features: sign 0
        R = rng.normal(size=(t, b, f))
        for leak in [0.0, 0.3]:
            cls = method("GradDrop")

            class D(cls):
                def _compute_grad(self, losses, mode, rep_grad=False):
                    return torch.tensor(R).clone()

            h = D()
            h.task_num, h.task_name, h.rep_grad, h.device = t, [f"t{i}" for i in range(t)], True, "cpu"
            h.rep = torch.tensor(rep).requires_grad_(True)
            torch.manual_seed(11 * t + int(10 * leak))
            drawn = []
            rand_like = torch.rand_like
            torch.rand_like = lambda x: drawn.append(rand_like(x)) or drawn[-1]
            h.backward(None, leak=leak)
            torch.rand_like = rand_like
            doc["graddrop"].append({"rep": rep.reshape(-1).tolist(), "grads": R.reshape(t, -1).tolist(), "features": f, "leak": leak,
                                    "uniform": drawn[0].tolist(), "upstream": h.rep.grad.reshape(-1).tolist()})
    return doc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--libmtl", required=True)
    ap.add_argument("--stateful-only", action="store_true", help="write only libmtl_stateful.json")
    a = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    method = load_methods(a.libmtl)
    doc = stateful(method)
    STATEFUL.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {STATEFUL}: {len(doc['sequences'])} sequences, {len(doc['gradnorm'])} GradNorm and {len(doc['graddrop'])} GradDrop cases")
    if a.stateful_only:
        return
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
