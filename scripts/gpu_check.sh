#!/usr/bin/env bash
# Exercise a GPU backend end to end, in one go (the script for a session lent a device):
#   1. the feature-gated tests: the fixture checkpoint's outputs on the GPU against PyTorch's,
#      and one SGD step of the authors' recipe on the GPU against PyTorch's
#      (crates/hydra-train/tests/gpu_backends.rs);
#   2. `hydra bench infer` / `train` on the GPU and on flex, in images/s;
#   3. a short quickstart training run on the GPU (30 iterations, then a validation).
# usage: scripts/gpu_check.sh wgpu|cuda [OUT_DIR]
# Builds with `--features hydra-train/<backend>` first (a machine without a registry needs the
# build done elsewhere and target/ carried). For wgpu without a GPU, any Vulkan driver works,
# e.g. Mesa's lavapipe (CPU): VK_ICD_FILENAMES=<lvp_icd.json> (then every figure is the CPU's).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:?usage: scripts/gpu_check.sh wgpu|cuda [OUT_DIR]}
OUT=${2:-runs/gpu_check_$B}
mkdir -p "$OUT"
cargo build --release -p hydra-train --features "hydra-train/$B" --tests --bins 2>&1 | tail -1
echo "== 1. parity with PyTorch on $B (fixture inference, one SGD step)"
cargo test --release -p hydra-train --features "hydra-train/$B" --test gpu_backends -- --nocapture --test-threads 1 2>&1 | tee "$OUT/tests.log" | grep -E "ratio|loss, segm|updated weights|test result|panicked"
H=target/release/hydra
echo "== 2. speed: $B next to flex"
for backend in "$B" flex; do
    $H bench infer --backend "$backend" --size 480x640 --batch 1 --repeats 5 --json "$OUT/infer_$backend.json" | tail -1
    $H bench train --backend "$backend" --size 256x256 --batch 4 --repeats 3 --json "$OUT/train_$backend.json" | tail -1
done
echo "== 3. a short training run on $B"
$H train --config configs/quickstart.toml --set "training.backend=$B" --set training.epochs=2 \
    --set training.iters_per_epoch=15 --set training.val_interval=2 --set "output.dir=$OUT/train" 2>&1 | tail -3
