#!/usr/bin/env bash
# Exercise a GPU backend end to end, in one go (the script for a session lent a device):
#   1. `hydra selftest --backend B`: the fixture checkpoint's outputs against PyTorch's, the
#      reduction check, one SGD step against PyTorch's at 2 × 480×640 and against flex on
#      240×320 crops (the same checks as crates/hydra-train/tests/gpu_backends.rs);
#   2. `hydra bench infer` / `train` on the GPU and on flex, in images/s;
#   3. a short quickstart training run on the GPU (30 iterations, then a validation).
# usage: [HYDRA=path/to/hydra] scripts/gpu_check.sh wgpu|cuda [OUT_DIR]
# HYDRA: a hydra binary built with the backend's feature; a device machine has no cargo and
# no network, scripts/device_pack.sh makes one to carry there. Without HYDRA, cargo builds it
# here. For wgpu without a GPU, any Vulkan driver works, e.g. Mesa's lavapipe (CPU):
# VK_ICD_FILENAMES=<lvp_icd.json> (then every figure is the CPU's, and lavapipe fails the
# reduction check at 2 × 480×640: its shader loops stop after 65 535 iterations).
# Every step runs even when an earlier one fails; the exit status is the number that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:?usage: scripts/gpu_check.sh wgpu|cuda [OUT_DIR]}
OUT=${2:-runs/gpu_check_$B}
mkdir -p "$OUT"
if [ -z "${HYDRA:-}" ]; then
    cargo build --release -p hydra-train --features "hydra-train/$B" --bins 2>&1 | tail -1 || exit 1
    HYDRA=target/release/hydra
fi
failed=0
echo "== 1. $B against PyTorch and flex (hydra selftest)"
"$HYDRA" selftest --backend "$B" --json "$OUT/selftest.json" 2>&1 | tee "$OUT/selftest.log" || failed=$((failed + 1))
echo "== 2. speed: $B next to flex"
for backend in "$B" flex; do
    "$HYDRA" bench infer --backend "$backend" --size 480x640 --batch 1 --repeats 5 --json "$OUT/infer_$backend.json" 2>&1 | tail -1 || failed=$((failed + 1))
    "$HYDRA" bench train --backend "$backend" --size 256x256 --batch 4 --repeats 3 --json "$OUT/train_$backend.json" 2>&1 | tail -1 || failed=$((failed + 1))
done
echo "== 3. a short training run on $B"
"$HYDRA" train --config configs/quickstart.toml --set "training.backend=$B" --set training.epochs=2 \
    --set training.iters_per_epoch=15 --set training.val_interval=2 --set "output.dir=$OUT/train" 2>&1 | tail -3 || failed=$((failed + 1))
echo "== $failed step(s) failed"
exit "$failed"
