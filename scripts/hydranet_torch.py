"""HydraNet in PyTorch with the official state-dict keys, written for hydra's scripts.

Used only by scripts that make or check fixtures (never at run time or by the test suite).
Architecture per docs/REFERENCE facts: MobileNetV2 (reference layout, t=1 block keeps its
expansion) + Light-Weight RefineNet decoder (CRP, crp1 depthwise) + per-task heads.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def conv_bn(cin, cout, k, stride=1, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*(layers + [nn.ReLU6()] if relu else layers))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, t, stride):
        super().__init__()
        hidden = cin * t
        self.residual = stride == 1 and cin == cout
        self.output = nn.Sequential(conv_bn(cin, hidden, 1), conv_bn(hidden, hidden, 3, stride, hidden),
                                    conv_bn(hidden, cout, 1, relu=False))

    def forward(self, x):
        return x + self.output(x) if self.residual else self.output(x)


class ChainedResidualPool(nn.Module):
    def __init__(self, width, stages, depthwise):
        super().__init__()
        self.n = stages
        for i in range(1, stages + 1):
            self.add_module(f"{i}_outvar_dimred", nn.Conv2d(width, width, 1, bias=False, groups=width if depthwise else 1))

    def forward(self, x):
        top = x
        for i in range(1, self.n + 1):
            top = getattr(self, f"{i}_outvar_dimred")(F.max_pool2d(top, 5, 1, 2))
            x = x + top
        return x


class HydraNet(nn.Module):
    def __init__(self, num_classes=40, tasks=("segm", "depth"), crp_stages=4, width=256):
        super().__init__()
        self.tasks = list(tasks)
        self.layer1 = conv_bn(3, 32, 3, 2)
        cin = 32
        for i, (t, c, n, s) in enumerate(STAGES):
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(cin, c, t, s if j == 0 else 1))
                cin = c
            self.add_module(f"layer{i + 2}", nn.Sequential(*blocks))
        for name, c in [("conv8", 320), ("conv7", 160), ("conv6", 96), ("conv5", 64), ("conv4", 32), ("conv3", 24)]:
            self.add_module(name, nn.Conv2d(c, width, 1, bias=False))
        for name in ["crp4", "crp3", "crp2", "crp1"]:
            self.add_module(name, nn.Sequential(ChainedResidualPool(width, crp_stages, name == "crp1")))
        for name in ["conv_adapt4", "conv_adapt3", "conv_adapt2"]:
            self.add_module(name, nn.Conv2d(width, width, 1, bias=False))
        outputs = {"segm": num_classes, "depth": 1, "normal": 3}
        for task in ["depth", "segm", "normal"]:
            if task in self.tasks:
                self.add_module(f"pre_{task}", nn.Conv2d(width, width, 1, groups=width, bias=False))
                self.add_module(task, nn.Conv2d(width, outputs[task], 3, padding=1, bias=True))

    def forward(self, x):
        up = lambda a, b: F.interpolate(a, size=b.shape[2:], mode="bilinear", align_corners=False)
        l2 = self.layer2(self.layer1(x))
        l3 = self.layer3(l2)
        l4 = self.layer4(l3)
        l5 = self.layer5(l4)
        l6 = self.layer6(l5)
        l7 = self.layer7(l6)
        l8 = self.layer8(l7)
        r = F.relu6(self.conv8(l8) + self.conv7(l7))
        r = up(self.conv_adapt4(self.crp4(r)), l6)
        r = F.relu6(self.conv5(l5) + self.conv6(l6) + r)
        r = up(self.conv_adapt3(self.crp3(r)), l4)
        r = F.relu6(self.conv4(l4) + r)
        r = up(self.conv_adapt2(self.crp2(r)), l3)
        r = self.crp1(F.relu6(self.conv3(l3) + r))
        return tuple(getattr(self, t)(F.relu6(getattr(self, f"pre_{t}")(r))) for t in ["segm", "depth", "normal"] if t in self.tasks)


def load_rgb(path):
    """ImageNet-normalised [1, 3, H, W] float32 tensor (normalised in float64, as hydra does)."""
    import numpy as np
    from PIL import Image
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    x = (img - np.array(MEAN)) / np.array(STD)
    return torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32))


def read_state_dict(path):
    """A checkpoint's tensors (under `state_dict` or top level), `module.` prefix removed."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        sd = load_file(path)
    else:
        sd = torch.load(path, map_location="cpu", weights_only=True)
        sd = sd.get("state_dict", sd)
    return {k.removeprefix("module."): v for k, v in sd.items()}
