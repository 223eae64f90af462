"""How close can float32 HydraNet outputs agree? PyTorch against itself.

usage: python scripts/parity_budget.py CKPT IMAGE.png [SEGM.npy DEPTH.npy]
       python scripts/parity_budget.py --step
Inference: per head, max |difference| / max |reference| between PyTorch's default oneDNN
float32 run and: PyTorch float64, PyTorch float32 without oneDNN, and (if given) hydra's raw
outputs (`hydra predict --raw`).
--step: the SGD step of scripts/make_step_fixture.py run with oneDNN and with PyTorch's native
kernels; prints the loss difference, per-tensor ‖Δ‖ / ‖update‖ (median, worst) and the worst
BatchNorm-statistics difference: PyTorch's own float32 spread, the yardstick of the step test.
"""
import os, sys
import numpy as np
import torch
sys.path.insert(0, __import__("os").path.dirname(__file__))
from hydranet_torch import HydraNet, load_rgb, read_state_dict


def step_budget():
    import make_step_fixture as fx
    from PIL import Image
    import torch.nn.functional as F
    root = fx.ROOT
    sd0 = read_state_dict(os.path.join(root, "pytorch", "hydranet40_s0.ckpt"))
    nyud = os.path.join(root, "samples", "nyud")
    x = torch.cat([load_rgb(os.path.join(nyud, f"{f}.png")) for f in fx.FRAMES])
    mask = torch.stack([torch.from_numpy(np.asarray(Image.open(os.path.join(nyud, f"segm_gt_{f}.png")), dtype=np.int64)) for f in fx.FRAMES])
    depth = torch.stack([torch.from_numpy(np.asarray(Image.open(os.path.join(nyud, f"depth_gt_{f}.png")), dtype=np.float32) / 5000) for f in fx.FRAMES])

    def run(onednn):
        torch.backends.mkldnn.enabled = onednn
        m = HydraNet(40)
        m.load_state_dict(sd0)
        enc = [p for n, p in m.named_parameters() if n.startswith("layer")]
        dec = [p for n, p in m.named_parameters() if not n.startswith("layer")]
        opt = torch.optim.SGD([{"params": enc, "lr": 1e-3}, {"params": dec, "lr": 1e-2}], momentum=0.9, weight_decay=1e-5)
        m.train()
        segm, dep = m(x)
        segm = F.interpolate(segm, size=mask.shape[1:], mode="bilinear", align_corners=False)
        dep = F.interpolate(dep, size=mask.shape[1:], mode="bilinear", align_corners=False)[:, 0]
        loss = 0.5 * F.cross_entropy(segm, mask, ignore_index=255) + 0.5 * (dep - depth).abs()[depth > 0].mean()
        opt.zero_grad(); loss.backward(); opt.step()
        return loss.item(), m.state_dict()

    la, a = run(True)
    lb, b = run(False)
    ratios, bn = [], 0.0
    for k, v in a.items():
        if "num_batches" in k:
            continue
        if "running" in k:
            bn = max(bn, ((b[k] - v).abs().max() / v.abs().max()).item())
            continue
        v64, s0 = v.double(), sd0[k].double()
        ratios.append(((b[k].double() - v64).norm() / ((v64 - s0).norm() + 1e-3 * v64.norm())).item())
    ratios.sort()
    print(f"step: loss {abs(la - lb) / abs(la):.1e}; update median {ratios[len(ratios) // 2]:.2e}, worst {ratios[-1]:.2e}; BatchNorm statistics {bn:.1e}")


def main():
    if sys.argv[1:] == ["--step"]:
        return step_budget()
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
