#!/usr/bin/env python3
"""Re-make every committed fixture from its script and compare with the committed file.

usage: ~/.venvs/hydra-ref/bin/python scripts/check_fixtures.py   (torch, torchvision,
safetensors, numpy, pillow; never needed to build or test hydra)

The scripts run in a temporary copy of scripts/ and fixtures/, so the checkout is untouched.
A file counts as reproduced when its bytes are equal; for PyTorch containers (.pth zip,
legacy .ckpt), whose bytes hold serialisation ids (the legacy format's storage keys are
memory addresses), when every tensor is equal (bit for bit, dtype and shape included), the
keys are the same and any other object is built the same way (read without running it: the
hostile fixtures call os.system). fixtures/samples must be byte copies of ../shared/samples.
Also recomputes,
with NumPy on the PNGs, the real-frame statistics tests/real_frames.rs asserts. Exits
non-zero when anything differs.
"""
import os
import pickle
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
    ("make_ddp_fixture.py", [], ["pytorch/ddp2_step1.safetensors", "pytorch/ddp2_step1.json"]),
    ("make_bad_weight_fixtures.py", [], ["pytorch/tiny_zip.pth", "pytorch/tiny_legacy.ckpt"]),
    # the hostile pickles hold an object whose reduce calls os.system: compared by bytes only,
    # never loaded here
    ("make_bad_weight_fixtures.py", [], ["pytorch/evil_reduce_zip.pth", "pytorch/evil_reduce_legacy.ckpt",
                                         "pytorch/object_in_checkpoint.pth"]),
    ("make_mtan_fixture.py", [], ["mtan/expected.json", *(f"mtan/train/{k}/{i}.npy" for k in ("image", "depth", "normal")
                                                         for i in range(3)), "mtan/train/label/0.npy", "mtan/train/label/1.npy"]),
    ("make_state_keys_fixture.py", [], ["pytorch/state_keys.json"]),
    ("make_optim_fixture.py", [], ["optim/torch_optim.json"]),
    ("make_schedule_fixture.py", [], ["optim/torch_schedules.json"]),
    # needs a LibMTL checkout at commit 4336804: LIBMTL=PATH (skipped without it)
    ("make_mtl_fixture.py", ["--libmtl", os.environ.get("LIBMTL", "")], ["mtl/libmtl.json", "mtl/libmtl_stateful.json"]),
]


class Stub:
    """Stands for any global outside torch and collections in a pickle: it records how the
    pickle would build it (the arguments of a call, the state set) and runs nothing; so the
    hostile fixtures (os.system in a reduce) are compared without being executed."""
    name = "?"

    def __init__(self, *args):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def key(self):
        # built by NEWOBJ (no __init__) or by a call (REDUCE)
        return ("stub", self.name, canonical(getattr(self, "args", None)), canonical(getattr(self, "state", None)))


class StubModule:
    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module.split(".")[0] in ("torch", "collections"):
                return super().find_class(module, name)
            return type("Stub", (Stub,), {"name": f"{module}.{name}"})

    @staticmethod
    def load(f, **kw):
        return StubModule.Unpickler(f, **kw).load()


def canonical(obj):
    """A comparable form: tensors by dtype, shape and bytes; containers element by element."""
    if isinstance(obj, torch.Tensor):
        return ("tensor", str(obj.dtype), tuple(obj.shape), obj.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()
                if obj.numel() else b"")
    if isinstance(obj, Stub):
        return obj.key()
    if isinstance(obj, dict):
        return ("dict", type(obj).__name__, tuple((canonical(k), canonical(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(canonical(x) for x in obj))
    return ("value", repr(obj))


def contents(path):
    if path.suffix == ".safetensors":
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        return canonical((load_file(str(path)), meta))
    return canonical(torch.load(str(path), weights_only=False, pickle_module=StubModule, map_location="cpu"))


def same_contents(a, b):
    """Same keys in the same order, every tensor equal bit for bit with its dtype and shape,
    every other object built the same way."""
    return contents(a) == contents(b)


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


def samples(report):
    """fixtures/samples are byte copies of the real NYUv2 and KITTI frames, labels and colour
    maps in ../shared/samples (the data as distributed; nothing in hydra makes them)."""
    shared = REPO.parent / "shared" / "samples"
    if not shared.is_dir():
        print(f"skip  fixtures/samples  ({shared} is not here)")
        return
    for f in sorted((REPO / "fixtures" / "samples").rglob("*")):
        if f.is_file():
            rel = f.relative_to(REPO / "fixtures" / "samples")
            src = shared / rel
            report(f"samples/{rel}", src.is_file() and src.read_bytes() == f.read_bytes(), f"bytes of {src}")


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
            if "--libmtl" in args and not args[args.index("--libmtl") + 1]:
                print(f"skip  {script}  (set LIBMTL to a LibMTL checkout to re-make {', '.join(outputs)})")
                continue
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
                elif new.suffix in (".pth", ".ckpt", ".safetensors") and same_contents(new, old):
                    report(o, True, "every tensor and object; container bytes differ")
                else:
                    report(o, False, f"re-made by {script}")
    samples(report)
    real_frames(report)
    print(f"{len(failures)} differ" + (": " + ", ".join(failures) if failures else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
