"""Layer-by-layer parity of hydra with PyTorch on one checkpoint and image.

usage: python scripts/layer_parity.py CKPT IMAGE DIR [--threads N]
Runs PyTorch (oneDNN, N threads, default 2) on IMAGE, records every module's input and output
(the stem, each inverted-residual block and its three ConvBn stages, the decoder's 1×1
convolutions, the CRP blocks, the heads) under DIR, then runs hydra's `layer_parity` example
(build it first: `cargo build --release -p hydra-model --example layer_parity`) on the same
inputs, and prints per module: max |output|, max |hydra − PyTorch|, and the share of outputs
that are bit-identical. Then the whole network's max error / max |reference| per head.
A layer at 100 % computes PyTorch's arithmetic in PyTorch's order; the rest is where any
remaining whole-network difference is born (the early layers are amplified the most).
"""
import os, subprocess, sys
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hydranet_torch import HydraNet, load_rgb, read_state_dict

DECODER = {"conv3", "conv4", "conv5", "conv6", "conv7", "conv8", "conv_adapt2", "conv_adapt3", "conv_adapt4",
           "crp1", "crp2", "crp3", "crp4", "pre_segm", "segm", "pre_depth", "depth"}


def recorded(name):
    parts = name.split(".")
    return name == "layer1" or (name.startswith("layer") and name.split(".")[0] != "layer1" and len(parts) in (2, 4)) or name in DECODER


def main():
    ckpt, image, out = sys.argv[1:4]
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
    torch.set_num_threads(threads)
    os.makedirs(out, exist_ok=True)
    sd = read_state_dict(ckpt)
    m = HydraNet(sd["segm.weight"].shape[0])
    m.load_state_dict(sd)
    m.eval()
    names = []

    def hook(name):
        def f(_mod, inp, outp):
            np.save(os.path.join(out, f"{name}.in.npy"), inp[0].numpy())
            np.save(os.path.join(out, f"{name}.out.npy"), outp.numpy())
            names.append(name)
        return f

    for n, mod in m.named_modules():
        if n and recorded(n):
            mod.register_forward_hook(hook(n))
    x = load_rgb(image)
    with torch.no_grad():
        segm, depth = m(x)
    np.save(os.path.join(out, "input.npy"), x.numpy())
    with open(os.path.join(out, "names.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    exe = os.path.join(os.path.dirname(__file__), "..", "target", "release", "examples", "layer_parity")
    subprocess.run([exe, out, ckpt], check=True)
    print(f"{'module':22s} {'input':18s} {'max|out|':>9s} {'max err':>9s} {'identical':>9s}")
    for n in names:
        ours = np.fromfile(os.path.join(out, f"{n}.rs.bin"), dtype=np.float32)
        ref = np.load(os.path.join(out, f"{n}.out.npy")).ravel()
        shape = np.load(os.path.join(out, f"{n}.in.npy"), mmap_mode="r").shape[1:]
        err = np.abs(ours - ref)
        print(f"{n:22s} {str(shape):18s} {np.abs(ref).max():9.3f} {err.max():9.2e} {np.mean(err == 0) * 100:8.1f}%")
    for name, ref in [("segm", segm[0].numpy()), ("depth", depth[0].numpy())]:
        ours = np.fromfile(os.path.join(out, f"net_{name}.rs.bin"), dtype=np.float32)
        print(f"whole network, {name}: max error / max |reference| = {np.abs(ours - ref.ravel()).max() / np.abs(ref).max():.2e}")


if __name__ == "__main__":
    main()
