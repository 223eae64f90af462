#!/usr/bin/env python3
"""Re-make every committed fixture from its script and compare with the committed file.

usage: ~/.venvs/hydra-ref/bin/python scripts/check_fixtures.py   (torch, torchvision,
safetensors, numpy, pillow; never needed to build or test hydra)

The scripts run in a temporary copy of scripts/ and fixtures/, so the checkout is untouched.
A file counts as reproduced when its bytes are equal; for PyTorch containers (.pth zip,
legacy .ckpt), whose bytes hold serialisation ids and record order, when every tensor is
equal (bit for bit, dtype and shape included) and the keys are the same. Also recomputes,
with NumPy on the PNGs, the real-frame statistics tests/real_frames.rs asserts. Exits
non-zero when anything differs.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
PARITY = ["--seed", "0", "--classes", "40", "--image", "fixtures/samples/nyud/000464.png", "--legacy"]
# (script, arguments, files it makes under fixtures/)
RUNS = [
    ("make_parity_fixtures.py", ["fixtures/pytorch", *PARITY],
     ["pytorch/hydranet40_s0.ckpt", "pytorch/hydranet40_s0_000464_segm.npy", "pytorch/hydranet40_s0_000464_depth.npy",
      "pytorch/mobilenet_v2_tv_s0.pth", "pytorch/mobilenet_v2_tv_s0_as_reference.safetensors"]),
    ("make_import_fixtures.py", [], ["pytorch/hydranet40_s0_zip_f16_module.pth"]),
    ("make_step_fixture.py", [], ["pytorch/sgd_step1.safetensors", "pytorch/sgd_step1.json"]),
    ("make_bad_weight_fixtures.py", [], ["pytorch/tiny_zip.pth", "pytorch/tiny_legacy.ckpt"]),
    ("make_state_keys_fixture.py", [], ["pytorch/state_keys.json"]),
    ("make_optim_fixture.py", [], ["optim/torch_optim.json"]),
    ("make_schedule_fixture.py", [], ["optim/torch_schedules.json"]),
]


def tensors(path):
    if path.suffix == ".safetensors":
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        return load_file(str(path)), meta
    obj = torch.load(str(path), weights_only=True, map_location="cpu")
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    return dict(obj), None


def same_tensors(a, b):
    (ta, ma), (tb, mb) = tensors(a), tensors(b)
    if ta.keys() != tb.keys() or ma != mb:
        return False
    return all(x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y) for x, y in ((ta[k], tb[k]) for k in ta))


def real_frames(report):
    """numpy.unique of the NYUv2 label PNG and the unmeasured depth pixels, against the test."""
    test = (REPO / "crates/hydra-data/tests/real_frames.rs").read_text()
    expected = [tuple(map(int, m)) for m in re.findall(r"\((\d+), (\d+)\)", test.split("let expected")[1].split(";")[0])]
    labels = np.asarray(Image.open(REPO / "fixtures/samples/nyud/segm_gt_000464.png"))
    got = [tuple(map(int, p)) for p in zip(*np.unique(labels, return_counts=True))]
    report("tests/real_frames.rs label histogram", got == expected, f"{got}")
    zeros = int((np.asarray(Image.open(REPO / "fixtures/samples/nyud/depth_gt_000464.png")) == 0).sum())
    want = int(re.search(r"== 0\.0\)\.count\(\), ([\d_]+)\)", test).group(1).replace("_", ""))
    report("tests/real_frames.rs unmeasured depth pixels", zeros == want, f"{zeros}")


def main():
    failures = []

    def report(name, ok, how):
        print(f"{'same' if ok else 'DIFFERS'}  {name}  ({how})")
        if not ok:
            failures.append(name)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "scripts", work / "scripts")
        shutil.copytree(REPO / "fixtures", work / "fixtures")
        for script, args, outputs in RUNS:
            for o in outputs:
                (work / "fixtures" / o).unlink(missing_ok=True)
            r = subprocess.run([sys.executable, f"scripts/{script}", *args], cwd=work, capture_output=True, text=True)
            if r.returncode != 0:
                report(script, False, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}")
                continue
            for o in outputs:
                new, old = work / "fixtures" / o, REPO / "fixtures" / o
                if not new.exists():
                    report(o, False, f"{script} did not write it")
                elif new.read_bytes() == old.read_bytes():
                    report(o, True, "bytes")
                elif new.suffix in (".pth", ".ckpt", ".safetensors") and same_tensors(new, old):
                    report(o, True, "every tensor; container bytes differ")
                else:
                    report(o, False, f"re-made by {script}")
    real_frames(report)
    print(f"{len(failures)} differ" + (": " + ", ".join(failures) if failures else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
