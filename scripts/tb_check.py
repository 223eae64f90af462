#!/usr/bin/env python3
"""Read a hydra run's TensorBoard files with TensorBoard's own EventAccumulator and compare
every scalar with metrics.jsonl, and every validation's panel image with RUN/panels/.
Usage: tb_check.py RUN_DIR  (needs `pip install tensorboard`). Exits non-zero on any
difference."""
import json
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = Path(sys.argv[1])
acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
acc.Reload()
tags = acc.Tags()["scalars"]
series = {t: {e.step: e.value for e in acc.Scalars(t)} for t in tags}
log = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
checked = 0
bad = []
for rec in log:
    step = rec["iteration"]
    pairs = []
    if rec["kind"] == "iter":
        pairs = [("train/loss", rec["loss"]), ("lr/decoder", rec["lr_decoder"])] + [(f"train/loss_{k}", v) for k, v in rec["losses"].items()]
    else:
        pairs = [("epoch/train/loss", rec["train"]["loss"])] + [(f"epoch/val/{k}", v) for k, v in rec.get("val", {}).items() if isinstance(v, (int, float))]
    for tag, want in pairs:
        got = series.get(tag, {}).get(step)
        checked += 1
        if got is None or abs(got - want) > 1e-6 * max(1.0, abs(want)):
            bad.append((tag, step, want, got))
texts = acc.Tags().get("tensors", [])
if "config" not in texts:
    bad.append(("config", "text summary missing", None, None))
# Each validated epoch's panel: an image at the epoch's step, the bytes of panels/epoch_NNNN.png.
images = {e.step: e for e in acc.Images("val/panels")} if "val/panels" in acc.Tags().get("images", []) else {}
panels = 0
for rec in log:
    if rec["kind"] != "epoch" or "val" not in rec:
        continue
    panels += 1
    want = (run / "panels" / f"epoch_{rec['epoch']:04d}.png").read_bytes()
    got = images.get(rec["iteration"])
    if got is None or got.encoded_image_string != want:
        bad.append(("val/panels", rec["iteration"], "panels/epoch_%04d.png" % rec["epoch"], None if got is None else len(got.encoded_image_string)))
print(f"{len(tags)} scalar tags, {checked} values compared with metrics.jsonl, {panels} panel images with panels/, {len(bad)} differ")
for b in bad[:10]:
    print("  differs:", b)
sys.exit(1 if bad else 0)
