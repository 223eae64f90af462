"""How close can float32 HydraNet outputs agree? PyTorch against itself.

usage: python scripts/parity_budget.py CKPT IMAGE.png [SEGM.npy DEPTH.npy]
Prints, per head, max |difference| / max |reference| between the fixture (or PyTorch's
default oneDNN float32 run) and: PyTorch float64, PyTorch float32 without oneDNN, and (if given)
hydra's raw outputs (`hydra predict --raw`).
"""
import sys
import numpy as np
import torch
sys.path.insert(0, __import__("os").path.dirname(__file__))
from hydranet_torch import HydraNet, load_rgb, read_state_dict


def main():
    ckpt, image = sys.argv[1], sys.argv[2]
    sd = read_state_dict(ckpt)
    m = HydraNet(sd["segm.weight"].shape[0])
    m.load_state_dict(sd)
    m.eval()
    x = load_rgb(image)
    with torch.no_grad():
        torch.backends.mkldnn.enabled = True
        ref = [t[0].numpy() for t in m(x)]
        torch.backends.mkldnn.enabled = False
        native = [t[0].numpy() for t in m(x)]
        torch.backends.mkldnn.enabled = True
        f64 = [t[0].numpy() for t in m.double()(x.double())]
    rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())
    for i, name in enumerate(["segm", "depth"]):
        print(f"{name}: float64 {rel(f64[i], ref[i]):.2e}  native-kernels {rel(native[i], ref[i]):.2e}")
    if len(sys.argv) > 4:
        for i, path in enumerate(sys.argv[3:5]):
            ours = np.load(path)
            print(f"{['segm', 'depth'][i]}: hydra {rel(ours.reshape(ref[i].shape), ref[i]):.2e}")


if __name__ == "__main__":
    main()
