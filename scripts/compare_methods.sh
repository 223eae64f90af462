#!/usr/bin/env bash
# One quickstart run per multi-task method (and the two single-task runs Δm needs), then a
# table of final validation mIoU, depth RMSE and Δm: scripts/method_table.py.
#
# usage: scripts/compare_methods.sh [EPOCHS] [OUT]
#   EPOCHS: training.epochs of every run (default 40, the quickstart's length)
#   OUT: where the run folders go (default runs/methods)
# Each run is configs/quickstart.toml with its seed (training.seed) unchanged, so every method
# sees the same data order, augmentation and initial weights.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-40}
OUT=${2:-runs/methods}
HYDRA=${HYDRA:-target/release/hydra}
[ -x "$HYDRA" ] || cargo build --release
mkdir -p "$OUT"
run() {
  local name=$1; shift
  if [ -f "$OUT/$name/final.bpk" ]; then echo "== $name: done before"; return; fi
  # A run cut short (the session ended) continues from its newest checkpoint.
  local resume=()
  if [ -d "$OUT/$name" ] && ls "$OUT/$name"/checkpoints/*.ok > /dev/null 2>&1; then resume=(--resume)
  else rm -rf "$OUT/$name" "$OUT/$name.log"; fi
  echo "== $name ${resume[*]}"
  "$HYDRA" train --config configs/quickstart.toml --set "output.dir=\"$OUT/$name\"" --set "training.epochs=$EPOCHS" "$@" "${resume[@]}" >> "$OUT/$name.log" 2>&1 || { echo "   failed: $OUT/$name.log"; tail -3 "$OUT/$name.log"; }
}
# The same runs with Adam (lr 1e-4 for encoder and decoder): DB-MTL's paper and LibMTL use Adam,
# and DB-MTL does not learn segmentation with the quickstart's SGD (README).
ADAM=(--set 'optimizer.kind="adam"' --set optimizer.encoder_lr=1e-4 --set optimizer.decoder_lr=1e-4)
run single_segm --set 'model.tasks=["segm"]'
run single_depth --set 'model.tasks=["depth"]'
for m in fixed uncertainty dwa rlw gls ew mgda pcgrad imtl aligned_mtl cagrad gradvac nash_mtl db_mtl gradnorm; do
  run "$m" --set "loss.weighting=\"$m\""
done
run mgda_ub --set 'loss.weighting="mgda"' --set loss.rep_grad=true
run graddrop --set 'loss.weighting="graddrop"' --set loss.rep_grad=true
run adam_single_segm "${ADAM[@]}" --set 'model.tasks=["segm"]'
run adam_single_depth "${ADAM[@]}" --set 'model.tasks=["depth"]'
run adam_fixed "${ADAM[@]}" --set 'loss.weighting="fixed"'
run adam_db_mtl "${ADAM[@]}" --set 'loss.weighting="db_mtl"'
python3 scripts/method_table.py "$OUT"
