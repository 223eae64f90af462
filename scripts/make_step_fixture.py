"""Make fixtures/pytorch/sgd_step1: one SGD step of HydraNet in PyTorch (the training oracle).

usage: python scripts/make_step_fixture.py
From fixtures/pytorch/hydranet40_s0.ckpt and the two real NYUv2 frames (RGB, mask, depth),
in train mode: outputs upsampled (bilinear, align_corners=False) to the label size, loss =
0.5 · CE(ignore 255) + 0.5 · masked L1 (depth PNG / 5000, 0 = missing); SGD momentum 0.9,
dampening 0, weight decay 1e-5, lr 1e-3 for the encoder (layer1..8) and 1e-2 for the rest.
Writes sgd_step1.safetensors (state dict after the step, BatchNorm buffers included) and
sgd_step1.json (losses, settings).
"""
import json, os, sys
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hydranet_torch import HydraNet, load_rgb, read_state_dict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
FRAMES = ["000464", "000433"]
SETTINGS = dict(momentum=0.9, weight_decay=1e-5, lr_encoder=1e-3, lr_decoder=1e-2, w_segm=0.5, w_depth=0.5, depth_scale=5000.0, steps=1)


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    s = SETTINGS
    m = HydraNet(40)
    m.load_state_dict(read_state_dict(os.path.join(ROOT, "pytorch", "hydranet40_s0.ckpt")))
    nyud = os.path.join(ROOT, "samples", "nyud")
    x = torch.cat([load_rgb(os.path.join(nyud, f"{f}.png")) for f in FRAMES])
    mask = torch.stack([torch.from_numpy(np.asarray(Image.open(os.path.join(nyud, f"segm_gt_{f}.png")), dtype=np.int64)) for f in FRAMES])
    depth = torch.stack([torch.from_numpy(np.asarray(Image.open(os.path.join(nyud, f"depth_gt_{f}.png")), dtype=np.float32) / s["depth_scale"]) for f in FRAMES])
    enc = [p for n, p in m.named_parameters() if n.startswith("layer")]
    dec = [p for n, p in m.named_parameters() if not n.startswith("layer")]
    opt = torch.optim.SGD([{"params": enc, "lr": s["lr_encoder"]}, {"params": dec, "lr": s["lr_decoder"]}],
                          momentum=s["momentum"], weight_decay=s["weight_decay"])
    m.train()
    losses = []
    for _ in range(s["steps"]):
        segm, dep = m(x)
        size = mask.shape[1:]
        segm = F.interpolate(segm, size=size, mode="bilinear", align_corners=False)
        dep = F.interpolate(dep, size=size, mode="bilinear", align_corners=False)[:, 0]
        l_segm = F.cross_entropy(segm, mask, ignore_index=255)
        valid = depth > 0
        l_depth = (dep - depth).abs()[valid].mean()
        loss = s["w_segm"] * l_segm + s["w_depth"] * l_depth
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append({"loss": loss.item(), "segm": l_segm.item(), "depth": l_depth.item()})
        print(losses[-1])
    from safetensors.torch import save_file
    out = os.path.join(ROOT, "pytorch", "sgd_step1")
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, out + ".safetensors")
    with open(out + ".json", "w") as f:
        json.dump({"frames": FRAMES, "settings": s, "losses": losses, "torch": torch.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
