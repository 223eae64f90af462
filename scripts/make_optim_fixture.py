#!/usr/bin/env python3
"""Make fixtures/optim/torch_optim.json: what torch.optim does, step by step, to two parameter
groups with their own learning rate and weight decay, for SGD (momentum, with and without
Nesterov), Adam (L2 weight decay) and AdamW (decoupled), and SGD after
clip_grad_norm_ over both groups. Five steps with non-zero, changing gradients.

Run: ~/.venvs/hydra-ref/bin/python scripts/make_optim_fixture.py  (torch, CPU, float32).
Re-running reproduces the committed file byte for byte (fixed seeds, deterministic CPU ops).
"""
import json
from pathlib import Path

import torch

torch.manual_seed(20261202)
torch.use_deterministic_algorithms(True)
a0 = torch.randn(5)
b0 = torch.randn(2, 3)
# Gradients of different sizes per step; step 3's are large so that clipping acts on some steps.
grads = []
for step in range(5):
    scale = 4.0 if step == 2 else 1.0
    grads.append((torch.randn(5) * scale, torch.randn(2, 3) * scale))

CASES = {
    "sgd": (torch.optim.SGD, dict(momentum=0.9, dampening=0.0, nesterov=False), [dict(lr=0.1, weight_decay=1e-2), dict(lr=0.05, weight_decay=0.0)], None),
    "sgd_nesterov": (torch.optim.SGD, dict(momentum=0.9, dampening=0.0, nesterov=True), [dict(lr=0.1, weight_decay=1e-2), dict(lr=0.05, weight_decay=1e-3)], None),
    "adam": (torch.optim.Adam, dict(betas=(0.9, 0.99), eps=1e-8), [dict(lr=1e-2, weight_decay=1e-2), dict(lr=3e-3, weight_decay=0.1)], None),
    "adamw": (torch.optim.AdamW, dict(betas=(0.9, 0.99), eps=1e-8), [dict(lr=1e-2, weight_decay=1e-2), dict(lr=3e-3, weight_decay=0.1)], None),
    "sgd_clipped": (torch.optim.SGD, dict(momentum=0.9, dampening=0.0, nesterov=False), [dict(lr=0.1, weight_decay=1e-2), dict(lr=0.05, weight_decay=0.0)], 4.0),
}


def floats(t):
    return [float(x) for x in t.flatten().tolist()]


out = {"a0": floats(a0), "b0": floats(b0), "b_shape": list(b0.shape), "grads": [[floats(ga), floats(gb)] for ga, gb in grads], "cases": {}}
for name, (cls, common, groups, clip) in CASES.items():
    a = torch.nn.Parameter(a0.clone())
    b = torch.nn.Parameter(b0.clone())
    opt = cls([dict(params=[a], **groups[0]), dict(params=[b], **groups[1])], **common)
    steps = []
    for ga, gb in grads:
        a.grad = ga.clone()
        b.grad = gb.clone()
        norm = None
        if clip is not None:
            norm = float(torch.nn.utils.clip_grad_norm_([a, b], max_norm=clip))
        opt.step()
        steps.append({"a": floats(a.detach()), "b": floats(b.detach()), "grad_norm": norm})
    hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in common.items()}
    out["cases"][name] = {"optimizer": cls.__name__, "hyper": hyper, "groups": groups, "clip": clip, "steps": steps}

out["torch"] = torch.__version__
path = Path(__file__).resolve().parent.parent / "fixtures" / "optim" / "torch_optim.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
