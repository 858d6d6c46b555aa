#!/usr/bin/env bash
# hd-native's GPU check and benchmark in one call (about 5 minutes on an H200), printed as
# Markdown for BENCHMARKS.md's GPU section:
#   1. the fused kernels against hd-core on slices, every rule and option, 100 steps, 1e-6
#      (`hd-native bench verify-fused`; a failure makes the script exit non-zero at the end);
#   2. device copy bandwidth;
#   3. optimizer step time on the ResNet-18 and WRN-28-10 parameter sets: hd fused, hd on
#      libtorch, tch's nn::Sgd / nn::Adam, and the PyTorch peers (torch_peers.py);
#   4. ResNet-18 batch-128 training throughput per optimizer, hd and PyTorch.
#
#   here:   cargo xtask gpu-bundle DIR      # release binary + these scripts + launcher
#   there:  bash DIR/gpu-bench.sh [cuda:N] > gpu-bench.md
#
# The launcher (hd-native.sh) finds torch's libraries with $PYTHON (default python3). A binary
# built on Debian 12 needs glibc 2.34 and GCC 11's libstdc++ or newer there.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEVICE=${1:-cuda}
PYTHON=${PYTHON:-python3}
HD="$HERE/hd-native.sh"
status=0

"$PYTHON" - <<'PY'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU visible'}")
if not torch.__version__.startswith("2.11."):
    print("warning: hd-native is built against torch 2.11.0; other versions may not load")
PY
echo

if ! "$HD" --version >/dev/null 2>&1; then
    echo "error: hd-native does not start here:" >&2
    "$HD" --version >&2 || true
    exit 1
fi

run() {
    echo "\`$*\`"
    echo
    "$@" 2>&1 || { rc=$?; status=1; echo; echo "(exit status $rc)"; }
    echo
}

run "$HD" bench verify-fused --device "$DEVICE"
run "$HD" bench copy --device "$DEVICE" --elements 268435456 --steps 20 --rounds 5
for model in resnet18 wrn; do
    run "$HD" bench step --device "$DEVICE" --model "$model" --steps 50 --rounds 5 --backend both
done
for model in resnet18 wrn-28-10; do
    run "$PYTHON" "$HERE/torch_peers.py" step --device "$DEVICE" --model "$model" --steps 50 --rounds 5
done
run "$HD" bench throughput --device "$DEVICE" --model resnet18 --dataset cifar10 \
    --batch-size 128 --iters 50 --rounds 5 --backend both
run "$PYTHON" "$HERE/torch_peers.py" throughput --device "$DEVICE" --batch-size 128 --iters 50 --rounds 5
exit $status
