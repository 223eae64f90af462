#!/usr/bin/env python3
"""Check hydra's ONNX exports with the ONNX tools and ONNX Runtime, against the PyTorch reference.

usage: ~/.venvs/hydra-ref/bin/python scripts/check_onnx.py [--hydra target/release/hydra] [--runs 20]
(torch, onnx, onnxruntime, numpy, pillow; never needed to build or test hydra)

For two networks, the PyTorch-made fixture checkpoint (fixtures/pytorch/hydranet40_s0.ckpt,
N(0, 0.01²) weights, which amplify rounding) and a well-conditioned one (the reference model
with Kaiming initialisation, seed 0, BatchNorm statistics from a few batches, written here as
a .pth for hydra to read):
  1. `hydra export` to ONNX: dynamic folded (the default), dynamic with BatchNorm kept, static
     480x640 with --postprocess; onnx.checker.check_model(full_check=True) on each;
  2. ONNX Runtime (CPU) on the real NYUv2 frame, a KITTI frame and a 251x333 crop, against the
     PyTorch reference model in eval mode: max |ORT − PyTorch| / max |PyTorch|. Bound: 1e-4
     on the well-conditioned network; on the fixture twice PyTorch's own spread when the input
     moves by one ulp (the repository's principle for cross-implementation bounds);
  3. ONNX Runtime's latency at 480x640, 2 threads, hydra's files next to torch.onnx.export of
     the same reference model, like for like (dynamic axes against dynamic axes, a static
     480x640 file against a static one), runs alternating, median of --runs.
Exits non-zero when a check fails.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hydranet_torch import HydraNet, load_rgb, read_state_dict  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FRAMES = [("nyud 480x640", REPO / "fixtures/samples/nyud/000464.png", None),
          ("kitti 370x1226", REPO / "fixtures/samples/kitti/000099.png", None),
          ("crop 251x333", REPO / "fixtures/samples/nyud/000464.png", (251, 333))]


def frame(path, crop):
    x = load_rgb(str(path))
    return x[:, :, :crop[0], :crop[1]].contiguous() if crop else x


def nudged(x):
    """Every third value one ulp up, every third one ulp down (as hydra's selftest)."""
    b = x.numpy().copy().view(np.int32).reshape(-1)
    b[0::3] += 1
    b[1::3] -= 1
    return torch.from_numpy(b.view(np.float32).reshape(x.shape))


def ratio(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def well_conditioned(path):
    """The reference model, Kaiming-initialised (seed 0), running statistics from 5 batches
    of 2 random 128x128 images in train mode, saved as an official-style .pth."""
    torch.manual_seed(0)
    m = HydraNet(40)
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight, mode="fan_out")
    m.train()
    with torch.no_grad():
        for _ in range(5):
            m(torch.randn(2, 3, 128, 128))
    torch.save({"state_dict": m.state_dict()}, path)
    return path


def reference(ckpt):
    m = HydraNet(40)
    m.load_state_dict(read_state_dict(str(ckpt)), strict=True)
    return m.eval()


def session(path, threads=2):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hydra", default=str(REPO / "target/release/hydra"))
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(2)
    failures = []

    def report(name, ok, how):
        print(f"{'ok  ' if ok else 'FAIL'}  {name}  ({how})")
        if not ok:
            failures.append(name)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nets = [("fixture", REPO / "fixtures/pytorch/hydranet40_s0.ckpt"), ("kaiming", well_conditioned(tmp / "kaiming.pth"))]
        files = {}
        for net, ckpt in nets:
            for kind, extra in [("folded", []), ("kept", ["--no-fold-bn"]), ("static-post", ["--size", "480x640", "--postprocess"])]:
                out = tmp / f"{net}-{kind}.onnx"
                r = subprocess.run([a.hydra, "export", "--weights", str(ckpt), "--num-classes", "40", "--out", str(out), *extra],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    report(f"hydra export {net} {kind}", False, r.stderr.strip())
                    continue
                onnx.checker.check_model(str(out), full_check=True)
                report(f"onnx.checker full_check {net} {kind}", True, f"{out.stat().st_size / 1e6:.1f} MB")
                files[net, kind] = out

        for net, ckpt in nets:
            model = reference(ckpt)
            for name, path, crop in FRAMES:
                x = frame(path, crop)
                with torch.no_grad():
                    want = [t.numpy() for t in model(x)]
                    moved = [t.numpy() for t in model(nudged(x))]
                bounds = [1e-4, 1e-4] if net == "kaiming" else [2 * ratio(m, w) for m, w in zip(moved, want)]
                kinds = ["folded", "kept"] + (["static-post"] if crop is None and "480" in name else [])
                for kind in kinds:
                    if (net, kind) not in files:
                        continue
                    got = session(files[net, kind]).run(None, {"image": x.numpy()})
                    for task, g, w, b in zip(["segm", "depth"], got, want, bounds):
                        r = ratio(g, w)
                        report(f"ORT vs PyTorch {net} {kind} {name} {task}", g.shape == w.shape and r <= b, f"{r:.2e}, bound {b:.2e}")
                    if kind == "static-post":
                        up = torch.nn.functional.interpolate(torch.from_numpy(want[0]), size=x.shape[2:], mode="bilinear", align_corners=False)
                        labels = up.argmax(1).numpy()
                        agree = float((got[2] == labels).mean())
                        report(f"ORT labels vs PyTorch argmax {net} {name}", agree >= 0.9999, f"{agree * 100:.4f} %")

        # Latency: hydra's files next to torch.onnx.export of the same reference model, like
        # for like: a dynamic file (batch, height, width symbolic) and a static 480x640 one.
        model = reference(nets[1][1])
        x = frame(FRAMES[0][1], None)
        kw = dict(input_names=["image"], output_names=["segm", "depth"], opset_version=17)
        dynamic_axes = {"image": {0: "batch", 2: "height", 3: "width"}}
        torch_files = {}
        for kind, extra in [("dynamic", dict(dynamic_axes=dynamic_axes)), ("static", {})]:
            torch_files[kind] = tmp / f"torch-{kind}.onnx"
            torch.onnx.export(model, (x,), str(torch_files[kind]), dynamo=False, **kw, **extra)
        static = tmp / "kaiming-static.onnx"
        subprocess.run([a.hydra, "export", "--weights", str(nets[1][1]), "--num-classes", "40", "--out", str(static), "--size", "480x640"],
                       check=True, capture_output=True)
        sessions = {"hydra dynamic, folded": session(files["kaiming", "folded"]), "hydra dynamic, BatchNorm kept": session(files["kaiming", "kept"]),
                    "torch.onnx.export dynamic": session(torch_files["dynamic"]),
                    "hydra static 480x640, folded": session(static), "torch.onnx.export static": session(torch_files["static"])}
        feed = x.numpy()
        times = {k: [] for k in sessions}
        for s in sessions.values():
            for _ in range(3):
                s.run(None, {"image": feed})
        for _ in range(a.runs):
            for k, s in sessions.items():
                t = time.perf_counter()
                s.run(None, {"image": feed})
                times[k].append(time.perf_counter() - t)
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"ONNX Runtime {ort.__version__} latency, 1x3x480x640, 2 threads, {a.runs} alternating runs, median ({cpu}; "
              f"torch.onnx.export = the TorchScript exporter of torch {torch.__version__}, opset 17):")
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in med.items():
            print(f"  {k}: {v * 1e3:.1f} ms")
        for ours, theirs in [("hydra dynamic, folded", "torch.onnx.export dynamic"), ("hydra static 480x640, folded", "torch.onnx.export static")]:
            report(f"{ours} at least as fast as {theirs}", med[ours] <= med[theirs] * 1.03,
                   f"{med[ours] * 1e3:.1f} ms vs {med[theirs] * 1e3:.1f} ms, ratio {med[theirs] / med[ours]:.3f} (3 % timing noise allowed)")
    print(f"{len(failures)} failed" + (": " + ", ".join(failures) if failures else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
