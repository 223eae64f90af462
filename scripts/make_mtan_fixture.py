"""Make fixtures/mtan: a tiny dataset in the MTAN / LibMTL NYUv2 layout, written by NumPy.

usage: python scripts/make_mtan_fixture.py
Three samples of 24x32 in train/{image,label,depth,normal}/{0,1,2}.npy:
  image  float32 (H, W, 3) in [0, 1] (multiples of 1/255)
  label  float32 (H, W), classes 0..12 and -1 = ignore (sample 1: 5 ignored pixels)
  depth  float32 (H, W, 1), metres, 0 = missing (sample 2: first row missing)
  normal float32 (H, W, 3), unit vectors
Sample 2 has no label file (an asymmetric annotation). expected.json records what a reader
must find (computed here with NumPy).
"""
import json, os
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "mtan", "train")


def main():
    rng = np.random.default_rng(0)
    h, w = 24, 32
    expected = []
    for kind in ["image", "label", "depth", "normal"]:
        os.makedirs(os.path.join(OUT, kind), exist_ok=True)
    for i in range(3):
        img = rng.integers(0, 256, (h, w, 3)).astype(np.float32) / 255.0
        label = rng.integers(0, 13, (h, w)).astype(np.float32)
        if i == 1:
            label[0, :5] = -1
        depth = rng.uniform(0.5, 9.0, (h, w, 1)).astype(np.float32)
        if i == 2:
            depth[0] = 0
        n = rng.normal(size=(h, w, 3)).astype(np.float32)
        n /= np.linalg.norm(n, axis=2, keepdims=True)
        np.save(os.path.join(OUT, "image", f"{i}.npy"), img)
        if i != 2:
            np.save(os.path.join(OUT, "label", f"{i}.npy"), label)
        np.save(os.path.join(OUT, "depth", f"{i}.npy"), depth)
        np.save(os.path.join(OUT, "normal", f"{i}.npy"), n)
        expected.append({
            "rgb_first_pixel": [int(round(v * 255)) for v in img[0, 0]],
            "label_sum": None if i == 2 else int(label[label >= 0].sum()),
            "ignored": None if i == 2 else int((label < 0).sum()),
            "depth_valid": int((depth > 0).sum()),
            "depth_max": float(depth.max()),
            "normal_first": [float(v) for v in n[0, 0]],
        })
    with open(os.path.join(OUT, "..", "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
