# Common tasks (https://github.com/casey/just). Plain cargo commands work as well.

# Train on the built-in synthetic scenes (the main job of a fresh machine).
train config="configs/quickstart.toml":
    cargo run --release -- train --config {{config}}

# The test suite (what CI runs).
test:
    cargo test --release --workspace

# Benchmarks (inference, training step, input pipeline).
bench:
    cargo run --release -- bench

# Check that the GPU backends compile (no code generation). DOCS_RS=1 makes Burn's CUDA build
# script skip its LLVM download (a real `cuda` build needs network access for it).
check-gpu:
    DOCS_RS=1 CARGO_TARGET_DIR=target/check-gpu cargo check --release --workspace --tests --examples --features hydra-train/wgpu,hydra-train/cuda

# Data parallelism over MPI (needs Open MPI: apt-get install libopenmpi-dev openmpi-bin
# libclang-dev); what .ci/run runs after the suite.
test-mpi:
    cargo test --release -p hydra-train --features mpi --lib --test mpi_data_parallel
