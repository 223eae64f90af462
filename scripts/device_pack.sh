#!/usr/bin/env bash
# Prepare `scripts/gpu_check.sh wgpu` for a device machine (NVIDIA, no cargo, no network):
#   .device/hydra.xz  the wgpu build of hydra, stripped and compressed (~17 MB);
#   .gl/              the Vulkan loader packages the device notes ask for;
# both ignored through .git/info/exclude. A device call sends the working tree, at most
# 64 MiB with what it carries: the tracked fixtures are 59 MB, so the fixtures no device check
# reads are taken out of the index for the call (`--hide`) and put back after (`--restore`).
# usage: scripts/device_pack.sh            build and pack
#        scripts/device_pack.sh --hide     before the device call
#        scripts/device_pack.sh --restore  after it
# The call (carry [".device", ".gl"], timeout 600):
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig;
#   export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json;
#   python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.device/hydra.xz'),open('/tmp/hydra','wb'))";
#   chmod +x /tmp/hydra; HYDRA=/tmp/hydra scripts/gpu_check.sh wgpu $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
UNUSED="fixtures/pytorch/mobilenet_v2_tv_s0.pth fixtures/pytorch/mobilenet_v2_tv_s0_as_reference.safetensors fixtures/pytorch/hydranet40_s0_zip_f16_module.pth fixtures/samples/kitti"
exclude() { grep -qxF "$1" .git/info/exclude 2>/dev/null || echo "$1" >> .git/info/exclude; }
case "${1:-}" in
    --hide)
        for p in $UNUSED; do exclude "/$p"; done
        git rm -r -q --cached $UNUSED
        echo "hidden from the index: $UNUSED (put back with --restore)"
        exit 0 ;;
    --restore)
        git reset -q -- $UNUSED
        for p in $UNUSED; do sed -i "\#^/$p\$#d" .git/info/exclude; done
        git status --short | head
        exit 0 ;;
esac
mkdir -p .git/info
exclude "/.device/"
exclude "/.gl/"
cargo build --release -p hydra-train --features hydra-train/wgpu --bins
mkdir -p .device
strip -o .device/hydra.tmp target/release/hydra
xz -9 -T0 -c .device/hydra.tmp > .device/hydra.xz.tmp && mv .device/hydra.xz.tmp .device/hydra.xz
rm -f .device/hydra.tmp
mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .device .gl
