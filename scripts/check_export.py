"""Check that a hydra export loads into PyTorch strictly and reproduces hydra's outputs.

usage: python scripts/check_export.py EXPORT.safetensors IMAGE.png HYDRA_SEGM.npy HYDRA_DEPTH.npy [--original CKPT]
  1. builds the PyTorch HydraNet described by the export's metadata,
  2. load_state_dict(strict=True) with every tensor of the file (BatchNorm buffers included),
  3. runs it on IMAGE and prints max |difference| / max |value| against hydra's raw outputs,
  4. with --original, checks the exported tensors equal the original checkpoint's, exactly.
"""
import argparse, json, os, sys
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hydranet_torch import HydraNet, load_rgb, read_state_dict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export"); ap.add_argument("image"); ap.add_argument("segm"); ap.add_argument("depth")
    ap.add_argument("--original")
    a = ap.parse_args()
    with safe_open(a.export, "pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["hydra.config"])
    tasks = [{"segmentation": "segm", "depth": "depth", "normals": "normal"}[t] for t in cfg["tasks"]]
    m = HydraNet(cfg["num_classes"], tasks, cfg["crp_stages"], cfg["decoder_width"])
    sd = load_file(a.export)
    m.load_state_dict(sd, strict=True)
    print(f"load_state_dict(strict=True): ok, {len(sd)} tensors")
    m.eval()
    with torch.no_grad():
        out = m(load_rgb(a.image))
    for name, t, path in [("segm", out[0][0], a.segm), ("depth", out[1][0, 0], a.depth)]:
        ours = np.load(path)
        ref = t.numpy()
        print(f"{name}: max |hydra - pytorch| / max |pytorch| = {np.abs(ours - ref).max() / np.abs(ref).max():.2e}")
    if a.original:
        orig = read_state_dict(a.original)
        bad = [k for k in orig if not torch.equal(orig[k].to(sd[k].dtype), sd[k])]
        print(f"tensors equal to the original: {len(orig) - len(bad)}/{len(orig)}" + (f", differing: {bad[:5]}" if bad else ""))
        if bad:
            sys.exit(1)


if __name__ == "__main__":
    main()
