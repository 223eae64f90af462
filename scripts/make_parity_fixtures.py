"""Make reference checkpoints and expected outputs with the PyTorch reference
(scripts/hydranet_torch.py): the script that made fixtures/pytorch/hydranet40_s0* and
mobilenet_v2_tv_s0*; scripts/check_fixtures.py runs it with
`fixtures/pytorch --seed 0 --classes 40 --image fixtures/samples/nyud/000464.png --legacy`.

usage: make_parity_fixtures.py OUT_DIR --seed S --classes N --image PNG [--legacy] [--prefix module.]
Writes into OUT_DIR:
  hydranet{N}_s{S}.ckpt          dict {'state_dict': ...} (legacy pickle if --legacy, else zip)
  hydranet{N}_s{S}_{stem}_segm.npy   float32 [N, H/4, W/4] logits for the image
  hydranet{N}_s{S}_{stem}_depth.npy  float32 [H/4, W/4]
  mobilenet_v2_tv_s{S}.pth       torchvision MobileNetV2 state_dict (zip) with random weights
  mobilenet_v2_tv_s{S}_as_reference.safetensors  the same encoder in the reference key layout
Weights are random but well scaled (Kaiming init, BatchNorm statistics gathered on the image).
"""
import argparse, os, sys
import numpy as np
import torch
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hydranet_torch import HydraNet

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float64)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float64)


def load_image(path):
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    x = (img / 255.0 - MEAN) / STD
    return torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32))


def realistic(model, x, g):
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", generator=g)
            if m.bias is not None:
                m.bias.data.uniform_(-0.1, 0.1, generator=g)
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
            m.momentum = None  # cumulative average over the passes below
    model.train()
    with torch.no_grad():
        for _ in range(3):
            i = int(torch.randint(0, x.shape[2] - 256, (1,), generator=g))
            j = int(torch.randint(0, x.shape[3] - 256, (1,), generator=g))
            model(x[:, :, i:i + 256, j:j + 256])
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    model.eval()


def tv_to_reference(tv_sd):
    """torchvision MobileNetV2 keys -> reference layout; t=1 expansion set to identity."""
    out = {}
    def bn(dst, src):
        for k in ("weight", "bias", "running_mean", "running_var"):
            out[f"{dst}.{k}"] = tv_sd[f"{src}.{k}"]
    out["layer1.0.weight"] = tv_sd["features.0.0.weight"]
    bn("layer1.1", "features.0.1")
    eye = torch.eye(32).reshape(32, 32, 1, 1)
    out["layer2.0.output.0.0.weight"] = eye
    out["layer2.0.output.0.1.weight"] = torch.ones(32)
    out["layer2.0.output.0.1.bias"] = torch.zeros(32)
    out["layer2.0.output.0.1.running_mean"] = torch.zeros(32)
    out["layer2.0.output.0.1.running_var"] = torch.full((32,), 1.0 - 1e-5)
    out["layer2.0.output.1.0.weight"] = tv_sd["features.1.conv.0.0.weight"]
    bn("layer2.0.output.1.1", "features.1.conv.0.1")
    out["layer2.0.output.2.0.weight"] = tv_sd["features.1.conv.1.weight"]
    bn("layer2.0.output.2.1", "features.1.conv.2")
    stages = [(3, 2), (4, 3), (5, 4), (6, 3), (7, 3), (8, 1)]
    f = 2
    for layer, n in stages:
        for b in range(n):
            p, q = f"layer{layer}.{b}.output", f"features.{f}.conv"
            out[f"{p}.0.0.weight"] = tv_sd[f"{q}.0.0.weight"]; bn(f"{p}.0.1", f"{q}.0.1")
            out[f"{p}.1.0.weight"] = tv_sd[f"{q}.1.0.weight"]; bn(f"{p}.1.1", f"{q}.1.1")
            out[f"{p}.2.0.weight"] = tv_sd[f"{q}.2.weight"]; bn(f"{p}.2.1", f"{q}.3")
            f += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", type=int, default=40)
    ap.add_argument("--image", required=True)
    ap.add_argument("--legacy", action="store_true")
    ap.add_argument("--prefix", default="")
    ap.add_argument("--no-tv", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    g = torch.Generator().manual_seed(a.seed)
    x = load_image(a.image)
    m = HydraNet(a.classes)
    realistic(m, x, g)
    name = f"hydranet{a.classes}_s{a.seed}"
    sd = {a.prefix + k: v for k, v in m.state_dict().items()}
    torch.save({"state_dict": sd, "epoch": 0}, os.path.join(a.out, name + ".ckpt"),
               _use_new_zipfile_serialization=not a.legacy)
    with torch.no_grad():
        segm, depth = m(x)
    stem = os.path.splitext(os.path.basename(a.image))[0]
    np.save(os.path.join(a.out, f"{name}_{stem}_segm.npy"), segm[0].numpy().astype(np.float32))
    np.save(os.path.join(a.out, f"{name}_{stem}_depth.npy"), depth[0, 0].numpy().astype(np.float32))
    if not a.no_tv:
        import torchvision
        from safetensors.torch import save_file
        # torchvision initialises its convolutions from the global generator: seed it, so that
        # re-running reproduces the files (the copy in ../shared/tools/ref did not).
        torch.manual_seed(a.seed)
        tv = torchvision.models.mobilenet_v2()
        for mod in tv.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5, generator=g)
                mod.running_var.uniform_(0.5, 1.5, generator=g)
                mod.weight.data.uniform_(0.5, 1.5, generator=g)
                mod.bias.data.uniform_(-0.2, 0.2, generator=g)
        tv_sd = tv.state_dict()
        torch.save(tv_sd, os.path.join(a.out, f"mobilenet_v2_tv_s{a.seed}.pth"))
        ref = {k: v.contiguous() for k, v in tv_to_reference(tv_sd).items()}
        save_file(ref, os.path.join(a.out, f"mobilenet_v2_tv_s{a.seed}_as_reference.safetensors"))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
