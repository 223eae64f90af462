"""Make the PyTorch-written import fixtures under fixtures/pytorch/ (run once, committed).

usage: python scripts/make_import_fixtures.py
  hydranet40_s0_zip_f16_module.pth: the 40-class fixture checkpoint re-saved the way
      multi-GPU training and newer PyTorch save it: zip serialization, tensors at the top
      level (no `state_dict` wrapper), every key prefixed with `module.`, float16 values.
"""
import collections, os, sys
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hydranet_torch import read_state_dict

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "pytorch")


def main():
    sd = read_state_dict(os.path.join(OUT, "hydranet40_s0.ckpt"))
    half = collections.OrderedDict(
        ("module." + k, v.half() if v.is_floating_point() else v) for k, v in sd.items())
    torch.save(half, os.path.join(OUT, "hydranet40_s0_zip_f16_module.pth"))
    print("wrote", len(half), "tensors")


if __name__ == "__main__":
    main()
