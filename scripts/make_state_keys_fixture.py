#!/usr/bin/env python3
"""Make fixtures/pytorch/state_keys.json: the state-dict keys, shapes and dtypes of the
PyTorch reference HydraNet (scripts/hydranet_torch.py) for the official layouts: NYUDv2 40
classes with two tasks and with three (normals), KITTI 6 classes. `load_state_dict(strict=True)`
accepts exactly these; hydra's exports are tested against them.

Run: ~/.venvs/hydra-ref/bin/python scripts/make_state_keys_fixture.py  (reproduces the file).
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hydranet_torch import HydraNet  # noqa: E402

layouts = {
    "nyud40_segm_depth": HydraNet(40, ("segm", "depth")),
    "nyud40_segm_depth_normal": HydraNet(40, ("segm", "depth", "normal")),
    "kitti6_segm_depth": HydraNet(6, ("segm", "depth")),
}
out = {name: {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in m.state_dict().items()} for name, m in layouts.items()}
path = Path(__file__).resolve().parent.parent / "fixtures" / "pytorch" / "state_keys.json"
lines = ["{"]
for i, (name, keys) in enumerate(sorted(out.items())):
    lines.append(f" {json.dumps(name)}: {{")
    items = sorted(keys.items())
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}" + ("," if j + 1 < len(items) else "") for j, (k, v) in enumerate(items)]
    lines.append(" }" + ("," if i + 1 < len(out) else ""))
lines.append("}")
path.write_text("\n".join(lines) + "\n")
print(f"wrote {path}: " + ", ".join(f"{k} {len(v)} tensors" for k, v in out.items()))
