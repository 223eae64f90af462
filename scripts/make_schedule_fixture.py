#!/usr/bin/env python3
"""Make fixtures/optim/torch_schedules.json: the learning-rate factor (lr / base lr) that
torch.optim.lr_scheduler gives at each iteration 0..total (the rate the step of that
iteration uses: after `it` calls of scheduler.step()), for hydra's schedules stepped per
iteration: constant, multistep (milestones in iterations), cosine (eta_min = min factor x base),
poly (PolynomialLR), each alone and with a linear warm-up (LinearLR chained with it).

Run: ~/.venvs/hydra-ref/bin/python scripts/make_schedule_fixture.py  (reproduces the file
byte for byte). With a warm-up, PyTorch's recursive cosine only equals the product of the two
factors when eta_min = 0, so warm-up cases use min factor 0.
"""
import json
from pathlib import Path

import torch
from torch.optim import lr_scheduler as S

TOTAL = 60
BASE = 0.5


def factors(make, warmup=0, warmup_factor=1.0):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE)
    main = make(opt)
    sched = S.ChainedScheduler([S.LinearLR(opt, start_factor=warmup_factor, end_factor=1.0, total_iters=warmup), main]) if warmup else main
    out = []
    for _ in range(TOTAL + 1):
        out.append(opt.param_groups[0]["lr"] / BASE)
        opt.step()
        sched.step()
    return out


cases = []
for warmup, wf in [(0, 1.0), (10, 0.1)]:
    cases.append(dict(kind="constant", warmup=warmup, warmup_factor=wf, factors=factors(lambda o: S.ConstantLR(o, factor=1.0, total_iters=0), warmup, wf)))
    cases.append(dict(kind="multistep", milestones=[20, 45], gamma=0.1, warmup=warmup, warmup_factor=wf, factors=factors(lambda o: S.MultiStepLR(o, milestones=[20, 45], gamma=0.1), warmup, wf)))
    cases.append(dict(kind="cosine", min_factor=0.0, warmup=warmup, warmup_factor=wf, factors=factors(lambda o: S.CosineAnnealingLR(o, T_max=TOTAL, eta_min=0.0), warmup, wf)))
    cases.append(dict(kind="poly", power=0.9, min_factor=0.0, warmup=warmup, warmup_factor=wf, factors=factors(lambda o: S.PolynomialLR(o, total_iters=TOTAL, power=0.9), warmup, wf)))
cases.append(dict(kind="cosine", min_factor=0.05, warmup=0, warmup_factor=1.0, factors=factors(lambda o: S.CosineAnnealingLR(o, T_max=TOTAL, eta_min=0.05 * BASE))))

path = Path(__file__).resolve().parent.parent / "fixtures" / "optim" / "torch_schedules.json"
path.write_text(json.dumps({"total": TOTAL, "torch": torch.__version__, "cases": cases}, indent=1) + "\n")
print(f"wrote {path}")
