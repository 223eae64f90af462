#!/usr/bin/env bash
# hydra against PyTorch eager, torch.compile and ONNX Runtime on this machine, in one run (the
# README's performance table); hydra's bf16 inference against torch.compile under bf16 autocast
# where the CPU has AMX-BF16 or AVX512-BF16. Needs a release build and a Python with torch, onnx, onnxruntime:
#   python3 -m venv ~/.venvs/hydra-ref && ~/.venvs/hydra-ref/bin/pip install torch onnx onnxruntime numpy pillow safetensors
#   scripts/bench_compare.sh [PYTHON]            # ROUNDS=3 by default
# Every measurement runs in its own process (peak memory is per process), 2 threads each.
# Shared machines drift by 20 % and more within minutes, so hydra and its reference alternate,
# ROUNDS times; compare the ratio of the medians over the rounds, then the spread.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-$HOME/.venvs/hydra-ref/bin/python}
ROUNDS=${ROUNDS:-3}
H=target/release/hydra
export RAYON_NUM_THREADS=2
cargo build --release --quiet
lscpu | grep -E "Model name"
echo "bf16 flags: $(grep -o -w -E 'avx512_bf16|amx_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
BF16=$($H bench infer --size 64x64 --repeats 1 --warmup 0 --precision bf16 >/dev/null 2>&1 && echo yes || echo no)
for round in $(seq "$ROUNDS"); do
    echo "== round $round: inference 480x640, batch 1"
    $H bench infer --repeats 9 | tail -1
    $H bench infer --repeats 9 --no-fuse | tail -1
    $PY scripts/bench_torch.py ort --repeats 15 --threads 2 2>/dev/null | tail -1
    $PY scripts/bench_torch.py infer --compile --warmup 3 --repeats 9 --threads 2 2>/dev/null | tail -1
    [ "$round" = 1 ] && $PY scripts/bench_torch.py infer --repeats 7 --threads 2
    [ "$round" = 1 ] && $H bench infer --repeats 9 --fold-bn | tail -1
    if [ "$BF16" = yes ]; then
        $H bench infer --repeats 9 --precision bf16 | tail -1
        $PY scripts/bench_torch.py infer --compile --bf16 --warmup 3 --repeats 9 --threads 2 2>/dev/null | tail -1
    fi
    echo "== round $round: training step 256x256, batch 4 (forward, CE + L1, backward, SGD)"
    $H bench train --repeats 7 | tail -1
    $PY scripts/bench_torch.py train --repeats 7 --threads 2
    $PY scripts/bench_torch.py train --compile --warmup 3 --repeats 7 --threads 2 2>/dev/null | tail -1
done
echo "== input pipeline (decode + augment + batch, real 480x640 frames) and synthetic scenes"
$H bench data --repeats 3 --workers 2 | tail -1
$H bench synth --repeats 20 | tail -1
